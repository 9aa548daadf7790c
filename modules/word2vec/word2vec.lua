-- usagi.word2vec -- word vectors by skip-gram or CBOW (Mikolov et al. 2013),
-- trained in C over a streamed corpus, and the queries and evaluations on
-- them. The C side (w2v_vocab.c, word2vec.c, w2v_io.c) does the counting,
-- the training and the file formats; this face holds the model and does the
-- queries with tensor ops (one GEMM per batch of queries).
--
--   local word2vec = require 'usagi.word2vec'
--   local m = word2vec.train { train = 'corpus.txt.gz', size = 100, cbow = 0 }
--   m:most_similar('king', 10)     --> { {word, cosine}, ... }
--   m:analogy('man', 'king', 'woman')   --> 'queen' (man : king :: woman : ?)
--   m:save('vectors.h5'); m:save('vectors.bin') ; word2vec.load('vectors.bin')
local usagi = require 'usagi'
local M = ...

-- ==== Options ============================================================

-- Mikolov's names and defaults (word2vec.c), so a command line carries over;
-- alpha is 0.025 for skip-gram and 0.05 for CBOW, as his tool sets it.
-- threads: his default is 12; here it is usagi's thread count (--threads,
-- all cores by default). threads = 1 is the deterministic mode.
M.defaults = {
  size = 100, window = 5, sample = 1e-3, hs = 0, negative = 5, threads = nil, iter = 5,
  min_count = 5, alpha = nil, cbow = 1, max_vocab = 0, lower = false,
  shared = 1,          -- skip-gram: share negatives across the window (Ji et al. 2016); 0: Mikolov's loop
  quiet = false,       -- no progress bar
}

local KNOWN = {}
for k in pairs(M.defaults) do KNOWN[k] = true end
KNOWN.train, KNOWN.files, KNOWN.progress, KNOWN['min-count'] = true, true, true, true
KNOWN.threads, KNOWN.alpha = true, true

local function fail(fn, fmt, ...) error(('word2vec.%s: ' .. fmt):format(fn, ...), 3) end

local function files_of(fn, f)
  if type(f) == 'string' then return { f } end
  if type(f) ~= 'table' or #f == 0 then
    fail(fn, 'train must be a path or a list of paths (plain text or .gz), got %s', type(f))
  end
  for i, p in ipairs(f) do
    if type(p) ~= 'string' then fail(fn, 'train[%d] must be a path, got %s', i, type(p)) end
  end
  return f
end

