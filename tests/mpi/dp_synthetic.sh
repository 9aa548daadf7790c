#!/bin/sh
# tests/mpi/dp_synthetic.sh USAGI -- data-parallel training on synthetic data
# (dp_synth.lua, Adam over run:batches with B = 16):
#  1. one rank with B and `mpirun -np 2` with B/2 each end with the same
#     parameters to f32 rounding;
#  2. with --dist-check, the 2 ranks' parameters are compared bit for bit
#     before every step's averaging and at the end (the run fails if not);
#  3. rank 0 alone wrote: one run directory, results.h5 with ranks = 2; the
#     ranks together trained on the 96 rows an epoch (each its half);
#  4. resume: the 2-rank run with its last two checkpoints removed (as if
#     killed after epoch 2) and resumed under mpirun ends with the same bits
#     as the uninterrupted run; the same with dropout, where each rank
#     draws from its own stream and a checkpoint keeps every rank's.
set -e
here=$(dirname "$0")
. "$here/mpirun.sh"
usagi=$1
mpi_or_skip "$usagi"
mpi_scratch
script=$here/dp_synth.lua

"$usagi" run "$script" --out "$out" --name one --threads 1 >/dev/null 2>&1
mpi2 "$usagi" run "$script" --out "$out" --name two --threads 1 --dist-check --bucket-mb 0.0005 >"$out/two.txt" 2>&1 ||
  { cat "$out/two.txt"; exit 1; }
echo "== 1 rank, B = 16  vs  2 ranks, B = 8 each"
"$usagi" "$here/same_params.lua" "$out/dp_synth/one" "$out/dp_synth/two" 1e-5 1e-6

echo "== rank 0 alone wrote"
[ "$(ls "$out/dp_synth" | tr '\n' ' ')" = "one two " ] || { ls -R "$out"; exit 1; }
"$usagi" -e "local f = usagi.h5.open('$out/dp_synth/two/results.h5', 'r')
  local a = f:attrs('/'); assert(a.ranks == 2 and a.status == 'ok', 'ranks ' .. tostring(a.ranks) .. ' status ' .. tostring(a.status))
  local rows = f:read('/metrics/rows')   -- each rank its half of every batch
  for i = 1, rows:numel() do assert(rows[i] == 96, 'epoch ' .. i .. ': the ranks trained on ' .. rows[i] .. ' rows, not 96') end
  print('ranks', a.ranks, 'status', a.status, 'rows an epoch', rows[1])"

echo "== the replica check fails when the ranks differ"
if mpi2 "$usagi" -e "
  local dist, nn = require 'usagi.dist', require 'usagi.nn'
  local m = nn.Linear(3, 2)
  local dp = dist.data_parallel(m:parameters(), { check = true })
  usagi.no_grad(function() if dist.rank() == 1 then m.bias:add_(1e-7) end end)
  m(usagi.ones(1, 3)):sum():backward()" >"$out/bad.txt" 2>&1; then
  echo "a rank with different parameters passed the check"; cat "$out/bad.txt"; exit 1
fi
grep -q "parameter 2, of size (2,), differs between rank 0 and another rank" "$out/bad.txt" || { cat "$out/bad.txt"; exit 1; }
echo "refused: $(grep -m1 -o 'dist: after.*rank' "$out/bad.txt")"

echo "== resume under mpirun"
cp -r "$out/dp_synth/two" "$out/dp_synth/cut"
ls "$out/dp_synth/cut/checkpoints" | sort | tail -n 2 | while read -r f; do rm "$out/dp_synth/cut/checkpoints/$f"; done
mpi2 "$usagi" run "$script" --resume "$out/dp_synth/cut" --threads 1 --dist-check >"$out/cut.txt" 2>&1 ||
  { cat "$out/cut.txt"; exit 1; }
"$usagi" "$here/same_params.lua" "$out/dp_synth/two" "$out/dp_synth/cut" exact

echo "== resume under mpirun, with dropout (every rank's generator state)"
mpi2 "$usagi" run "$script" --out "$out" --name drop --set dropout=0.3 --threads 1 >"$out/drop.txt" 2>&1 ||
  { cat "$out/drop.txt"; exit 1; }
cp -r "$out/dp_synth/drop" "$out/dp_synth/dropcut"
ls "$out/dp_synth/dropcut/checkpoints" | sort | tail -n 2 | while read -r f; do rm "$out/dp_synth/dropcut/checkpoints/$f"; done
mpi2 "$usagi" run "$script" --resume "$out/dp_synth/dropcut" --threads 1 --dist-check >"$out/dropcut.txt" 2>&1 ||
  { cat "$out/dropcut.txt"; exit 1; }
"$usagi" "$here/same_params.lua" "$out/dp_synth/drop" "$out/dp_synth/dropcut" exact
