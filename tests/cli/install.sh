#!/bin/sh
# cmake --install into a scratch prefix, then build a third-party plugin
# against the installed package config and load it from the installed usagi.
# Usage: install.sh path/to/usagi (its directory is the build tree)
set -eu
build=$(dirname "$1")
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
n=0
cmake --install "$build" --prefix "$t/prefix" >/dev/null
for f in bin/usagi include/usagi/core.h include/usagi/lua.h share/lua/5.4 \
         lib/cmake/usagi/usagiConfig.cmake; do
  [ -e "$t/prefix/$f" ] || { echo "FAIL installed tree lacks $f"; exit 1; }
done
n=$((n + 1)); echo "ok   installed tree"
cmake -S modules/hello -B "$t/plugin" -DCMAKE_PREFIX_PATH="$t/prefix" \
      -DCMAKE_INSTALL_PREFIX="$t/prefix" >/dev/null
cmake --build "$t/plugin" >/dev/null
cmake --install "$t/plugin" >/dev/null
n=$((n + 1)); echo "ok   plugin built against the package config"
out=$("$t/prefix/bin/usagi" -e 'local h = require "usagi.hello"; print(h.triangle(4))')
[ "$out" = "10.0" ] || { echo "FAIL installed usagi loading the plugin printed: $out"; exit 1; }
n=$((n + 1)); echo "ok   installed usagi loads the plugin"
# the op generated from the plugin's table (installed gen.lua): its gradient
# reaches x, and its declaration joins usagi.op_table() for help()
out=$("$t/prefix/bin/usagi" -e 'local h = require "usagi.hello"
  local x = usagi.ones(3):requires_grad(true); h.scale(x, 3):sum():backward()
  local doc; for _, op in ipairs(usagi.op_table()) do
    if op.module == "hello" and op.name == "scale" then doc = op.doc end end
  print(x.grad:sum():item(), doc:match("^hello.scale%(x, a%)") ~= nil)')
[ "$out" = "$(printf '9.0\ttrue')" ] || { echo "FAIL the generated hello.scale printed: $out"; exit 1; }
n=$((n + 1)); echo "ok   an op from the plugin's table: gradient and doc"
if command -v lua5.4 >/dev/null && [ "${USAGI_SANITIZE:-OFF}" != ON ]; then
  out=$(LUA_CPATH="$t/prefix/lib/lua/5.4/?.so;;" lua5.4 -e \
        'local u = require "usagi"; local h = require "usagi.hello"; print((h.iota(3) + u.ones(3)):sum():item())')
  [ "$out" = "9.0" ] || { echo "FAIL stock lua5.4 loading usagi and the plugin printed: $out"; exit 1; }
  n=$((n + 1)); echo "ok   stock lua5.4 loads usagi.so and the plugin"
fi
echo "$n passed, 0 failed"
