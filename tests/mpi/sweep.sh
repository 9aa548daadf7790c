#!/bin/sh
# tests/mpi/sweep.sh USAGI -- `mpirun -np 2 usagi sweep` deals 3 combinations
# out to 2 ranks (rank 0 runs the 1st and 3rd, rank 1 the 2nd), each a
# one-rank run of its own; rank 0 alone prints the table, with all three
# rows, after every rank is done. Then --seeds 1,2,3 over the two ranks:
# one row of mean ± std, n = 3.
set -e
here=$(dirname "$0")
. "$here/mpirun.sh"
usagi=$1
mpi_or_skip "$usagi"
mpi_scratch

mpi2 "$usagi" sweep "$here/dp_synth.lua" --grid lr=0.001,0.01,0.1 --smoke --out "$out" >"$out/sweep.txt" 2>&1 ||
  { cat "$out/sweep.txt"; exit 1; }
cat "$out/sweep.txt"
grep -q "^rank 0: \[1/2\] lr=0.001 *ok" "$out/sweep.txt"
grep -q "^rank 1: \[1/1\] lr=0.01 *ok" "$out/sweep.txt"
grep -q "^rank 0: \[2/2\] lr=0.1 *ok" "$out/sweep.txt"
[ "$(grep -c '^run ' "$out/sweep.txt")" = 1 ] || { echo "the table was printed more than once"; exit 1; }
for lr in 0.001 0.01 0.1; do
  grep -q "_lr=$lr  *dp_synth  *$lr .* ok$" "$out/sweep.txt" || { echo "no ok row for lr=$lr"; exit 1; }
done
# each run is a run of one rank, with its results
for d in "$out"/dp_synth/*_lr=*; do
  "$usagi" -e "local f = usagi.h5.open('$d/results.h5', 'r'); local a = f:attrs('/')
    assert(a.ranks == 1 and a.status == 'ok', '$d: ranks ' .. tostring(a.ranks))"
done
[ "$(ls -d "$out"/dp_synth/*_lr=* | wc -l)" = 3 ]
# --seeds over the ranks: one row of mean ± std over the three seeds, n = 3
mpi2 "$usagi" sweep "$here/dp_synth.lua" --seeds 1,2,3 --smoke --out "$out/seeds" >"$out/seeds.txt" 2>&1 ||
  { cat "$out/seeds.txt"; exit 1; }
cat "$out/seeds.txt"
grep -q "^dp_synth  *3  *1,2,3  .* ± .*3 ok$" "$out/seeds.txt" || { echo "no row of 3 seeds"; exit 1; }
