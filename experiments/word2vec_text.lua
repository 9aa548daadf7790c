-- word2vec_text.lua -- skip-gram vectors on the English text of the shared
-- data (14 Gutenberg books, the State of the Union and inaugural addresses:
-- about 2.4M words, lower-cased, punctuation removed) and how good they
-- are: Spearman ρ against human similarity judgements (WordSim-353,
-- SimLex-999) and the accuracy on Mikolov's analogy questions (a : b :: c : ?,
-- per section and in all, over the 30,000 most frequent words; 3CosAdd and
-- 3CosMul).
--
--   skip-gram: maximise Σ_t Σ_{0<|j|<=b_t} [ log σ(v'_{w_t} · v_{w_{t+j}})
--                                         + Σ_k log σ(-v'_{n_k} · v_{w_{t+j}}) ]
--   (b_t drawn in 1..window, n_k ~ unigram^0.75, frequent words subsampled
--   with threshold `sample`, the learning rate decaying linearly to 0)
--
-- The corpus is too small for good analogies (Mikolov used billions of
-- words); what it shows is the method, and that the scores rise with epochs
-- and size. The evaluation sets come from word2vec_eval/ of the data.
--
--   usagi run experiments/word2vec_text.lua                    # 1 thread: bit-identical from the seed
--   usagi run experiments/word2vec_text.lua --set threads=2 --set iter=10
--   usagi infer runs/word2vec_text/<run-id> king 'man king woman'  # neighbours, an analogy
local usagi = require 'usagi'
local data = require 'usagi.data'
local word2vec = require 'usagi.word2vec'

-- usagi infer RUN_DIR car -> its neighbours; 'man king woman' -> queen, one hopes
local answering = word2vec.answering('word2vec_text')

return usagi.experiment {
  name = 'word2vec_text',
  config = { size = 100, window = 5, sample = 1e-3, negative = 5, hs = 0, iter = 5, min_count = 5,
    threads = 1, alpha = 0.025, shared = 1, limit = 0, restrict = 30000 },
  smoke = { iter = 1, limit = 4000, min_count = 2 },
  model = answering.model, infer = answering.infer,
  infer_options = answering.infer_options, infer_help = answering.infer_help,

  run = function(run, cfg)
    local tmp = os.tmpname()
    local _, n = word2vec.english_text(tmp)
    if cfg.limit > 0 then                     -- smoke runs: the first lines only
      local lines = {}
      for line in io.lines(tmp) do
        lines[#lines + 1] = line
        if #lines == cfg.limit then break end
      end
      local f = assert(io.open(tmp, 'w'))
      f:write(table.concat(lines, '\n'), '\n')
      f:close()
    end
    run:print(('word2vec_text: english_text, %d words%s'):format(n, cfg.limit > 0 and (', first %d lines'):format(cfg.limit) or ''))
    local ok, m = pcall(word2vec.train, { train = tmp, cbow = 0, size = cfg.size, window = cfg.window,
      sample = cfg.sample, negative = cfg.negative, hs = cfg.hs, iter = cfg.iter, min_count = cfg.min_count,
      threads = cfg.threads, alpha = cfg.alpha, shared = cfg.shared, quiet = run.quiet })
    os.remove(tmp)
    if not ok then error(m, 0) end
    run:print(('skip-gram: %d words, %d dims, %.0f words/s over %d epochs (%.1f s)'):format(m:size(), m:dim(),
      m.words_per_second, cfg.iter, m.seconds))
    -- what usagi.runs.load needs: the words, and the vectors as the model's parameters
    run:keep_data { vocab = data.Vocab.new(m.words) }
    run:track { model = m }
    local res = {}
    for _, set in ipairs { { 'wordsim353', 'wordsim353.tsv' }, { 'simlex999', 'simlex999.txt' } } do
      local r = m:evaluate_similarity(data.path('word2vec_eval/' .. set[2]))
      res[set[1]] = r.rho
      run:print(('%-10s Spearman rho %.3f over %d pairs (%d with an unknown word)'):format(set[1], r.rho, r.pairs, r.oov))
    end
    local q = data.path('word2vec_eval/questions-words.txt')
    for _, method in ipairs { 'add', 'mul' } do
      local a = m:evaluate_analogy(q, { restrict = cfg.restrict, method = method })
      res['analogy_' .. method] = a.accuracy
      run:print(('analogy 3Cos%s: %.2f%% of %d questions (%d skipped: a word unknown or not among the %d most frequent)')
        :format(method == 'add' and 'Add' or 'Mul', 100 * a.accuracy, a.total, a.skipped, cfg.restrict))
      if method == 'add' then
        for _, s in ipairs(a.sections) do
          if s.total > 0 then run:print(('  %-28s %5.1f%% of %d'):format(s.name, 100 * s.correct / s.total, s.total)) end
        end
      end
    end
    for _, w in ipairs { 'king', 'london', 'good' } do
      if m:contains(w) then
        local parts = {}
        for i, p in ipairs(m:most_similar(w, 5)) do parts[i] = ('%s %.2f'):format(p[1], p[2]) end
        run:print(('[query] %s: %s'):format(w, table.concat(parts, ', ')))
      end
    end
    run:log { words_per_second = m.words_per_second, wordsim353 = res.wordsim353, simlex999 = res.simlex999,
      analogy_add = res.analogy_add, analogy_mul = res.analogy_mul }
    if run.dir then m:save(run.dir .. '/vectors.h5') end
    return { model = m, scores = res }
  end,
}
