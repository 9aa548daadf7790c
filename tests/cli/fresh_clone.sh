#!/bin/sh
# The README's first minutes from a fresh clone: git clone this checkout
# into a scratch folder, install the built usagi into a scratch prefix with
# the clone's scripts/install (as scripts/run does), then type the README's
# commands with that prefix's bin on PATH, from the clone, which has no
# build/ of its own. A full build in the clone would take minutes; the build
# tree under test is installed instead. The clone holds the committed tree.
# Usage: fresh_clone.sh path/to/usagi (its directory is the build tree)
set -eu
build=$(cd "$(dirname "$1")" && pwd)
src=$(pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
n=0
fail() { echo "FAIL $*"; exit 1; }
if ! command -v git >/dev/null || ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  echo "skip: no git checkout to clone"; exit 0
fi
git clone -q "$src" "$t/usagi"
[ ! -e "$t/usagi/build" ] || fail "the clone has a build/"
mkdir "$t/home"
# A PATH without the prefix: scripts/install says how to add it, once.
PATH=/usr/bin:/bin HOME="$t/home" USAGI_BUILD="$build" \
  "$t/usagi/scripts/install" "$t/prefix" 2>"$t/err1" || { cat "$t/err1"; fail "scripts/install"; }
grep -q "export PATH=\"$t/prefix/bin:" "$t/err1" || { cat "$t/err1"; fail "no PATH hint"; }
PATH=/usr/bin:/bin HOME="$t/home" USAGI_BUILD="$build" \
  "$t/usagi/scripts/install" "$t/prefix" 2>"$t/err2" || fail "scripts/install, twice"
[ ! -s "$t/err2" ] || { cat "$t/err2"; fail "the PATH hint came twice"; }
PATH="$t/prefix/bin:/usr/bin:/bin" HOME="$t/home" USAGI_BUILD="$build" \
  "$t/usagi/scripts/install" "$t/prefix" 2>"$t/err3" || fail "scripts/install on PATH"
[ ! -s "$t/err3" ] || { cat "$t/err3"; fail "a hint with the prefix on PATH"; }
n=$((n + 1)); echo "ok   scripts/install into a prefix, the PATH hint once"

cd "$t/usagi"
export PATH="$t/prefix/bin:/usr/bin:/bin" HOME="$t/home"
[ "$(command -v usagi)" = "$t/prefix/bin/usagi" ] || fail "usagi on PATH is $(command -v usagi)"
usagi run experiments/binary_addition.lua --smoke >"$t/out" 2>&1 || { cat "$t/out"; fail "usagi run"; }
ls runs/binary_addition/*/results.h5 >/dev/null 2>&1 || fail "no runs/binary_addition/*/results.h5"
n=$((n + 1)); echo "ok   usagi run experiments/binary_addition.lua --smoke, as typed"
out=$(usagi -e 'print(package.searchpath("usagi.nn", package.path))')
case "$out" in "$t/prefix/"*) ;; *) fail "usagi.nn came from $out" ;; esac
out=$(usagi -e 'local l = usagi.nn.LSTM(3, 4); print(#l:parameters() > 0, package.loaded["usagi.lstm"] ~= nil)')
[ "$out" = "true	true" ] || fail "installed usagi.nn.LSTM without a require printed: $out"
n=$((n + 1)); echo "ok   installed usagi finds its library and plugins in the prefix"
echo "$n passed, 0 failed"
