-- word2vec.lua -- Mikolov's word2vec command line on usagi's trainer, so a
-- command line carries over:
--
--   usagi scripts/word2vec.lua -train text.txt -output vectors.bin -cbow 0 -size 200
--       -window 5 -negative 5 -hs 0 -sample 1e-4 -threads 2 -binary 1 -iter 3
--
-- Options as his tool's, with his defaults; -output's format follows -binary
-- (or an .h5 name gives HDF5 with the vocabulary and counts). usagi's own:
-- -seed N (usagi.manual_seed), -max-vocab N, -lower 1, -classic 1 (Mikolov's
-- per-pair skip-gram loop instead of shared negatives), -save-vocab FILE.
-- Not supported (an error says so): -classes, -read-vocab, -debug.
local word2vec = require 'usagi.word2vec'

local HELP = [[
usage: usagi scripts/word2vec.lua -train FILE[,FILE...] -output FILE [options]
  -train FILE      text (plain or .gz), words split on whitespace, a sentence per line
  -output FILE     where the vectors go (.h5: HDF5; else Mikolov's text, or binary with -binary 1)
  -size N          vector length (100)
  -window N        max skip length between words (5)
  -sample T        threshold for subsampling frequent words (1e-3; 0 off)
  -hs 0|1          hierarchical softmax (0)
  -negative N      negative samples (5; 0 off)
  -threads N       Hogwild threads (usagi's thread count; 1: bit-identical from -seed)
  -iter N          epochs (5)
  -min-count N     drop words seen fewer times (5)
  -alpha A         starting learning rate (0.025 skip-gram, 0.05 CBOW)
  -cbow 0|1        CBOW (1) or skip-gram (0)
  -binary 0|1      binary output format (0)
  -save-vocab FILE the vocabulary with counts, "word count" per line
  -seed N          usagi's seed (0)
  -max-vocab N     keep the N most frequent words (0: all)
  -lower 0|1       lower-case ASCII letters (0)
  -classic 0|1     skip-gram: Mikolov's per-pair loop instead of shared negatives (0)]]

local args = { ... }
if #args == 0 or args[1] == '-h' or args[1] == '--help' then print(HELP); return end
local numeric = { size = true, window = true, sample = true, hs = true, negative = true, threads = true,
  iter = true, ['min-count'] = true, alpha = true, cbow = true, binary = true, seed = true,
  ['max-vocab'] = true, lower = true, classic = true }
local o = {}
for i = 1, #args, 2 do
  local k, v = args[i]:match('^%-(.*)$'), args[i + 1]
  if not k or v == nil then io.stderr:write('word2vec: expected "-option value" pairs, got ', args[i], '\n'); os.exit(2) end
  if k == 'classes' or k == 'read-vocab' or k == 'debug' then
    io.stderr:write('word2vec: -', k, ' is not supported\n'); os.exit(2)
  elseif numeric[k] then
    o[k] = tonumber(v) or (io.stderr:write('word2vec: -', k, ' needs a number, got ', v, '\n') and os.exit(2))
    o[k] = math.tointeger(o[k]) or o[k]
  elseif k == 'train' or k == 'output' or k == 'save-vocab' then o[k] = v
  else io.stderr:write('word2vec: unknown option -', k, ' (see -h)\n'); os.exit(2) end
end
if not o.train or not o.output then io.stderr:write('word2vec: -train and -output are required (see -h)\n'); os.exit(2) end
usagi.manual_seed(o.seed or 0)
local files = {}
for f in o.train:gmatch('[^,]+') do files[#files + 1] = f end
local ok, m = pcall(word2vec.train, { train = files, size = o.size, window = o.window, sample = o.sample,
  hs = o.hs, negative = o.negative, threads = o.threads, iter = o.iter, min_count = o['min-count'],
  alpha = o.alpha, cbow = o.cbow, max_vocab = o['max-vocab'], lower = o.lower == 1,
  shared = o.classic == 1 and 0 or 1 })
if not ok then io.stderr:write(tostring(m), '\n'); os.exit(1) end
io.stderr:write(('%d words, %d dims, %.0f words/s\n'):format(m:size(), m:dim(), m.words_per_second))
m:save(o.output, { format = o.output:match('%.h5$') and 'h5' or (o.binary == 1 and 'binary' or 'text') })
if o['save-vocab'] then
  local f = assert(io.open(o['save-vocab'], 'w'))
  for i, w in ipairs(m.words) do f:write(w, ' ', m.counts[i], '\n') end
  f:close()
end
