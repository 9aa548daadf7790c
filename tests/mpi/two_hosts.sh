#!/bin/sh
# tests/mpi/two_hosts.sh USAGI -- runs and sweeps across two hosts: two
# network namespaces of this machine joined by a veth pair, mpirun across
# them over TCP (tests/mpi/netns.sh). Skipped, saying why, where the
# namespaces cannot be made (not root, no `ip netns`). Checks:
#  0. usagi asks OpenMPI to yield the core of a waiting rank when the job
#     spans hosts (mpi_yield_when_idle 1), not on one host, and a value
#     the user gives wins;
#  1. the PTB model's smoke run on the two hosts ends with the /params of
#     the same run on one host (2 ranks over loopback), bit for bit;
#  2. rank 1 killed (USAGI_FAULT) after step 150, past the checkpoint of
#     epoch 1: the job ends within seconds; --resume on the two hosts ends
#     with the bits of the uninterrupted run, and so does --resume with
#     host b's copy of the output directory private to it (it cannot see
#     the checkpoint: rank 0 sends it);
#  3. a sweep on the two hosts lists every combination, ok, and so does
#     one with host b's output directory private (its run comes back to
#     rank 0).
# The namespaces and every process in them are removed at the end, also
# when a check fails.
set -e
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mpirun.sh"
. "$here/netns.sh"
usagi=$1
mpi_or_skip "$usagi"
reason=$(hosts_skip_reason)
if [ -n "$reason" ]; then echo "SKIP: $reason"; exit 77; fi
if ! "$usagi" -e 'require("usagi.data").path("ptb/ptb.valid.txt")' >/dev/null 2>&1; then
  echo "SKIP: the Penn Treebank is not here (usagi data get ptb)"; exit 77
fi
out=$(mktemp -d)
trap 'hosts_down; rm -rf "$out"' EXIT
trap 'exit 1' INT TERM
hosts_up "$out"
root=$(cd "$here/../.." && pwd)
ptb="$root/experiments/ptb_lm.lua --threads 1"

echo "== 0. a rank waiting across hosts yields its core (mpi_yield_when_idle), on one host it need not"
yield='require("usagi.dist").init(); io.write(tostring(os.getenv("OMPI_MCA_mpi_yield_when_idle")), " ")'
[ "$(mpi_hosts "$usagi" -e "$yield" 2>&1)" = "1 1 " ] || { mpi_hosts "$usagi" -e "$yield"; exit 1; }
[ "$(mpi2 "$usagi" -e "$yield" 2>&1)" = "nil nil " ] || { mpi2 "$usagi" -e "$yield"; exit 1; }
[ "$(mpi_hosts --mca mpi_yield_when_idle 0 "$usagi" -e "$yield" 2>&1)" = "0 0 " ] ||
  { echo "the user's mpi_yield_when_idle 0 did not win"; exit 1; }
echo "two hosts: 1, one host: OpenMPI's own, the user's value wins"

echo "== 1. PTB smoke: one host, two hosts"
mpi2 "$usagi" run $ptb --smoke --out "$out/runs" --name one >"$out/one.txt" 2>&1 || { cat "$out/one.txt"; exit 1; }
mpi_hosts "$usagi" run $ptb --smoke --out "$out/runs" --name two >"$out/two.txt" 2>&1 || { cat "$out/two.txt"; exit 1; }
"$usagi" -e "local a = usagi.h5.open('$out/runs/ptb_lm/two/results.h5', 'r'):attrs('/')
  assert(a.ranks == 2 and a.status == 'ok', 'ranks ' .. tostring(a.ranks) .. ', status ' .. tostring(a.status))"
"$usagi" "$here/same_params.lua" "$out/runs/ptb_lm/one" "$out/runs/ptb_lm/two" 0 0

echo "== 2. rank 1 killed after step 150 on host b, then --resume"
if mpi_hosts sh -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export USAGI_FAULT=exit-after-step:150; exec "$@"' rank \
     "$usagi" run $ptb --smoke --out "$out/runs" --name cut >"$out/cut.txt" 2>&1; then
  echo "the run went on though rank 1 was killed"; cat "$out/cut.txt"; exit 1
else
  rc=$?
fi
ended=$(date +%s)
ckpt=$out/runs/ptb_lm/cut/checkpoints/step-000000124.h5
[ -f "$ckpt" ] || { echo "no checkpoint of epoch 1"; ls -R "$out/runs/ptb_lm/cut"; exit 1; }
# the kill comes 26 steps (a fraction of a second) after that checkpoint
took=$((ended - $(stat -c %Y "$ckpt")))
[ "$took" -le 20 ] || { echo "the job took $took s to end after rank 1 died"; cat "$out/cut.txt"; exit 1; }
echo "the job ended with exit $rc, $took s after the checkpoint of step 124"
cp -r "$out/runs/ptb_lm/cut" "$out/runs/ptb_lm/cut_private"
mpi_hosts "$usagi" run $ptb --resume "$out/runs/ptb_lm/cut" >"$out/resume.txt" 2>&1 || { cat "$out/resume.txt"; exit 1; }
"$usagi" "$here/same_params.lua" "$out/runs/ptb_lm/two" "$out/runs/ptb_lm/cut" 0 0
echo "-- the same with host b's output directory private"
PRIVATE=$out/runs mpi_hosts "$usagi" run $ptb --resume "$out/runs/ptb_lm/cut_private" >"$out/resume2.txt" 2>&1 ||
  { cat "$out/resume2.txt"; exit 1; }
"$usagi" "$here/same_params.lua" "$out/runs/ptb_lm/two" "$out/runs/ptb_lm/cut_private" 0 0

echo "== 3. a sweep on the two hosts, then with host b's output directory private"
for mode in shared private; do
  mkdir -p "$out/$mode"
  if [ $mode = private ]; then export PRIVATE=$out/$mode; fi
  mpi_hosts "$usagi" sweep "$here/dp_synth.lua" --grid lr=0.001,0.01,0.1 --smoke --threads 1 \
    --out "$out/$mode" >"$out/sweep-$mode.txt" 2>&1 || { cat "$out/sweep-$mode.txt"; exit 1; }
  unset PRIVATE
  grep -q "^rank 1: \[1/1\] lr=0.01 *ok" "$out/sweep-$mode.txt" || { cat "$out/sweep-$mode.txt"; exit 1; }
  for lr in 0.001 0.01 0.1; do
    grep -q "_lr=$lr  *dp_synth  *$lr .* ok$" "$out/sweep-$mode.txt" ||
      { echo "$mode: no ok row for lr=$lr"; cat "$out/sweep-$mode.txt"; exit 1; }
  done
  "$usagi" show "$out/$mode"/dp_synth/*_lr=0.01 | grep -q "status ok"
  echo "$mode: 3 ok rows, rank 1's run readable on host a"
done
