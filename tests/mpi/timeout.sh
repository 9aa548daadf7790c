#!/bin/sh
# tests/mpi/timeout.sh USAGI -- a stopped or stuck rank does not hang the
# job (usagi/dist.h, "Timeouts"). With USAGI_DIST_TIMEOUT=1:
#  1. rank 1 stops itself (SIGSTOP) before an allreduce, or before the
#     gradient averaging of a backward: rank 0 names rank 1 and the
#     collective; rank 1 stops while it waits inside an allreduce of 4 MB
#     (sent in pieces, so rank 0 needs rank 1 to go on): rank 0 says so;
#     rank 0 sleeps past the timeout before a broadcast_string: rank 1
#     names rank 0; and each time mpirun ends non-zero within seconds;
#  2. ranks that call different collectives as the same one end the job
#     at once, not at the timeout (so does a rank that ends alone after an
#     error: it is in the final barrier while the other allreduces);
#  3. a bad USAGI_DIST_TIMEOUT is an error naming the variable, and
#     set_timeout wins over the variable;
#  4. a sweep whose ranks' shares differ by more than the timeout ends well;
#  5. a `usagi run` of dp_synth whose rank 1 the test stops with
#     kill -STOP after the first checkpoint: the job ends, every checkpoint
#     rank 0 wrote reads whole, and --resume finishes the run, under mpirun
#     and on one rank.
# Every mpirun runs under `timeout`, so a regression fails instead of
# hanging.
set -e
here=$(dirname "$0")
. "$here/mpirun.sh"
usagi=$1
mpi_or_skip "$usagi"
mpi_scratch

# stuck CASE LUA MESSAGE: under mpirun with a timeout of $limit s (1 by
# default); it must fail within 30 s (exit 124 is timeout's: the job hung)
# with MESSAGE (a grep pattern)
stuck() {
  start=$(date +%s)
  if USAGI_DIST_TIMEOUT=${limit:-1} timeout 60 mpirun -np 2 --oversubscribe "$usagi" -e "$2" >"$out/$1.txt" 2>&1; then
    echo "$1: the job ended well though rank 1 stopped"; cat "$out/$1.txt"; exit 1
  else
    rc=$?
  fi
  took=$(($(date +%s) - start))
  [ "$rc" != 124 ] || { echo "$1: the job hung until timeout(1) ended it"; cat "$out/$1.txt"; exit 1; }
  [ "$took" -le 30 ] || { echo "$1: the job took $took s to end"; cat "$out/$1.txt"; exit 1; }
  grep -q "$3" "$out/$1.txt" || { echo "$1: no message '$3'"; cat "$out/$1.txt"; exit 1; }
  echo "$1: exit $rc after $took s: $(grep -m1 -o 'usagi.dist: .*' "$out/$1.txt")"
}

echo "== a rank stopped or too slow"
stuck allreduce "
  local dist = require 'usagi.dist'
  local t = usagi.ones(4)
  dist.allreduce(t)
  if dist.rank() == 1 then os.execute('kill -STOP ' .. usagi.sys.getpid()) end
  dist.allreduce(t)" \
  "usagi.dist: rank 1 did not reach allreduce #2 within 1 s (stopped or too slow?); rank 0 aborts the job"
stuck inside "
  local dist = require 'usagi.dist'
  if dist.rank() == 1 then os.execute('(sleep 0.3; kill -STOP ' .. usagi.sys.getpid() .. ') &') end
  if dist.rank() == 0 then os.execute('sleep 1') end
  dist.allreduce(usagi.ones(1000000))" \
  "usagi.dist: rank 1 reached allreduce #1 but gave no sign of life for [0-9]* s since (stopped inside it?); rank 0 aborts"
stuck broadcast "
  local dist = require 'usagi.dist'
  if dist.rank() == 0 then os.execute('sleep 4') end
  dist.broadcast_string('hello')" \
  "usagi.dist: rank 0 did not reach broadcast #1 within 1 s (stopped or too slow?); rank 1 aborts the job"
stuck backward "
  local dist, nn = require 'usagi.dist', require 'usagi.nn'
  local m = nn.Linear(3, 2)
  local dp = dist.data_parallel(m:parameters())
  m(usagi.ones(1, 3)):sum():backward()
  if dist.rank() == 1 then os.execute('kill -STOP ' .. usagi.sys.getpid()) end
  m(usagi.ones(1, 3)):sum():backward()" \
  "rank 1 did not reach gradient allreduce #4 within 1 s"

echo "== ranks that call different collectives: at once, not at the timeout"
limit=100 stuck mismatch "
  local dist = require 'usagi.dist'
  dist.barrier()
  if dist.rank() == 0 then dist.allreduce(usagi.ones(4)) else dist.barrier() end" \
  "usagi.dist: rank [01] called [a-z]* as collective #2 where rank [01] called [a-z]*: every rank must call the same collectives in the same order; rank [01] aborts the job"

limit=100 stuck alone "
  local dist = require 'usagi.dist'
  dist.barrier()
  if dist.rank() == 1 then error('rank 1 fails alone') end
  dist.allreduce(usagi.ones(4))" \
  "usagi.dist: rank [01] called [a-z ]* as collective #2 where rank [01] called [a-z ]*: every rank must"

