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
if command -v lua5.4 >/dev/null && [ "${USAGI_SANITIZE:-OFF}" != ON ]; then
  out=$(LUA_CPATH="$t/prefix/lib/lua/5.4/?.so;;" lua5.4 -e \
        'local u = require "usagi"; local h = require "usagi.hello"; print((h.iota(3) + u.ones(3)):sum():item())')
  [ "$out" = "9.0" ] || { echo "FAIL stock lua5.4 loading usagi and the plugin printed: $out"; exit 1; }
  n=$((n + 1)); echo "ok   stock lua5.4 loads usagi.so and the plugin"
fi
echo "$n passed, 0 failed"
