-- word2vec_ptb.lua -- CBOW word vectors on the Penn Treebank (929k words,
-- 10,000-word vocabulary) and the nearest neighbours of a few words, as in
-- chapters 3-4 of "Deep Learning from Scratch 2" (you, year, car, toyota).
--
-- Two trainers of the same model, chosen by `trainer`:
--
--   fast      usagi.word2vec: Mikolov's CBOW in C, h = (1/2w) Σ_{c in window} v_c,
--             maximise log σ(v'_w · h) + Σ_{k=1..K} log σ(-v'_{n_k} · h),
--             n_k ~ unigram^0.75; SGD, the learning rate decaying linearly
--             (threads = 1: bit-identical runs from the seed).
--   autograd  the course's network: two nn.Embedding tables W_in, W_out, the
--             same loss as binary cross-entropy with logits over one true and
--             K sampled targets per position, the context window fixed (no
--             shrinking, no subsampling), Adam on mini-batches; usagi's
--             autograd does the backward pass. Slower by orders of magnitude:
--             this is the "what the fast trainer computes" view.
--
-- Both end with the same queries (cosine on normalised W_in rows) and a 2-D
-- PCA picture of chosen words in the run directory (words.png).
--
--   usagi run experiments/word2vec_ptb.lua                       # fast CBOW, 5 epochs
--   usagi run experiments/word2vec_ptb.lua --set trainer=autograd --set epochs=3
--   usagi run experiments/word2vec_ptb.lua --set threads=2       # Hogwild: not bit-identical
--   usagi infer runs/word2vec_ptb/<run-id> car 'man king woman'  # neighbours, an analogy
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local word2vec = require 'usagi.word2vec'

local QUERIES = 'you,year,car,toyota'
local PICTURE = 'you,we,i,they,he,she,year,month,week,day,car,truck,auto,toyota,honda,nissan,ford,'
  .. 'monday,friday,tuesday,stock,shares,bonds'

