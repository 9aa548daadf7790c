#!/bin/sh
# tests/mpi/dp_ptb.sh USAGI -- the PTB language model's smoke config
# (experiments/ptb_lm.lua: 2 x 32 LSTM, B = 8 columns, T = 10, 2 epochs of
# 124 windows) on one rank and on `mpirun -np 2` (columns 1-4 and 5-8, each
# rank carrying its columns' state): the same data in every step, so the
# same parameters to f32 rounding after 248 SGD steps with clipping; the
# ranks' parameters are compared bit for bit at every step (--dist-check);
# the perplexities (NLL summed over the ranks) agree. Skipped without PTB.
set -e
here=$(dirname "$0")
. "$here/mpirun.sh"
usagi=$1
mpi_or_skip "$usagi"
if ! "$usagi" -e 'require("usagi.data").path("ptb/ptb.valid.txt")' >/dev/null 2>&1; then
  echo "SKIP: the Penn Treebank is not here (usagi data get ptb)"; exit 77
fi
mpi_scratch
script=experiments/ptb_lm.lua

"$usagi" run $script --smoke --out "$out" --name one --threads 1 >"$out/one.txt" 2>&1 ||
  { cat "$out/one.txt"; exit 1; }
mpi2 "$usagi" run $script --smoke --out "$out" --name two --threads 1 --dist-check >"$out/two.txt" 2>&1 ||
  { cat "$out/two.txt"; exit 1; }
echo "== 1 rank, B = 8  vs  2 ranks, 4 columns each"
"$usagi" "$here/same_params.lua" "$out/ptb_lm/one" "$out/ptb_lm/two" 1e-4 1e-5
# each rank trained on its 4 columns: the tokens of both make one rank's 8
for r in one two; do
  "$usagi" -e "local f = usagi.h5.open('$out/ptb_lm/$r/results.h5', 'r')
    local t = f:read('/metrics/train_tokens'); assert(t:numel() == 2)
    assert(t[1] == 124 * 10 * 8, '$r: ' .. t[1] .. ' tokens an epoch, not 9920')
    print('$r: ' .. math.tointeger(t[1]) .. ' tokens an epoch')"
done
grep "ppl" "$out/one.txt" | grep -v '\[' > "$out/one.ppl"
grep "ppl" "$out/two.txt" | grep -v '\[' > "$out/two.ppl"
echo "1 rank:"; sed 's/ *[0-9]* tokens\/s.*//' "$out/one.ppl"
echo "2 ranks:"; sed 's/ *[0-9]* tokens\/s.*//' "$out/two.ppl"
# the printed perplexities (2 decimals) are the same
[ "$(sed 's/ *[0-9]* tokens\/s.*//' "$out/one.ppl")" = "$(sed 's/ *[0-9]* tokens\/s.*//' "$out/two.ppl")" ]
