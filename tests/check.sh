# check.sh -- the pass/fail bookkeeping of the shell tests, sourced by them:
#   . tests/check.sh
#   check NAME EXPECTED ACTUAL    (prints ok or FAIL with both values)
#   check_done                    (prints the counts; fails when any failed)
fails=0
passes=0

check() {   # name expected actual
  if [ "$2" = "$3" ]; then echo "ok   $1"; passes=$((passes + 1)); else
    echo "FAIL $1"; echo "  expected: $2"; echo "  got:      $3"; fails=$((fails + 1)); fi
}

check_done() {
  echo "$passes passed, $fails failed"
  [ $fails -eq 0 ]
}
