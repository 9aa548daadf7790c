--[[
word2vec.lua -- usagi's word2vec against gensim (Debian's python3-gensim),
side by side in one run: the same corpus, Mikolov's hyperparameters (size
100, window 5, sample 1e-3, negative 5 or hs 1, min_count 5, alpha 0.025
for skip-gram and 0.05 for CBOW), the same threads, rounds alternating
usagi, gensim, usagi, gensim, ... Driver: scripts/bench/word2vec.

    <build>/usagi scripts/bench/word2vec.lua [--threads 2] [--rounds 3] [--iter 5]
        [--modes sg_ns,sg_hs,cbow_ns,cbow_hs] [--corpus FILE] [--classic]

The corpus defaults to the English text of the shared data
(english_text/*.zip, about 2.4M words, lower-cased, punctuation removed;
written to a temporary file). words/s is the corpus's words times the
epochs over the wall time of training alone (the vocabulary scan left out
on both sides, words counted before subsampling on both sides). After
each training both sides evaluate their vectors: Spearman ρ on
WordSim-353 and SimLex-999, analogy accuracy on questions-words.txt over
the 30,000 most frequent words (3CosAdd). The table gives medians over
the rounds and the ratio of the medians. --classic adds usagi's
per-pair skip-gram loop (Mikolov's) as a row of its own.
]]
local usagi = require 'usagi'
local word2vec = require 'usagi.word2vec'
local data = require 'usagi.data'

local opts = { threads = 2, rounds = 3, iter = 5, modes = 'sg_ns,sg_hs,cbow_ns,cbow_hs' }
local i = 1
while i <= #arg do
  local k, v = arg[i], arg[i + 1]
  if k == '--threads' or k == '--rounds' or k == '--iter' then opts[k:sub(3)] = math.tointeger(tonumber(v)); i = i + 2
  elseif k == '--modes' or k == '--corpus' then opts[k:sub(3)] = v; i = i + 2
  elseif k == '--classic' then opts.classic = true; i = i + 1
  elseif k == '-h' or k == '--help' then print((debug.getinfo(1, 'S').source:sub(2))); os.exit(0)
  else io.stderr:write('word2vec.lua: bad option ', tostring(k), ' (see --help)\n'); os.exit(2) end
end
usagi.set_num_threads(opts.threads)

local tmp
if not opts.corpus then
  tmp = os.tmpname()
  local _, n = word2vec.english_text(tmp)
  opts.corpus = tmp
  io.stderr:write(('corpus: english_text, %d words\n'):format(n))
end
local eval_dir = data.path('word2vec_eval/wordsim353.tsv'):match('^(.*)/')
local peer = (arg[0]:match('^(.*)/') or '.') .. '/peers/word2vec_gensim.py'
local info = usagi.blas_info()
print(('# word2vec | usagi %s | %s | threads %d | iter %d | rounds %d | corpus %s'):format(
  usagi.version or '', info.core, opts.threads, opts.iter, opts.rounds, tmp and 'english_text' or opts.corpus))

local function usagi_run(mode, classic)
  local m = word2vec.train { train = opts.corpus, cbow = mode:match('^cbow') and 1 or 0,
    hs = mode:match('hs$') and 1 or 0, negative = mode:match('hs$') and 0 or 5,
    threads = opts.threads, iter = opts.iter, shared = classic and 0 or 1, quiet = true }
  local e = m:evaluate()
  return { wps = m.words_per_second, ws353 = e.wordsim353.rho, simlex = e.simlex999.rho, analogy = e.analogy.accuracy }
end

local function gensim_run(mode)
  local cmd = ('OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 %s %s %s %d %d %s')
    :format(opts.threads, opts.threads, peer, opts.corpus, mode, opts.threads, opts.iter, eval_dir)
  local p = assert(io.popen(cmd))
  local line = p:read('a')
  p:close()
  local wps, ws, sl, an = line:match('words_per_s (%S+) seconds %S+ ws353 (%S+) simlex (%S+) analogy (%S+)')
  if not wps then error('gensim failed: ' .. line) end
  return { wps = tonumber(wps), ws353 = tonumber(ws), simlex = tonumber(sl), analogy = tonumber(an) }
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local rows = {}
for mode in opts.modes:gmatch('[^,]+') do
  local sides = { { 'usagi', function() return usagi_run(mode) end } }
  if opts.classic and mode == 'sg_ns' then sides[#sides + 1] = { 'usagi-classic', function() return usagi_run(mode, true) end } end
  sides[#sides + 1] = { 'gensim', function() return gensim_run(mode) end }
  local got = {}
  for r = 1, opts.rounds do
    for _, s in ipairs(sides) do
      local res = s[2]()
      got[s[1]] = got[s[1]] or {}
      table.insert(got[s[1]], res)
      print(('%-8s %-14s round %d  %9.0f words/s  ws353 %.3f  simlex %.3f  analogy %.3f'):format(
        mode, s[1], r, res.wps, res.ws353, res.simlex, res.analogy))
      io.stdout:flush()
    end
  end
  for _, s in ipairs(sides) do
    local med = {}
    for _, k in ipairs { 'wps', 'ws353', 'simlex', 'analogy' } do
      local xs = {}
      for _, res in ipairs(got[s[1]]) do xs[#xs + 1] = res[k] end
      med[k] = median(xs)
    end
    rows[#rows + 1] = { mode = mode, side = s[1], med = med }
  end
end

print()
print('| mode | side | words/s (median) | vs gensim | WordSim-353 ρ | SimLex-999 ρ | analogy acc. |')
print('|---|---|---:|---:|---:|---:|---:|')
local gensim_wps = {}
for _, r in ipairs(rows) do if r.side == 'gensim' then gensim_wps[r.mode] = r.med.wps end end
for _, r in ipairs(rows) do
  print(('| %s | %s | %.0f | %.2fx | %.3f | %.3f | %.3f |'):format(r.mode, r.side, r.med.wps,
    r.med.wps / gensim_wps[r.mode], r.med.ws353, r.med.simlex, r.med.analogy))
end
if tmp then os.remove(tmp) end