local function options(fn, opts)
  if type(opts) ~= 'table' then fail(fn, 'expects an options table, got %s', type(opts)) end
  local o = {}
  for k, v in pairs(opts) do
    if not KNOWN[k] then
      local names = {}
      for n in pairs(KNOWN) do names[#names + 1] = n end
      table.sort(names)
      fail(fn, 'unknown option %q (options: %s)', tostring(k), table.concat(names, ', '))
    end
    o[k == 'min-count' and 'min_count' or k] = v
  end
  for k, v in pairs(M.defaults) do if o[k] == nil then o[k] = v end end
  for _, k in ipairs { 'size', 'window', 'hs', 'negative', 'iter', 'min_count', 'cbow', 'max_vocab', 'shared' } do
    if math.type(o[k]) ~= 'integer' then
      if type(o[k]) == 'number' and o[k] == math.floor(o[k]) then o[k] = math.tointeger(o[k])
      else fail(fn, '%s must be an integer, got %s', k, tostring(o[k])) end
    end
  end
  o.threads = o.threads or usagi.get_num_threads()
  o.alpha = o.alpha or (o.cbow == 1 and 0.05 or 0.025)
  return o
end

-- ==== Progress ===========================================================

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return ('%d:%02d:%02d'):format(s // 3600, s // 60 % 60, s % 60) end
  return ('%02d:%02d'):format(s // 60, s % 60)
end

local function fmt_rate(r)
  if r >= 1e6 then return ('%.2fM'):format(r / 1e6) end
  if r >= 1e3 then return ('%.0fk'):format(r / 1e3) end
  return ('%.0f'):format(r)
end

-- A progress bar on stderr as run:progress draws it: the fraction of
-- words done, words/s, the current learning rate, the epoch and the ETA.
-- On a terminal it redraws one line; elsewhere it prints every 10%.
local function progress_bar(iter, label)
  local t0, tty, last = usagi.sys.monotonic(), usagi.sys.isatty(2), -1
  return function(words, total, alpha, epoch, done)
    local t = usagi.sys.monotonic() - t0
    local frac = total > 0 and math.min(words / total, 1) or 1
    local decile = math.floor(frac * 10)
    if not tty and not done and decile <= last then return end
    last = decile
    local rate = words / math.max(t, 1e-9)
    local width = 24
    local filled = math.floor(width * frac)
    local line = ('%s [%s%s] %5.1f%% %s words/s lr %.3g epoch %d/%d %s<%s'):format(label,
      ('#'):rep(filled), ('.'):rep(width - filled), 100 * frac, fmt_rate(rate), alpha,
      math.min(epoch, iter), iter, fmt_time(t), fmt_time((total - words) / math.max(rate, 1e-9)))
    if tty then io.stderr:write('\r\27[K', line, done and '\n' or '')
    else io.stderr:write(line, '\n') end
    io.stderr:flush()
  end
end

-- ==== The model ==========================================================

-- A trained (or loaded) model: the vocabulary, its counts and the vectors
-- W (V, D), with the queries below (most_similar, similarity, analogy,
-- vector, evaluate, save, embedding, plot_words). word2vec.train and
-- word2vec.load return one; #m is the number of words.
local Model = {}
Model.__index = Model
M.Model = Model

-- A model from words (a list), their counts (a list or nil) and vectors (V, D).
local function new_model(words, counts, vectors, config)
  local V = #words
  if not usagi.is_tensor(vectors) or vectors:dim() ~= 2 or vectors:size(1) ~= V then
    error(('word2vec: vectors must be a (%d, D) tensor, one row per word'):format(V), 3)
  end
  local index = {}
  for i, w in ipairs(words) do
    if type(w) ~= 'string' or w == '' then error(('word2vec: word %d must be a non-empty string'):format(i), 3) end
    if index[w] then error(('word2vec: the word %q appears twice (%d and %d)'):format(w, index[w], i), 3) end
    index[w] = i
  end
  if not counts then
    counts = {}
    for i = 1, V do counts[i] = 0 end
  end
  return setmetatable({ words = words, index = index, counts = counts, W = vectors:float():contiguous(),
    config = config or {} }, Model)
end

-- word2vec.from_vectors(words, vectors [, counts]) -> a model for queries.
function M.from_vectors(words, vectors, counts)
  if type(words) ~= 'table' then error('word2vec.from_vectors: words must be a list of strings', 2) end
  return new_model(words, counts, vectors)
end

-- word2vec.answering(name) -> the parts of an experiment that let `usagi
-- infer` ask a run's vectors: model (vectors of the kept vocabulary, which
-- the run's parameters fill), infer (a word gives its k nearest neighbours,
-- three words an analogy, as Model:query), infer_options and infer_help.
-- name is the experiment's, for its messages.
function M.answering(name)
  return {
    model = function(cfg, d)
      local words = {}
      for i, w in ipairs(d.vocab) do words[i] = w end
      return M.from_vectors(words, usagi.zeros(#words, cfg.size))
    end,
    infer_help = "each INPUT is a word (its --k nearest neighbours by cosine) or three words, "
      .. "'a b c' or 'a : b :: c' (the words d with a : b :: c : d, by 3CosAdd)",
    infer_options = { k = 10 },
    infer = function(model, input, ctx)
      if type(input) ~= 'string' then
        error(("%s: give a word ('car') or three ('man king woman')"):format(name), 0)
      end
      return model:query(input, ctx.options.k)
    end,
  }
end

-- word2vec.vocab{train =, min_count =, max_vocab =, lower =} -> the C
-- vocabulary (words sorted by count), for a look before training.
function M.vocab(opts)
  local o = options('vocab', opts)
  return M._vocab_build(files_of('vocab', o.train or o.files), o.min_count, o.max_vocab, o.lower)
end

-- word2vec.train{train = path(s), <Mikolov's options>} -> Model. The
-- initial vectors and every thread's generator come from usagi's generator
-- (usagi.manual_seed), so threads = 1 repeats bit for bit.
function M.train(opts)
  local o = options('train', opts)
  local files = files_of('train', o.train or o.files)
  local vocab = M._vocab_build(files, o.min_count, o.max_vocab, o.lower)
  local V, D = vocab:size(), o.size
  -- syn0 ~ U(-0.5/D, 0.5/D) as Mikolov; the output vectors start at zero
  local W = usagi.rand(V, D, { lo = -0.5 / D, hi = 0.5 / D })
  local C = o.negative > 0 and usagi.zeros(V, D) or nil
  local H = o.hs == 1 and V > 1 and usagi.zeros(V - 1, D) or nil
  local cfg = {}
  for k, v in pairs(o) do if type(v) ~= 'function' then cfg[k] = v end end
  cfg.train, cfg.files, cfg.progress = nil, nil, nil
  cfg.train_files = table.concat(files, ' ')
  local m = new_model(vocab:words(), vocab:counts(), W, cfg)
  m.C, m.H, m.vocab = C, H, vocab
  -- always a Lua function: the workers are polled from Lua 4 times a second, so
  -- Ctrl-C (an error raised in Lua) stops them even when quiet
  local bar = o.progress or (not o.quiet and progress_bar(o.iter, o.cbow == 1 and 'cbow' or 'skip-gram'))
    or function() end
  local t0 = usagi.sys.monotonic()
  local words = M._train(vocab, files, o, W, C, H, bar)
  m.seconds = usagi.sys.monotonic() - t0
  m.words_per_second = words / math.max(m.seconds, 1e-9)
  m.train_words = words
  return m
end

-- state_dict() -> {weight = W (V, D)}: the vectors, as nn.Embedding names
-- its table, so a run keeps them in results.h5 like any model's parameters
function Model:state_dict() return { weight = self.W } end

-- load_state_dict({weight = W}): vectors of the same (V, D) in place of these
function Model:load_state_dict(sd)
  local W = type(sd) == 'table' and sd.weight
  if not usagi.is_tensor(W) or W:dim() ~= 2 or W:size(1) ~= self.W:size(1) or W:size(2) ~= self.W:size(2) then
    error(('word2vec.load_state_dict: expects {weight = a (%d, %d) tensor}, got %s'):format(self.W:size(1),
      self.W:size(2), usagi.is_tensor(W) and tostring(W:size()) or type(W)), 2)
  end
  self.W, self._Wn = W:float():contiguous(), nil
  return self
end

-- size() -> the number of words in the vocabulary (also #m).
function Model:size() return #self.words end
-- dim() -> D, the length of each vector.
function Model:dim() return self.W:size(2) end
function Model:__len() return #self.words end
function Model:__tostring()
  return ('word2vec.Model (%d words, %d dims)'):format(#self.words, self.W:size(2))
end

-- id(word) -> 1-based id or nil; word(id); count(word or id).
function Model:id(word) return self.index[word] end
-- word(id) -> the word with that 1-based id, or nil.
function Model:word(id) return self.words[id] end
-- count(word or id) -> how often the word came in the training corpus.
function Model:count(w)
  local id = type(w) == 'string' and self.index[w] or w
  return id and self.counts[id]
end
-- contains(word) -> true when the word is in the vocabulary.
function Model:contains(word) return self.index[word] ~= nil end

local function need_id(self, fn, word)
  local id = self.index[word]
  if not id then
    error(('word2vec.%s: %q is not in the vocabulary (%d words)'):format(fn, tostring(word), #self.words), 3)
  end
  return id
end

-- vector(word) -> (D) tensor, a copy of the word's row of W.
function Model:vector(word)
  return self.W[need_id(self, 'vector', word)]:clone()
end

-- The rows of W scaled to unit length (cached; training again resets it).
function Model:normalized()
  if not self._Wn then
    local norm = self.W:norm(2, 2, true):clamp(1e-12, math.huge)      -- (V, 1)
    self._Wn = self.W / norm
  end
  return self._Wn
end

-- The k best columns of each row of S (B, V) as {{id, value}, ...} per row,
-- skipping the ids in exclude[b] (a set); k passes of max over the rows.
local function topk(S, k, exclude)
  local B, V = S:size(1), S:size(2)
  S = S:clone()
  for b = 1, B do for id in pairs(exclude[b] or {}) do S[{ b, id }] = -math.huge end end
  local out = {}
  for b = 1, B do out[b] = {} end
  for _ = 1, math.min(k, V) do
    local vals, idx = S:max(2)
    for b = 1, B do
      local id, v = math.tointeger(idx[b]), vals[b]
      if v > -math.huge then
        out[b][#out[b] + 1] = { id, v }
        S[{ b, id }] = -math.huge
      end
    end
  end
  return out
end

-- most_similar(word or {words...}, k = 10) -> {{word, cosine}, ...} (a list
-- of those per word when given a list); the word itself is left out.
function Model:most_similar(words, k)
  k = k or 10
  local list = type(words) == 'table' and words or { words }
  local ids, exclude = {}, {}
  for b, w in ipairs(list) do ids[b] = need_id(self, 'most_similar', w); exclude[b] = { [ids[b]] = true } end
  local Wn = self:normalized()
  local Q = Wn:index_select(1, usagi.tensor(ids, 'i32'))                -- (B, D)
  local S = Q:mm(Wn:t())                                                -- (B, V): one GEMM
  local res = topk(S, k, exclude)
  for b = 1, #res do
    for i, p in ipairs(res[b]) do res[b][i] = { self.words[p[1]], p[2] } end
  end
  return type(words) == 'table' and res or res[1]
end

-- similarity(a, b) -> cos(v_a, v_b)
function Model:similarity(a, b)
  local Wn = self:normalized()
  local x, y = Wn[need_id(self, 'similarity', a)], Wn[need_id(self, 'similarity', b)]
  return (x * y):sum():item()
end

-- Analogies a : b :: c : d for a batch of questions {{a, b, c}, ...} (ids),
-- over the first `limit` rows of W: the k best d other than a, b and c by
--   3CosAdd: cos(d, b) - cos(d, a) + cos(d, c)
--   3CosMul: cos'(d, b) cos'(d, c) / (cos'(d, a) + 1e-3), cos' = (cos + 1) / 2
-- (Levy and Goldberg 2014). One GEMM: the 3B query rows against W.
local function analogies(self, qs, k, method, limit)
  local Wn = self:normalized()
  if limit and limit < Wn:size(1) then Wn = Wn:narrow(1, 1, limit) end
  local B = #qs
  local ids = {}
  for b, q in ipairs(qs) do ids[b], ids[B + b], ids[2 * B + b] = q[1], q[2], q[3] end
  local S = Wn:index_select(1, usagi.tensor(ids, 'i32')):mm(Wn:t())    -- (3B, V)
  local Sa, Sb, Sc = S:narrow(1, 1, B), S:narrow(1, B + 1, B), S:narrow(1, 2 * B + 1, B)
  local score
  if method == 'mul' then
    score = ((Sb + 1) * 0.5) * ((Sc + 1) * 0.5) / ((Sa + 1) * 0.5 + 1e-3)
  else
    score = Sb - Sa + Sc
  end
  local exclude = {}
  for b, q in ipairs(qs) do exclude[b] = { [q[1]] = true, [q[2]] = true, [q[3]] = true } end
  return topk(score, k, exclude)
end

-- analogy(a, b, c [, k = 1, {method = 'add' | 'mul'}]) -> the best d for
-- a : b :: c : d (k = 1: the word and its score; k > 1: {{word, score}, ...}).
function Model:analogy(a, b, c, k, opts)
  local method = opts and opts.method or 'add'
  if method ~= 'add' and method ~= 'mul' then
    error(("word2vec.analogy: method must be 'add' or 'mul', got %q"):format(tostring(method)), 2)
  end
  local q = { need_id(self, 'analogy', a), need_id(self, 'analogy', b), need_id(self, 'analogy', c) }
  local res = analogies(self, { q }, k or 1, method)[1]
  for i, p in ipairs(res) do res[i] = { self.words[p[1]], p[2] } end
  if (k or 1) == 1 then return res[1][1], res[1][2] end
  return res
end

-- query(text [, k = 10]) -> lines "word  score": the k nearest
-- neighbours of one word ('car'), or the k best answers to an analogy of
-- three words ('man king woman' or 'man : king :: woman : ?' reads
-- man : king :: woman : d), by 3CosAdd. What `usagi infer` prints for a
-- word2vec run.
function Model:query(text, k)
  if type(text) ~= 'string' then error('word2vec.query: text must be a string, got ' .. type(text), 2) end
  k = k or 10
  if math.type(k) ~= 'integer' or k < 1 then error('word2vec.query: k must be a positive integer, got ' .. tostring(k), 2) end
  local words = {}
  for w in text:gsub('[:?]', ' '):gmatch('%S+') do words[#words + 1] = w end
  local res
  if #words == 1 then
    res = self:most_similar(words[1], k)
  elseif #words == 3 then
    res = self:analogy(words[1], words[2], words[3], math.max(k, 2))
    if k == 1 then res = { res[1] } end
  else
    error(("word2vec.query: give one word (its neighbours) or three, a : b :: c (an analogy), got %d words in %q")
      :format(#words, text), 2)
  end
  local lines = {}
  for i, p in ipairs(res) do lines[i] = ('%-16s %.4f'):format(p[1], p[2]) end
  return lines
end

-- embedding([opts]) -> an nn.Embedding(V, D) holding a copy of W (for another
-- model's first layer); opts.freeze = true leaves it out of training.
function Model:embedding(opts)
  local nn = require 'usagi.nn'
  local e = nn.Embedding(#self.words, self.W:size(2))
  usagi.no_grad(function() e.weight:copy_(self.W) end)
  if opts and opts.freeze then e.weight:requires_grad(false) end
  return e
end

-- ==== Pictures ===========================================================

-- pca(X (n, D)) -> (n, 2) f64: the rows of X projected on their first two
-- principal axes. With X centred, the axes' scores are the top eigenvectors
-- u_k of the Gram matrix G = X X^T scaled by sqrt(λ_k) (n is small: a few
-- dozen words), found by power iteration with deflation from a fixed start.
function M.pca(X)
  X = X:double()
  local n = X:size(1)
  if n < 3 then error('word2vec.pca: expects at least 3 rows, got ' .. n, 2) end
  X = X - X:mean(1, true)
  local G = X:mm(X:t())                                       -- (n, n)
  local out = usagi.zeros(n, 2, 'f64')
  for k = 1, 2 do
    local u = usagi.linspace(1, 2, n, 'f64'):view(n, 1)
    local lambda = 0
    for _ = 1, 500 do
      local v = G:mm(u)
      lambda = v:norm():item()
      if lambda == 0 then break end
      u = v / lambda
    end
    out[{ {}, k }] = (u * math.sqrt(lambda)):view(n)
    G = G - u:mm(u:t()) * lambda                              -- deflate
  end
  return out
end

-- plot_words(words, path [, {title =}]) -> path: the words' vectors in the
-- plane of their first two principal components, each point labelled (a
-- plot.scatter with labels: words in a crowd are spread out, not piled up),
-- PNG or SVG.
function Model:plot_words(words, path, opts)
  local plot = require 'usagi.plot'
  local ids, used = {}, {}
  for _, w in ipairs(words) do
    local id = self.index[w]
    if id then ids[#ids + 1], used[#used + 1] = id, w end
  end
  if #ids < 3 then error('word2vec.plot_words: fewer than 3 of the words are in the vocabulary', 2) end
  local P = M.pca(self.W:index_select(1, usagi.tensor(ids, 'i32')))
  plot.scatter { series = { { label = 'words', x = P[{ {}, 1 }]:totable(), y = P[{ {}, 2 }]:totable(), labels = used } },
    title = opts and opts.title or 'word vectors, first two principal components', xlabel = 'PC 1', ylabel = 'PC 2',
    legend = false, path = path }
  return path
end

-- ==== Files ==============================================================

-- save(path [, {format = 'h5' | 'text' | 'binary'}]): the format from the
-- extension when not given: .h5 HDF5, .bin Mikolov's binary, else text.
local function format_of(path, opts)
  local f = opts and opts.format
  if f then
    if f ~= 'h5' and f ~= 'text' and f ~= 'binary' then
      error(("word2vec: format must be 'h5', 'text' or 'binary', got %q"):format(tostring(f)), 3)
    end
    return f
  end
  if path:match('%.h5$') or path:match('%.hdf5$') then return 'h5' end
  if path:match('%.bin$') or path:match('%.bin%.gz$') then return 'binary' end
  return 'text'
end

-- HDF5 (through usagi.h5): /vectors (V, D) f32, /vocab (V) strings, /counts
-- (V) i32 (f64 when a count passes 2^31), the training config as
-- attributes of the root; /syn1neg and /syn1 when training made them.
function M._save_h5(self, path)
  local f <close> = usagi.h5.open(path, 'w')
  f:write('/vectors', self.W)
  f:write_strings('/vocab', self.words)
  local big = false
  for _, c in ipairs(self.counts) do if c >= 2 ^ 31 then big = true end end
  f:write('/counts', usagi.tensor(self.counts, big and 'f64' or 'i32'))
  if self.C then f:write('/syn1neg', self.C) end
  if self.H then f:write('/syn1', self.H) end
  f:attr('/', 'format', 'usagi.word2vec')
  for k, v in pairs(self.config) do
    if type(v) == 'number' or type(v) == 'string' or type(v) == 'boolean' then f:attr('/', k, v) end
  end
end

-- word2vec._load_h5(path) -> Model: what _save_h5 wrote (word2vec.load calls it
-- for .h5 paths); checks that /vectors and /vocab are there and agree.
function M._load_h5(path)
  local f <close> = usagi.h5.open(path, 'r')
  for _, p in ipairs { '/vectors', '/vocab' } do
    if not f:exists(p) then error(('word2vec.load: %s has no %s; not a word2vec file'):format(path, p), 3) end
  end
  local words, W = f:read_strings('/vocab'), f:read('/vectors')
  local counts
  if f:exists('/counts') then
    local c = f:read('/counts')
    if c:dim() ~= 1 or c:size(1) ~= #words then
      error(('word2vec.load: %s: /counts must have one entry per word (%d)'):format(path, #words), 3)
    end
    counts = {}
    for i, x in ipairs(c:totable()) do counts[i] = math.tointeger(x) or x end
  end
  local config = f:attrs('/')
  config.format = nil
  local ok, m = pcall(new_model, words, counts, W, config)
  if not ok then error('word2vec.load: ' .. path .. ': ' .. m:gsub('^word2vec: ', ''), 3) end
  if f:exists('/syn1neg') then m.C = f:read('/syn1neg') end
  if f:exists('/syn1') then m.H = f:read('/syn1') end
  return m
end

-- save(path [, {format = 'h5' | 'text' | 'binary'}]) writes the vectors:
-- HDF5 (/vectors, /vocab, /counts, the options as attributes), or
-- Mikolov's binary or text format, which gensim reads; the format follows
-- the extension (.h5, .bin, else text) unless opts.format says.
function Model:save(path, opts)
  if type(path) ~= 'string' then error('word2vec.save: path must be a string, got ' .. type(path), 2) end
  local f = format_of(path, opts)
  if f == 'h5' then return M._save_h5(self, path) end
  M._save(path, f == 'binary', self.words, self.W)
end

-- word2vec.load(path [, {format =}]) -> Model
function M.load(path, opts)
  if type(path) ~= 'string' then error('word2vec.load: path must be a string, got ' .. type(path), 2) end
  local f = format_of(path, opts)
  if f == 'h5' then return M._load_h5(path) end
  local words, W = M._load(path, f == 'binary')
  local ok, m = pcall(new_model, words, nil, W, { format = f })
  if not ok then error('word2vec.load: ' .. path .. ': ' .. m:gsub('^word2vec: ', ''), 2) end
  return m
end

-- ==== Corpora ===========================================================

-- english_text(out) -> out, words: the English text of the shared data
-- (english_text/*.zip: 14 Gutenberg books, the State of the Union and the
-- inaugural addresses) as one plain file, lower-cased, everything but
-- letters, digits and apostrophes made a space, a line per line. The
-- zips are read through `unzip -p`; nothing is written but `out`.
function M.english_text(out)
  local data = require 'usagi.data'
  if type(out) ~= 'string' then error('word2vec.english_text: out must be a path, got ' .. type(out), 2) end
  local parts = {}
  for _, z in ipairs { 'gutenberg', 'state_union', 'inaugural' } do
    local zip = data.path('english_text/' .. z .. '.zip')
    local p = assert(io.popen(("unzip -p '%s' '*.txt' 2>/dev/null"):format(zip:gsub("'", "'\\''"))))
    parts[#parts + 1] = p:read('a')
    p:close()
    if #parts[#parts] == 0 then error('word2vec.english_text: unzip gave nothing for ' .. zip .. ' (is unzip installed?)', 2) end
  end
  local text = table.concat(parts, '\n'):lower():gsub("[^%a%d'\n]+", ' ')
  local f = assert(io.open(out, 'w'))
  f:write(text)
  f:close()
  local words = 0
  for _ in text:gmatch('%S+') do words = words + 1 end
  return out, words
end

-- ==== Evaluation =========================================================

-- A question word's id: the word itself, else its lower-case form (the
-- test sets mix cases; a lower-cased model finds them all).
local function lookup(self, w, limit)
  local id = self.index[w] or self.index[w:lower()]
  if id and (not limit or id <= limit) then return id end
end

-- The ranks of x, 1..n, ties given their mean rank.
local function ranks(x)
  local order = {}
  for i = 1, #x do order[i] = i end
  table.sort(order, function(a, b) return x[a] < x[b] end)
  local r, i = {}, 1
  while i <= #order do
    local j = i
    while j < #order and x[order[j + 1]] == x[order[i]] do j = j + 1 end
    for k = i, j do r[order[k]] = (i + j) / 2 end
    i = j + 1
  end
  return r
end

-- word2vec.spearman(x, y) -> Spearman's ρ of two lists of numbers: Pearson's
-- correlation of their ranks (ties get their mean rank).
function M.spearman(x, y)
  if #x ~= #y or #x < 2 then error('word2vec.spearman: expects two lists of the same length >= 2', 2) end
  local rx, ry = ranks(x), ranks(y)
  local n, mx, my = #x, 0, 0
  for i = 1, n do mx, my = mx + rx[i] / n, my + ry[i] / n end
  local sxy, sxx, syy = 0, 0, 0
  for i = 1, n do
    local a, b = rx[i] - mx, ry[i] - my
    sxy, sxx, syy = sxy + a * b, sxx + a * a, syy + b * b
  end
  return sxy / math.sqrt(sxx * syy)
end

local function read_lines(fn, path)
  local f, err = io.open(path, 'r')
  if not f then error(('word2vec.%s: cannot read %s: %s'):format(fn, path, err), 3) end
  local text = f:read('a')
  f:close()
  return text:gmatch('[^\r\n]+')
end

-- evaluate_similarity(path) -> { rho =, pairs = used, oov = skipped }: ρ
-- between the file's human scores and the cosines, over the pairs whose
-- words are both known (WordSim-353, SimLex-999: "w1 w2 score" lines, '#'
-- comments).
function Model:evaluate_similarity(path)
  local human, model, oov, n = {}, {}, 0, 0
  for line in read_lines('evaluate_similarity', path) do
    if not line:match('^%s*#') then
      local a, b, score = line:match('^(%S+)%s+(%S+)%s+(%S+)')
      score = tonumber(score)
      if not score then error(('word2vec.evaluate_similarity: %s: expected "w1 w2 score", got %q'):format(path, line), 2) end
      n = n + 1
      local ia, ib = lookup(self, a), lookup(self, b)
      if ia and ib then
        human[#human + 1] = score
        model[#model + 1] = self:similarity(self.words[ia], self.words[ib])
      else
        oov = oov + 1
      end
    end
  end
  if #human < 2 then
    error(('word2vec.evaluate_similarity: %s: %d of %d pairs are in the vocabulary; need 2'):format(path, #human, n), 2)
  end
  return { rho = M.spearman(human, model), pairs = #human, oov = oov }
end

-- evaluate_analogy(path [, {restrict = 30000, method = 'add'|'mul', batch = 512}])
-- -> { sections = {{name =, correct =, total =}, ...}, correct =, total =,
--      accuracy =, skipped = } on questions-words.txt (": section" lines,
-- then "a b c d": a : b :: c : d). As Mikolov's compute-accuracy, only the
-- `restrict` most frequent words are searched and questions with a word
-- outside them are skipped (counted in skipped).
function Model:evaluate_analogy(path, opts)
  opts = opts or {}
  local limit = math.min(opts.restrict or 30000, #self.words)
  local method, B = opts.method or 'add', opts.batch or 512
  local sections, cur, skipped = {}, nil, 0
  local pending = {}
  local function flush()
    if #pending == 0 then return end
    local qs = {}
    for i, p in ipairs(pending) do qs[i] = p.q end
    local best = analogies(self, qs, 1, method, limit)
    for i, p in ipairs(pending) do
      local top = best[i][1]
      p.section.total = p.section.total + 1
      if top and top[1] == p.d then p.section.correct = p.section.correct + 1 end
    end
    pending = {}
  end
  for line in read_lines('evaluate_analogy', path) do
    local name = line:match('^:%s*(%S+)')
    if name then
      cur = { name = name, correct = 0, total = 0 }
      sections[#sections + 1] = cur
    else
      local a, b, c, d = line:match('^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)')
      if not a then error(('word2vec.evaluate_analogy: %s: expected "a b c d", got %q'):format(path, line), 2) end
      if not cur then cur = { name = '(none)', correct = 0, total = 0 }; sections[1] = cur end
      local ia, ib, ic, id = lookup(self, a, limit), lookup(self, b, limit), lookup(self, c, limit), lookup(self, d, limit)
      if ia and ib and ic and id then
        pending[#pending + 1] = { q = { ia, ib, ic }, d = id, section = cur }
        if #pending >= B then flush() end
      else
        skipped = skipped + 1
      end
    end
  end
  flush()
  local correct, total = 0, 0
  for _, s in ipairs(sections) do correct, total = correct + s.correct, total + s.total end
  return { sections = sections, correct = correct, total = total,
    accuracy = total > 0 and correct / total or 0, skipped = skipped }
end

-- evaluate([opts]) -> { wordsim353 =, simlex999 =, analogy = } on the sets in
-- word2vec_eval/ of the data directory (usagi.data.path finds them).
function Model:evaluate(opts)
  local data = require 'usagi.data'
  return {
    wordsim353 = self:evaluate_similarity(data.path('word2vec_eval/wordsim353.tsv')),
    simlex999 = self:evaluate_similarity(data.path('word2vec_eval/simlex999.txt')),
    analogy = self:evaluate_analogy(data.path('word2vec_eval/questions-words.txt'), opts),
  }
end

-- ==== The C functions (word2vec_lua.c) ==================================
-- The face above calls these; they are public for tests and for tools that
-- want the parts. Those declared in ops.lua (_keep_prob, vocab:size(),
-- total(), sample_negatives()) have their docs there.
--
-- word2vec._vocab_build(files, min_count, max_vocab, lower) -> a Vocab: the words of the
-- files (plain or gzip) seen at least min_count times, most frequent first, at most
-- max_vocab (0: all). Methods: size(), total(), words(), counts(), find(word) -> id|nil,
-- code(id) -> Huffman codes and inner nodes, sample_negatives(n, seed) -> i32 ids.
--
-- word2vec._vocab_from(words, counts) -> a Vocab of the given words and counts, in that order.
--
-- word2vec._train(vocab, files, opts, syn0, syn1neg, syn1, progress) -> words read: trains
-- the (V, D) f32 tensors in place with opts (size, window, sample, hs, negative, threads,
-- iter, alpha, cbow, shared, lower) in Hogwild threads; progress(words, total, alpha, epoch,
-- done) is called about 4 times a second, and an error in it stops the workers.
--
-- word2vec._save(path, binary, words, vectors): Mikolov's text or binary format.
--
-- word2vec._load(path, binary) -> words, vectors (V, D) f32 from Mikolov's text or binary
-- format (gzip too).

return M
