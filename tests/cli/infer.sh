#!/bin/sh
# The issue's end-to-end check, as a newcomer types it: a smoke run of
# attention_dates from a fresh directory, then `usagi infer` on the run it
# made answers a date (the same answer twice) and writes its attention
# picture; help, and the errors of a missing run, a run whose experiment
# declares no infer, and bad input, each with its exit status.
# Usage: infer.sh path/to/usagi (run from the repository root)
set -u
U=$1
repo=$(pwd)
case $U in /*) ;; *) U=$repo/$U ;; esac
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

. "$(dirname "$0")/../check.sh"

if ! "$U" -e "require('usagi.data').path('dlfs2/date.txt')" >/dev/null 2>&1; then
  echo "skipped: dlfs2/date.txt is not on this machine (usagi.data.path cannot find it)"
  exit 0
fi

cd "$t"
"$U" run "$repo/experiments/attention_dates.lua" --smoke >run.out 2>&1
check "smoke run" "0" "$?"
run=$(ls -d runs/attention_dates/*)
"$U" infer "$run" 'september 27, 1994' >a1 2>err1
check "infer exit status" "0" "$?"
check "one answer line" "1" "$(wc -l <a1 | tr -d ' ')"
check "an answer of the answer's characters" "1" "$(grep -c '^[0-9a-z -]\{1,10\}$' a1)"
"$U" infer "$run" 'september 27, 1994' >a2 2>/dev/null
check "the same answer twice" "$(cat a1)" "$(cat a2)"
check "the attention picture" "file" "$(test -f "$run/infer/attention.png" && echo file)"
check "its path on stderr" "1" "$(grep -c 'infer/attention.png' err1)"
check "two inputs, two answers" "2" "$("$U" infer "$run" '3/3/99' 'March 3, 1999' 2>/dev/null | wc -l | tr -d ' ')"
check "two inputs, two pictures" "file file" "$(for k in 1 2; do test -f "$run/infer/attention-$k.png" && printf 'file'; [ $k = 1 ] && printf ' '; done)"
rm -r "$run/infer"
"$U" infer "$run" '3/3/99' --picture false >/dev/null 2>&1
check "--picture false draws none" "none" "$(test -e "$run/infer" && echo some || echo none)"
check "inputs from stdin, one a line" "$(cat a1)
$(cat a1)" "$(printf 'september 27, 1994\nseptember 27, 1994\n' | "$U" infer "$run" - --picture false 2>/dev/null)"
check "--help" "0" "$("$U" infer "$run" --help >help 2>&1; echo $?)"
check "--help says what an input is" "1" "$(grep -c '^attention_dates: each INPUT is a date' help)"
check "infer --help alone" "0" "$("$U" infer --help >/dev/null 2>&1; echo $?)"
check "no arguments: usage, 2" "2" "$("$U" infer >/dev/null 2>&1; echo $?)"

"$U" infer runs/attention_dates/nothing 'x' 2>err; rc=$?
check "missing run: 1" "1" "$rc"
check "missing run: message" "usagi infer: no run at runs/attention_dates/nothing (no such directory or file)" "$(cat err)"
"$U" infer "$run" 'march 3, 1999 ~' 2>err; rc=$?
check "bad input: 1" "1" "$rc"
check "bad input: message" "1" "$(grep -c '^usagi infer: Vocab.encode: the character "~" (at 15) is not in the vocabulary' err)"
"$U" infer "$run" 'x' --beam 3 2>err; rc=$?
check "unknown option: message" "usagi infer: attention_dates infer: unknown option beam (it has: picture)" "$(cat err)"
"$U" run "$repo/experiments/binary_addition.lua" --smoke --set iterations=2 >/dev/null 2>&1
"$U" infer "$(ls -d runs/binary_addition/*)" '1+1' 2>err; rc=$?
check "no infer: 1" "1" "$rc"
check "no infer: message" "1" "$(grep -c 'the experiment binary_addition declares no model' err)"
check_done
