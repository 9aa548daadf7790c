#!/bin/sh
# tests/mpi/private_out.sh USAGI -- runs and sweeps under mpirun when the
# ranks share no filesystem, simulated on one machine: each rank works in
# a directory of its own and --out / --resume are relative, so rank 1 sees
# none of rank 0's files and rank 0 none of rank 1's (tests/mpi/two_hosts.sh
# does it across network namespaces). Checks:
#  1. a sweep of 3 combinations over 2 ranks: rank 1's run comes back to
#     rank 0, whose table has an ok row for every combination, and its
#     directory is under rank 0's --out, readable; a run that fails on
#     rank 1 has its row on rank 0 with the error;
#  2. a run whose rank 1 is killed (USAGI_FAULT) after the first
#     checkpoint: --resume, which rank 1 cannot read from its own disk,
#     gets the checkpoint from rank 0 and ends with the /params of the same
#     run uninterrupted, bit for bit; so does a run killed before its
#     first checkpoint (rank 1 then gets rank 0's results.h5);
#  3. a rank whose config is not rank 0's (its machine's copy of the
#     script differs; here another --set) ends the job with a message that
#     names the key, before any step.
set -e
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mpirun.sh"
usagi=$1
mpi_or_skip "$usagi"
mpi_scratch
mkdir "$out/rank.0" "$out/rank.1"
# each rank in $out/rank.<its rank>; FAULT1 becomes rank 1's USAGI_FAULT,
# and rank 1 alone takes the options in EXTRA1
apart() {
  mpi2 sh -c 'cd "$0.$OMPI_COMM_WORLD_RANK" || exit 1
    if [ "$OMPI_COMM_WORLD_RANK" = 1 ] && [ -n "$FAULT1" ]; then export USAGI_FAULT=$FAULT1; fi
    if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$@" $EXTRA1; fi
    exec "$@"' "$out/rank" "$@"
}
synth=$here/dp_synth.lua

echo "== a sweep whose ranks share no filesystem"
apart "$usagi" sweep "$synth" --grid lr=0.001,0.01,0.1 --smoke --out runs --threads 1 >"$out/sweep.txt" 2>&1 ||
  { cat "$out/sweep.txt"; exit 1; }
cat "$out/sweep.txt"
for lr in 0.001 0.01 0.1; do
  grep -q "_lr=$lr  *dp_synth  *$lr .* ok$" "$out/sweep.txt" || { echo "no ok row for lr=$lr"; exit 1; }
done
[ "$(ls -d "$out"/rank.0/runs/dp_synth/*_lr=* | wc -l)" = 3 ] || { echo "rank 0 does not hold the 3 runs"; exit 1; }
ls "$out"/rank.0/runs/dp_synth/sweep-*-rank1.log >/dev/null || { echo "rank 1's sweep log did not come to rank 0"; exit 1; }
"$usagi" show "$out"/rank.0/runs/dp_synth/*_lr=0.01 | grep -q "status ok"

echo "-- a run that fails on rank 1: its row on rank 0 has the error, and the sweep exits 1"
if apart "$usagi" sweep "$synth" --grid batch=16,0 --smoke --out runs --threads 1 >"$out/bad.txt" 2>&1; then
  echo "the sweep exited 0 though a run failed"; cat "$out/bad.txt"; exit 1
fi
grep -q "_batch=0 .* error: .*run:batches: B must be a positive integer, got 0" "$out/bad.txt" ||
  { echo "no row with the error of batch=0"; cat "$out/bad.txt"; exit 1; }
grep -q "_batch=16  *dp_synth .* ok$" "$out/bad.txt" || { cat "$out/bad.txt"; exit 1; }

echo "== --resume where rank 1 cannot see the checkpoint"
run="$synth --set epochs=3 --threads 1 --out runs"
apart "$usagi" run $run --name whole >"$out/whole.txt" 2>&1 || { cat "$out/whole.txt"; exit 1; }
# 6 steps an epoch: killed after step 8, past the checkpoint of epoch 1;
# after step 2, before any checkpoint
for at in 8 2; do
  if FAULT1=exit-after-step:$at apart "$usagi" run $run --name cut$at >"$out/cut.txt" 2>&1; then
    echo "the run went on though rank 1 was killed"; cat "$out/cut.txt"; exit 1
  fi
  apart "$usagi" run "$synth" --threads 1 --resume runs/dp_synth/cut$at >"$out/resume.txt" 2>&1 ||
    { cat "$out/resume.txt"; exit 1; }
  echo "killed after step $at, resumed:"
  "$usagi" "$here/same_params.lua" "$out/rank.0/runs/dp_synth/whole" "$out/rank.0/runs/dp_synth/cut$at" exact
done

echo "== a rank with another config than rank 0"
if EXTRA1="--set hidden=8" apart "$usagi" run $run --name other >"$out/other.txt" 2>&1; then
  echo "the run went on though rank 1 had hidden = 8"; cat "$out/other.txt"; exit 1
fi
grep -q "usagi run: rank 1 has another config than rank 0 (hidden: 8 here, 16 on rank 0); every machine must run the same script" \
  "$out/other.txt" || { cat "$out/other.txt"; exit 1; }
grep -o "usagi run: rank 1 has another config[^;]*" "$out/other.txt"