echo "== a bad USAGI_DIST_TIMEOUT"
if USAGI_DIST_TIMEOUT=soon timeout 60 mpirun -np 2 --oversubscribe "$usagi" -e "require('usagi.dist').barrier()" >"$out/bad.txt" 2>&1; then
  echo "USAGI_DIST_TIMEOUT=soon was accepted"; exit 1
fi
grep -q "USAGI_DIST_TIMEOUT must be a number of seconds >= 0 (0: wait forever), got 'soon'" "$out/bad.txt" ||
  { cat "$out/bad.txt"; exit 1; }
# the variable gives the default; set_timeout, even called first, wins over it
USAGI_DIST_TIMEOUT=7.5 "$usagi" -e "local d = require 'usagi.dist'; assert(d.timeout() == 7.5, d.timeout())"
USAGI_DIST_TIMEOUT=7.5 "$usagi" -e "local d = require 'usagi.dist'; d.set_timeout(5); d.barrier()
  assert(d.timeout() == 5, d.timeout())"

echo "== a sweep's rank that finished its share first waits for the others without a deadline"
# rank 0 runs epochs=3 and epochs=200 (2-8 s here), rank 1 epochs=4 (0.5 s)
USAGI_DIST_TIMEOUT=1 timeout 120 mpirun -np 2 --oversubscribe "$usagi" sweep "$here/dp_synth.lua" \
  --grid epochs=3,4,200 --out "$out/sweep" --threads 1 >"$out/sweep.txt" 2>&1 || { cat "$out/sweep.txt"; exit 1; }
grep -q "^rank 1: \[1/1\] epochs=4 *ok" "$out/sweep.txt" || { cat "$out/sweep.txt"; exit 1; }
grep "^rank" "$out/sweep.txt"

echo "== a run whose rank 1 is stopped after its first checkpoint"
# (a checkpoint every epoch: mid-epoch ones are refused under mpirun for
# loops whose ranks carry their own running sums, as binary_addition's do)
run="$here/dp_synth.lua --set epochs=400 --set n=512 --keep 1000"
# each rank writes its process id (the shell's, which exec hands to usagi)
USAGI_DIST_TIMEOUT=3 timeout 120 mpirun -np 2 --oversubscribe sh -c \
  'echo $$ >"$0.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$out/pid" \
  "$usagi" run $run --out "$out" --name cut --threads 1 >"$out/cut.txt" 2>&1 &
job=$!
ckpt=$out/dp_synth/cut/checkpoints
i=0
until ls "$ckpt" 2>/dev/null | grep -q '^step-.*\.h5$'; do
  i=$((i + 1))
  [ $i -le 600 ] || { echo "no checkpoint after 60 s"; cat "$out/cut.txt"; kill $job; exit 1; }
  sleep 0.1
done
rank1=$(cat "$out/pid.1" 2>/dev/null || true)
[ -n "$rank1" ] || { echo "rank 1 did not write its process id"; kill $job; exit 1; }
kill -STOP "$rank1"
start=$(date +%s)
if wait $job; then rc=0; else rc=$?; fi
took=$(($(date +%s) - start))
[ "$rc" != 0 ] || { echo "the run ended well though rank 1 was stopped (finished first?)"; cat "$out/cut.txt"; exit 1; }
[ "$rc" != 124 ] || { echo "the run hung until timeout(1) ended it"; cat "$out/cut.txt"; exit 1; }
[ "$took" -le 30 ] || { echo "the run took $took s to end after rank 1 stopped"; exit 1; }
grep -q "usagi.dist: rank 1 .* #[0-9]* .*; rank 0 aborts the job" "$out/cut.txt" || { cat "$out/cut.txt"; exit 1; }
echo "exit $rc $took s after the stop: $(grep -m1 -o 'usagi.dist: .*' "$out/cut.txt")"
"$usagi" -e "
  local store, sys = require 'usagi.store', usagi.sys
  local dir, n = '$ckpt', 0
  for _, name in ipairs(sys.listdir(dir)) do
    if name:match('^step%-%d+%.h5\$') then
      local t = store.load(dir .. '/' .. name)
      assert(math.type(t.step) == 'integer' and type(t.objects) == 'table', name)
      n = n + 1
    end
  end
  assert(n > 0)
  print(n .. ' checkpoints of rank 0, each read whole')"

cp -r "$out/dp_synth/cut" "$out/dp_synth/one"
echo "== --resume under mpirun finishes it, and so does --resume on one rank"
timeout 120 mpirun -np 2 --oversubscribe "$usagi" run "$here/dp_synth.lua" --resume "$out/dp_synth/cut" \
  --threads 1 >"$out/resume.txt" 2>&1 || { cat "$out/resume.txt"; exit 1; }
"$usagi" -e "local f = usagi.h5.open('$out/dp_synth/cut/results.h5', 'r')
  local a = f:attrs('/'); assert(a.status == 'ok', 'status ' .. tostring(a.status))
  print('resumed from ' .. tostring(a.resumed_from):match('step%-%d+') .. ', status ' .. a.status)"
"$usagi" run "$here/dp_synth.lua" --resume "$out/dp_synth/one" --threads 1 >"$out/one.txt" 2>&1 ||
  { cat "$out/one.txt"; exit 1; }
"$usagi" -e "local f = usagi.h5.open('$out/dp_synth/one/results.h5', 'r')
  local a = f:attrs('/'); assert(a.status == 'ok', 'status ' .. tostring(a.status))
  print('one rank: resumed from ' .. tostring(a.resumed_from):match('step%-%d+') .. ', status ' .. a.status)"