local function split(s)
  local out = {}
  for w in s:gmatch('[^,]+') do out[#out + 1] = w end
  return out
end

-- PTB's train text, whole or its first `limit` lines (written beside the run).
local function corpus(run, limit)
  local src = data.path('ptb/ptb.train.txt.gz')
  if limit == 0 then return src end
  local out = (run.dir or os.tmpname():match('^(.*)/')) .. ('/ptb_first_%d.txt'):format(limit)
  local lines = {}
  for line in usagi.sys.read(src):gmatch('[^\n]*\n') do
    lines[#lines + 1] = line
    if #lines == limit then break end
  end
  local f = assert(io.open(out, 'w'))
  f:write(table.concat(lines))
  f:close()
  return out
end

-- The course's CBOW with negative sampling, trained through autograd.
local function train_autograd(run, cfg, path)
  local words, counts, ids = {}, {}, {}
  local index, stream = {}, {}
  for w in usagi.sys.read(path):gmatch('%S+') do
    local id = index[w]
    if not id then
      words[#words + 1], counts[#words + 1] = w, 0
      id = #words
      index[w] = id
    end
    counts[id] = counts[id] + 1
    stream[#stream + 1] = id
  end
  local V, H, C, K, B = #words, cfg.size, cfg.window, cfg.negative, cfg.batch
  local N = #stream - 2 * C                                   -- positions with a full window
  -- contexts (N, 2C) and targets (N) as tensors, built once
  local ctx, tgt = {}, {}
  for p = C + 1, #stream - C do
    local row = {}
    for o = -C, C do if o ~= 0 then row[#row + 1] = stream[p + o] end end
    ctx[#ctx + 1], tgt[#tgt + 1] = row, stream[p]
  end
  ctx, tgt = usagi.tensor(ctx, 'i32'), usagi.tensor(tgt, 'i32')
  if cfg.limit_batches > 0 and cfg.limit_batches * B < N then      -- smoke runs: the first positions only
    N = cfg.limit_batches * B
    ctx, tgt = ctx:narrow(1, 1, N), tgt:narrow(1, 1, N)
  end
  local noise = usagi.tensor(counts, 'f64'):pow(0.75):float()  -- P(w) ∝ c_w^0.75
  local W_in, W_out = nn.Embedding(V, H), nn.Embedding(V, H)
  usagi.no_grad(function()
    W_in.weight:normal_(0, 0.01)
    W_out.weight:normal_(0, 0.01)
  end)
  local opt = optim.Adam({ W_in.weight, W_out.weight }, { lr = cfg.lr })
  local labels = usagi.cat({ usagi.ones(B, 1), usagi.zeros(B, K) }, 2)
  -- what a checkpoint holds: the input vectors (the run's /params), the
  -- output ones and Adam's moments
  run:track { model = W_in, output = W_out, optim = opt }
  run:print(('autograd CBOW: V %d, H %d, window %d, %d negatives, batch %d, %d positions'):format(V, H, C, K, B, N))
  local t0 = usagi.sys.monotonic()
  for epoch in run:epochs(cfg.epochs) do
    for xb, yb in run:batches({ ctx, tgt }, B, { carry = {} }) do       -- nothing carried but the order
      if xb:size(1) == B then                                           -- the last short batch is left out
        local h = W_in(xb):mean(2)                                        -- (B, H)
        local targets = usagi.cat({ yb:view(B, 1), usagi.multinomial(noise, B * K, true):view(B, K) }, 2)
        local scores = W_out(targets):bmm(h:unsqueeze(3)):squeeze(3)      -- (B, 1 + K)
        local loss = usagi.bce_with_logits(scores, labels) * (K + 1)      -- sum over the K+1 targets
        opt:minimize(loss)
        run:log { loss = loss:item() }
      end
    end
  end
  local m = word2vec.from_vectors(words, W_in.weight:detach(), counts)
  m.seconds = usagi.sys.monotonic() - t0
  run:print(('autograd CBOW: %d epochs in %.0f s (%.0f positions/s)'):format(cfg.epochs, m.seconds,
    cfg.epochs * N / m.seconds))
  return m
end

-- usagi infer RUN_DIR car -> its neighbours; 'man king woman' -> queen, one hopes
local answering = word2vec.answering('word2vec_ptb')

return usagi.experiment {
  name = 'word2vec_ptb',
  config = { trainer = 'fast', size = 100, window = 5, negative = 5, hs = 0, sample = 1e-3, iter = 5,
    min_count = 1, threads = 1, alpha = 0.05, epochs = 3, batch = 100, lr = 0.001, limit = 0,
    limit_batches = 0, queries = QUERIES, picture = PICTURE, k = 5 },
  smoke = { iter = 1, limit = 3000, epochs = 1, limit_batches = 30 },
  model = answering.model, infer = answering.infer,
  infer_options = answering.infer_options, infer_help = answering.infer_help,

  run = function(run, cfg)
    local path = corpus(run, cfg.limit)
    local m
    if cfg.trainer == 'fast' then
      m = word2vec.train { train = path, cbow = 1, size = cfg.size, window = cfg.window, negative = cfg.negative,
        hs = cfg.hs, sample = cfg.sample, iter = cfg.iter, min_count = cfg.min_count, threads = cfg.threads,
        alpha = cfg.alpha, quiet = run.quiet }
      run:print(('fast CBOW: %d words, %d dims, %.0f words/s over %d epochs'):format(m:size(), m:dim(),
        m.words_per_second, cfg.iter))
      run:log { words_per_second = m.words_per_second }
    elseif cfg.trainer == 'autograd' then
      m = train_autograd(run, cfg, path)
    else
      error(("word2vec_ptb: trainer must be 'fast' or 'autograd', got %q"):format(cfg.trainer))
    end
    -- what usagi.runs.load needs: the words, and the vectors as the model's parameters
    run:keep_data { vocab = data.Vocab.new(m.words) }
    if cfg.trainer == 'fast' then run:track { model = m } end
    local neighbours = {}
    for _, q in ipairs(split(cfg.queries)) do
      if m:contains(q) then
        local got = m:most_similar(q, cfg.k)
        neighbours[q] = got
        local parts = {}
        for i, p in ipairs(got) do parts[i] = ('%s %.3f'):format(p[1], p[2]) end
        run:print(('[query] %s: %s'):format(q, table.concat(parts, ', ')))
      end
    end
    if run.dir then
      local ok, err = pcall(m.plot_words, m, split(cfg.picture), run.dir .. '/words.png',
        { title = ('PTB %s CBOW: the first two principal components'):format(cfg.trainer) })
      run:print(ok and ('picture: ' .. run.dir .. '/words.png') or ('no picture: ' .. tostring(err)))
      m:save(run.dir .. '/vectors.h5')
    end
    return { model = m, neighbours = neighbours }
  end,
}
