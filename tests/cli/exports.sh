#!/bin/sh
# The installed libraries export their public API and nothing else. After
# cmake --install into a scratch prefix, the dynamic symbols each library
# defines (nm -D --defined-only) are compared with the names the installed
# headers declare with USG_API, both ways: an export no header declares is a
# leak (a plugin could come to depend on it), and a declaration no library
# exports is a link error waiting for a plugin author. A header prototype
# without USG_API fails too, since hidden visibility would make it unlinkable.
# Usage: exports.sh path/to/usagi (its directory is the build tree)
set -eu
build=$(dirname "$1")
command -v nm >/dev/null || { echo "SKIP nm (binutils) is not installed"; exit 77; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cmake --install "$build" --prefix "$t/prefix" >/dev/null
inc="$t/prefix/include/usagi"
lib=$(ls -d "$t"/prefix/lib*/ | head -n 1)
n=0

# Names declared public: the identifier before the first "(" on a USG_API line.
grep -h 'USG_API' "$inc"/*.h | grep -vE '#define|^ *(/?\*)' |
  sed -n 's/.*USG_API[^(]*[^a-zA-Z0-9_]\([a-zA-Z_][a-zA-Z0-9_]*\) *(.*/\1/p' |
  sort -u >"$t/declared"
[ -s "$t/declared" ] || { echo "FAIL no USG_API declaration found in $inc"; exit 1; }

# A prototype at the start of a line that is neither static nor marked USG_API.
if grep -nE '^[a-z][a-z0-9_ ]*[ *]+(usg|luaopen)_[a-z0-9_]+ *\(' "$inc"/*.h |
   grep -vE ':(static|typedef|return|extern "C")' >"$t/unmarked"; then
  echo "FAIL public prototypes without USG_API:"; sed 's|.*/include/||' "$t/unmarked"; exit 1
fi
n=$((n + 1)); echo "ok   every public prototype carries USG_API"

# Every libusagi*.so the install holds, by its real file (not the links).
: >"$t/exported"
for so in "$lib"/libusagi*.so; do
  real=$(readlink -f "$so")
  name=$(basename "$so")
  nm -D --defined-only "$real" | awk 'NF == 3 { print $3 }' | sed 's/[@.].*//' |
    grep -v '^_' | sort -u >"$t/$name.syms"
  # Every export is declared in an installed header.
  comm -23 "$t/$name.syms" "$t/declared" >"$t/leaks"
  if [ -s "$t/leaks" ]; then
    echo "FAIL $name exports $(wc -l <"$t/leaks") names no installed header declares:"
    sed 's/^/       /' "$t/leaks"; exit 1
  fi
  n=$((n + 1)); echo "ok   $name exports only declared names ($(wc -l <"$t/$name.syms"))"
  cat "$t/$name.syms" >>"$t/exported"
done

# Every declaration is exported by one of them.
sort -u "$t/exported" -o "$t/exported"
comm -23 "$t/declared" "$t/exported" >"$t/missing"
if [ -s "$t/missing" ]; then
  echo "FAIL $(wc -l <"$t/missing") names declared with USG_API that no library exports:"
  sed 's/^/       /' "$t/missing"; exit 1
fi
n=$((n + 1)); echo "ok   every USG_API name is exported ($(wc -l <"$t/declared"))"
echo "$n passed, 0 failed"
