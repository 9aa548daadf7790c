#!/bin/sh
# usagi as a lua5.4 replacement: script + arg table, -e, -l, -v, -i, stdin,
# exit status on error, and the plain prompt fed from a pipe.
# Usage: interpreter.sh path/to/usagi
set -u
U=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

. "$(dirname "$0")/../check.sh"

printf 'print(arg[0], arg[1], arg[2], #arg, ...)\n' > "$t/args.lua"
check "script args" "$t/args.lua	x	y	2	x	y" "$("$U" "$t/args.lua" x y)"
check "-e" "6.0" "$("$U" -e 'print(usagi.tensor{1,2,3}:sum():item())')"
check "-e twice" "1
2" "$("$U" -e 'print(1)' -e 'print(2)')"
check "-l" "true" "$("$U" -l string -e 'print(string ~= nil)')"
check "-l g=mod" "true" "$("$U" -l u=usagi -e 'print(u == usagi)')"
check "-v" "usagi" "$("$U" -v | cut -d' ' -f1)"
check "stdin -" "3" "$(echo 'print(1 + 2)' | "$U" -)"
check "stdin default" "4" "$(echo 'print(2 + 2)' | "$U")"
check "require usagi" "true" "$("$U" -e 'print(require("usagi") == usagi)')"
"$U" -e 'error("boom")' 2>"$t/err"; rc=$?
check "error exit status" "1" "$rc"
check "error message" "1" "$(grep -c 'boom' "$t/err")"
check "bad option" "1" "$("$U" -Z >/dev/null 2>&1; echo $?)"
check "help" "0" "$("$U" -h >/dev/null; echo $?)"
out=$(printf 'x = 21\nx * 2\nfor i = 1, 2 do\nprint(i)\nend\n' | "$U" -i 2>&1)
check "-i prompt: expression value" "1" "$(printf '%s\n' "$out" | grep -c '^> > 42$')"
check "-i prompt: multi-line" "1" "$(printf '%s\n' "$out" | grep -c '^> \.\. \.\. 1$')"
check_done
