-- seq2seq.lua -- the Lua face of the seq2seq plugin: nn.Seq2Seq, an
-- encoder-decoder over the fused recurrent plugins (rnn, lstm, gru; the
-- encoder uni- or bidirectional, with lengths), a decoder optionally with
-- attention over the encoder's outputs (the attention plugin) or "peeky"
-- (the encoder's summary fed to every step), input reversal, training by
-- teacher forcing with a scheduled-sampling ratio and a masked loss, and
-- decoding by greedy choice, sampling with a temperature, or beam search
-- (M.topk, in C, ranks each step's extensions). Receives the module table
-- M that the C side made.
--
--   local nn = require 'usagi.nn'
--   require 'usagi.seq2seq'
--   local model = nn.Seq2Seq { src_vocab = 13, tgt_vocab = 13, embed = 16, hidden = 128,
--                              cell = 'lstm', reverse_input = true, peeky = true, pad = 6 }
--   local loss = model:loss(x, y)                  -- x (B, Ts), y (B, 1 + Tt): start, answer
--   local out = model:generate(x, { start = 7, max_len = 4, method = 'beam', beam = 5 })
local M = ...
local usagi = require 'usagi'
local nn = require 'usagi.nn'
require 'usagi.rnn'
require 'usagi.lstm'
require 'usagi.gru'
require 'usagi.attention'

local function fail(fn, msg, ...) error(fn .. ': ' .. msg:format(...), 3) end

local CELLS = { lstm = nn.LSTM, gru = nn.GRU, rnn = nn.RNN }

-- One pass of a recurrent module from state {h [, c]} (nil: zeros): out,
-- the final state {h [, c]}. The cells differ only in their arguments.
local function run(rnn, cell, x, state, lengths)
  state = state or {}
  if cell == 'lstm' then
    local out, h, c = rnn(x, state[1], state[2], lengths)
    return out, { h, c }
  end
  local out, h = rnn(x, state[1], lengths)
  return out, { h }
end

-- (B, T) ids, each row reversed within its own length (lengths: a list)
local function reverse_rows(ids, lengths)
  local rows = ids:totable()
  for b, row in ipairs(rows) do
    local n = lengths and lengths[b] or #row
    for i = 1, n // 2 do row[i], row[n + 1 - i] = row[n + 1 - i], row[i] end
  end
  return usagi.tensor(rows, 'i32')
end

local function as_list(lengths)
  if lengths == nil then return nil end
  return usagi.is_tensor(lengths) and lengths:totable() or lengths
end

-- ==== nn.Seq2Seq ===========================================================

local Seq2Seq = nn.Module:extend 'Seq2Seq'

local KNOWN = { src_vocab = true, tgt_vocab = true, embed = true, hidden = true, cell = true,
                layers = true, bidirectional = true, attention = true, peeky = true,
                reverse_input = true, dropout = true, pad = true, dtype = true }

-- nn.Seq2Seq(opts): src_vocab, tgt_vocab (sizes), embed (16), hidden (128),
-- cell 'lstm' | 'gru' | 'rnn' ('lstm'), layers (1), bidirectional (false;
-- the decoder then has 2 * hidden units, the two directions' final states
-- side by side), attention (nil, or a kind of nn.Attention: 'dot',
-- 'general', 'scaled_dot', 'additive'), peeky (false), reverse_input
-- (false), dropout (0, between recurrent layers), pad (the target id the
-- loss ignores; nil: none), dtype.
function Seq2Seq:__init(opts)
  nn.Module.__init(self)
  if type(opts) ~= 'table' then fail('Seq2Seq', 'takes one table of options, got %s', type(opts)) end
  for k in pairs(opts) do
    if not KNOWN[k] then fail('Seq2Seq', "unknown option '%s'", tostring(k)) end
  end
  for _, k in ipairs { 'src_vocab', 'tgt_vocab' } do
    if math.type(opts[k]) ~= 'integer' or opts[k] < 1 then
      fail('Seq2Seq', '%s must be a positive integer (the vocabulary size), got %s', k, tostring(opts[k]))
    end
  end
  local cell = opts.cell or 'lstm'
  if not CELLS[cell] then fail('Seq2Seq', "cell must be 'lstm', 'gru' or 'rnn', got %s", tostring(cell)) end
  local E, H, L = opts.embed or 16, opts.hidden or 128, opts.layers or 1
  local dirs = opts.bidirectional and 2 or 1
  local Hd, dt = H * dirs, opts.dtype
  self.cell, self.layers, self.hidden, self.dec_hidden = cell, L, H, Hd
  self.bidirectional, self.peeky = opts.bidirectional and true or false, opts.peeky and true or false
  self.reverse_input, self.pad = opts.reverse_input and true or false, opts.pad
  self.src_vocab, self.tgt_vocab, self.attention_kind = opts.src_vocab, opts.tgt_vocab, opts.attention
  local ropts = { num_layers = L, dropout = opts.dropout or 0, dtype = dt }
  self.src_embed = nn.Embedding(opts.src_vocab, E, { dtype = dt })
  self.encoder = CELLS[cell](E, H, { num_layers = L, dropout = opts.dropout or 0, dtype = dt,
                                     bidirectional = self.bidirectional })
  self.tgt_embed = nn.Embedding(opts.tgt_vocab, E, { dtype = dt })
  self.decoder = CELLS[cell](E + (self.peeky and Hd or 0), Hd, ropts)
  local features = Hd + (self.peeky and Hd or 0)
  if opts.attention then
    self.attention = nn.Attention(opts.attention, Hd, Hd, { dtype = dt })
    features = features + Hd
  end
  self.out = nn.Linear(features, opts.tgt_vocab, { dtype = dt })
end

-- encode(src (B, Ts) ids [, lengths]) -> the encoder's view of the batch:
-- {hs = (B, Ts, Hd) outputs batch first, state = {h [, c]} each (layers,
-- B, Hd), summary = (B, Hd) the top layer's h, lengths}
function Seq2Seq:encode(src, lengths)
  if not usagi.is_tensor(src) or src:dim() ~= 2 then
    fail('Seq2Seq', 'src must be a (B, Ts) tensor of token ids, got %s',
      usagi.is_tensor(src) and tostring(src:size()) or type(src))
  end
  lengths = as_list(lengths)
  if self.reverse_input then src = reverse_rows(src, lengths) end
  local x = self.src_embed(src:transpose(1, 2))                          -- (Ts, B, E)
  local hs, state = run(self.encoder, self.cell, x, nil, lengths)
  if self.bidirectional then         -- (2 layers, B, H) -> (layers, B, 2H): directions side by side
    local B, H = src:size(1), self.hidden
    for i, s in ipairs(state) do
      state[i] = s:view(self.layers, 2, B, H):transpose(2, 3):reshape(self.layers, B, 2 * H)
    end
  end
  return { hs = hs:transpose(1, 2), state = state, summary = state[1]:select(1, self.layers),
           lengths = lengths }
end

-- The decoder over target inputs y_in (T, B) from state: logits (T, B, V),
-- the final state and the attention weights (B, T, Ts) (or nil).
function Seq2Seq:decode(enc, y_in, state)
  local T, B = y_in:size(1), y_in:size(2)
  local x = self.tgt_embed(y_in)                                         -- (T, B, E)
  local peek = self.peeky and enc.summary:unsqueeze(1):expand(T, B, self.dec_hidden)
  if peek then x = usagi.cat({ x, peek }, 3) end
  local h, fin = run(self.decoder, self.cell, x, state)
  local features, w = { h }, nil
  if self.attention then
    local c
    c, w = self.attention(h:transpose(1, 2), enc.hs, nil, { lengths = enc.lengths })
    features[#features + 1] = c:transpose(1, 2)
  end
  if peek then features[#features + 1] = peek end
  local f = #features > 1 and usagi.cat(features, 3) or h
  return self.out(f), fin, w
end

-- forward(src, y_in [, lengths]) -> logits (B, T, V): teacher forcing,
-- y_in (B, T) the decoder's inputs (the start id, then the target shifted)
function Seq2Seq:forward(src, y_in, lengths)
  local enc = self:encode(src, lengths)
  local logits = self:decode(enc, y_in:transpose(1, 2), enc.state)
  return logits:transpose(1, 2)
end

-- loss(src, y [, opts]) -> the mean cross-entropy per target token: y (B,
-- 1 + T) is the start id followed by the target; positions whose target is
-- `pad` do not count. opts: lengths (of src), sampling (0: teacher forcing;
-- p > 0: each step after the first, each sequence feeds its own previous
-- prediction instead of the truth with probability p, drawn from the
-- run's generator -- scheduled sampling, Bengio et al. 2015).
function Seq2Seq:loss(src, y, opts)
  opts = opts or {}
  if not usagi.is_tensor(y) or y:dim() ~= 2 or y:size(2) < 2 then
    fail(self.__name or 'Seq2Seq', 'y must be a (B, 1 + T) tensor of ids (the start id, then the target), got %s',
      usagi.is_tensor(y) and tostring(y:size()) or type(y))
  end
  local T = y:size(2) - 1
  local y_in, y_out = y:narrow(2, 1, T), y:narrow(2, 2, T)
  local enc = self:encode(src, opts.lengths)
  local logits
  local p = opts.sampling or 0
  if p > 0 then
    logits = self:unroll(enc, y_in, p)
  else
    logits = self:decode(enc, y_in:transpose(1, 2), enc.state):transpose(1, 2)
  end
  local flat = logits:reshape(-1, self.tgt_vocab)
  local target = y_out:reshape(-1)
  if self.pad then return usagi.cross_entropy(flat, target, { ignore_index = self.pad }) end
  return usagi.cross_entropy(flat, target)
end

-- The decoder a step at a time, feeding at step t > 1 the previous
-- prediction (argmax, detached) instead of y_in[t] where a draw of
-- probability p says so: logits (B, T, V).
function Seq2Seq:unroll(enc, y_in, p)
  local B, T = y_in:size(1), y_in:size(2)
  local state, prev, out = enc.state, nil, {}
  for t = 1, T do
    local tok = y_in:select(2, t)
    if prev then
      local use = usagi.bernoulli(usagi.full({ B }, p)):int()
      tok = usagi.where(use, prev, tok)
    end
    local logits
    logits, state = self:decode(enc, tok:unsqueeze(1), state)
    out[t] = logits                                                      -- (1, B, V)
    prev = logits:select(1, 1):detach():argmax(2):int()
  end
  return usagi.cat(out, 1):transpose(1, 2)
end

-- ==== Decoding =============================================================

local KNOWN_GEN = { start = true, stop = true, max_len = true, method = true, temperature = true,
                    beam = true, length_penalty = true, lengths = true, mean = true }

-- generate(src [, opts]) -> list of B lists of ids (without start and
-- stop), and for greedy decoding with attention the weights of each step
-- (B, T, Ts). opts: start (the id that starts decoding; required), stop
-- (an id that ends a sequence; nil: none), max_len (required), method
-- 'greedy' (default) | 'sample' | 'beam', temperature (1; for 'sample'),
-- beam (5) and length_penalty (alpha, 0; a finished beam scores
-- log p / len^alpha), lengths (of src). Runs without recording a graph.
function Seq2Seq:generate(src, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN_GEN[k] then fail('Seq2Seq:generate', "unknown option '%s'", tostring(k)) end
  end
  if math.type(opts.start) ~= 'integer' then fail('Seq2Seq:generate', 'start must be a token id, got %s', tostring(opts.start)) end
  if math.type(opts.max_len) ~= 'integer' or opts.max_len < 1 then
    fail('Seq2Seq:generate', 'max_len must be a positive integer, got %s', tostring(opts.max_len))
  end
  local method = opts.method or 'greedy'
  if method ~= 'greedy' and method ~= 'sample' and method ~= 'beam' then
    fail('Seq2Seq:generate', "method must be 'greedy', 'sample' or 'beam', got %s", tostring(method))
  end
  return usagi.no_grad(function()
    local enc, B = self:prepare(src, opts)
    if method == 'beam' then return self:beam_search(enc, B, opts) end
    return self:greedy(enc, B, opts, method == 'sample')
  end)
end

-- The encoder's view of a batch to decode, and its size (HRED overrides).
function Seq2Seq:prepare(src, opts) return self:encode(src, opts.lengths), src:size(1) end

-- The encoder's view of row b of a batch, k times over (the beams of one
-- source): tensors with the batch first and states (layers, B, H).
function Seq2Seq:expand_enc(enc, b, k)
  local e = { state = {} }
  e.hs = enc.hs:narrow(1, b, 1):expand(k, enc.hs:size(2), enc.hs:size(3)):contiguous()
  e.summary = enc.summary:narrow(1, b, 1):expand(k, enc.summary:size(2)):contiguous()
  if enc.lengths then
    e.lengths = {}
    for i = 1, k do e.lengths[i] = enc.lengths[b] end
  end
  for i, s in ipairs(enc.state) do e.state[i] = s:narrow(2, b, 1):expand(s:size(1), k, s:size(3)):contiguous() end
  return e
end

-- greedy(enc, B, opts, sample): the greedy (or sampling) decoding that
-- generate{method = 'greedy' | 'sample'} runs from an encoded batch.
function Seq2Seq:greedy(enc, B, opts, sample)
  local tok = usagi.full({ B }, opts.start, { dtype = 'i32' })
  local state, seqs, done, ws = enc.state, {}, {}, {}
  for b = 1, B do seqs[b] = {} end
  local temp = opts.temperature or 1
  for t = 1, opts.max_len do
    local logits, w
    logits, state, w = self:decode(enc, tok:unsqueeze(1), state)
    logits = logits:select(1, 1)                                         -- (B, V)
    if sample then
      tok = usagi.multinomial(usagi.softmax(logits / temp, 2), 1):reshape(B):int()
    else
      tok = logits:argmax(2):int()
    end
    if w then ws[t] = w end                                              -- (B, 1, Ts)
    local ids = tok:totable()
    for b = 1, B do
      if not done[b] then
        if opts.stop and ids[b] == opts.stop then done[b] = true
        else seqs[b][#seqs[b] + 1] = ids[b] end
      end
    end
  end
  return seqs, #ws > 0 and usagi.cat(ws, 2) or nil
end

-- Beam search, one source at a time with its k beams as the batch: each
-- step scores every beam's extensions (the beam's log p plus the next
-- token's log-softmax), keeps the k best of the k x V (M.topk), reorders
-- the states by parent, and retires beams that produced `stop`.
function Seq2Seq:beam_search(enc, B, opts)
  local k, alpha, V = opts.beam or 5, opts.length_penalty or 0, self.out.weight:size(1)
  if math.type(k) ~= 'integer' or k < 1 or k > V then
    fail('Seq2Seq:generate', 'beam must be an integer in [1, %d], got %s', V, tostring(k))
  end
  local results = {}
  for b = 1, B do
    local e = self:expand_enc(enc, b, k)
    local state = e.state
    local seqs, scores = {}, {}
    for i = 1, k do seqs[i], scores[i] = {}, i == 1 and 0 or -math.huge end
    local tok = usagi.full({ k }, opts.start, { dtype = 'i32' })
    local best, best_score = nil, -math.huge
    for t = 1, opts.max_len do
      local logits
      logits, state = self:decode(e, tok:unsqueeze(1), state)
      local logp = usagi.log_softmax(logits:select(1, 1):double(), 2)   -- (k, V)
      local total = logp + usagi.tensor(scores, 'f64'):unsqueeze(2)
      local vals, idx = M.topk(total:reshape(1, k * V), k)
      vals, idx = vals:totable()[1], idx:totable()[1]
      local parents, toks, new_seqs, new_scores = {}, {}, {}, {}
      for i = 1, k do
        local parent, id = (idx[i] - 1) // V + 1, (idx[i] - 1) % V + 1
        local seq = { table.unpack(seqs[parent]) }
        parents[i], toks[i] = parent, id
        if vals[i] == -math.huge then
          new_scores[i] = -math.huge
        elseif (opts.stop and id == opts.stop) or t == opts.max_len then
          if not (opts.stop and id == opts.stop) then seq[#seq + 1] = id end
          local norm = vals[i] / ((#seq + 1) ^ alpha)
          if norm > best_score then best, best_score = seq, norm end
          new_scores[i] = -math.huge                                      -- retired
        else
          seq[#seq + 1] = id
          new_scores[i] = vals[i]
        end
        new_seqs[i] = seq
      end
      seqs, scores = new_seqs, new_scores
      -- go on while a beam lives that could still win: with alpha = 0 a
      -- score only falls, so one below the best finished cannot
      local alive = false
      for i = 1, k do alive = alive or (scores[i] > -math.huge and (alpha > 0 or scores[i] > best_score)) end
      if not alive then break end
      local pidx = usagi.tensor(parents, 'i32')
      for i, s in ipairs(state) do state[i] = s:index_select(2, pidx) end
      tok = usagi.tensor(toks, 'i32')
    end
    results[b] = best or seqs[1]
  end
  return results
end

function Seq2Seq:extra_repr()
  local s = ("cell='%s', hidden=%d, layers=%d"):format(self.cell, self.hidden, self.layers)
  if self.bidirectional then s = s .. ', bidirectional=true' end
  if self.attention_kind then s = s .. (", attention='%s'"):format(self.attention_kind) end
  if self.peeky then s = s .. ', peeky=true' end
  if self.reverse_input then s = s .. ', reverse_input=true' end
  return s
end

-- ==== Scoring ==============================================================

-- exact_match(model, x, y, start [, batch]) -> accuracy, misses: greedy
-- answers to the questions x (n, Ts) against y (n, 1 + T) (the start id,
-- then the answer), all T ids right; misses lists {row, answer} of the rest.
function M.exact_match(model, x, y, start, batch)
  batch = batch or 500
  local right, n, T, misses = 0, x:size(1), y:size(2) - 1, {}
  local training = model.training
  model:eval()
  for i = 1, n, batch do
    local m = math.min(batch, n - i + 1)
    local want = y:narrow(1, i, m):narrow(2, 2, T):totable()
    local got = model:generate(x:narrow(1, i, m), { start = start, max_len = T })
    for b = 1, m do
      local ok = #got[b] == T
      for t = 1, T do ok = ok and got[b][t] == want[b][t] end
      if ok then right = right + 1 else misses[#misses + 1] = { i + b - 1, got[b] } end
    end
  end
  if training then model:train() end
  return right / n, misses
end

-- attention_pictures(model, x, vocab, {start, max_len, path_of}) -> answers,
-- paths: the greedy answers to the questions x (k, Ts) of a model with
-- attention, and for each a heatmap of its weights a^t_s (output characters
-- down, input characters across, in reading order even when the model read
-- the input backwards) written to path_of(b). vocab is a data.Vocab.
function M.attention_pictures(model, x, vocab, opts)
  if not model.attention then
    fail('seq2seq.attention_pictures', 'the model has no attention (build it with attention = ...)')
  end
  local got, w = model:generate(x, { start = opts.start, max_len = opts.max_len })  -- w (k, T, Ts)
  if model.reverse_input then
    local n, idx = w:size(3), {}
    for s = 1, n do idx[s] = n + 1 - s end
    w = w:index_select(3, usagi.tensor(idx, 'i32'))
  end
  local function labels(ids)                -- one per character, spaces shown as '.'
    local out = {}
    for i, id in ipairs(ids) do out[i] = (vocab:token(id) or '?'):gsub(' ', '.') end
    return out
  end
  local plot, paths = require 'usagi.plot', {}
  for b = 1, x:size(1) do
    local src = x[b]:totable()
    paths[b] = opts.path_of(b)
    plot.heatmap { values = w[b], xlabels = labels(src), ylabels = labels(got[b]),
      title = vocab:decode(src):gsub('%s+$', '') .. ' -> ' .. vocab:decode(got[b]),
      xlabel = 'input', ylabel = 'output', vmin = 0, vmax = 1, cell = 16, path = paths[b] }
  end
  return got, paths
end

-- ==== HRED and VHRED ======================================================
--
-- HRED (Serban et al. 2016): each utterance of the context is encoded to
-- u^k = GRU_utt(E w^k_1..n)'s last state; a context GRU over u^1..u^K gives
-- c = its last state; the decoder is conditioned on c at every step:
--   d^0 = tanh(W_0 c + b_0),  d^t = GRU_dec([E y^{t-1}; c], d^{t-1}),
--   p(y^t) = softmax(W d^t + b).
-- VHRED (Serban et al. 2017) adds a latent z per response: a prior network
-- N(mu_p, sigma_p^2) = heads(tanh(W_p c + b_p)) and a posterior network
-- N(mu, sigma^2) = heads(tanh(W_q [c; r] + b_q)) with r the response's own
-- encoding; z = mu + sigma * eps (reparameterization) during training, z from
-- the prior when generating; the decoder sees [c; z] where HRED sees c.
--   loss = (sum of the response's token NLL + beta KL(q || p)) / tokens
-- with beta annealed from 0 to 1 by the caller (KL annealing); the KL is
-- also reported alone, so a collapsing posterior (KL -> 0) shows. The
-- Gaussian code is the vae plugin's (vae.gaussian), shared with the VAE.

local vae = require 'usagi.vae'

local HRED = Seq2Seq:extend 'HRED'

local KNOWN_HRED = { vocab = true, embed = true, hidden = true, context = true, decoder = true,
                     latent = true, pad = true, dtype = true }

-- nn.HRED{vocab, embed = 128, hidden = 256 (utterance encoder), context =
-- 256, decoder = 256, latent = 0 (> 0: VHRED with a latent of that size),
-- pad (the id of padding; required), dtype}
function HRED:__init(opts)
  nn.Module.__init(self)
  if type(opts) ~= 'table' then fail('HRED', 'takes one table of options, got %s', type(opts)) end
  for k in pairs(opts) do
    if not KNOWN_HRED[k] then fail('HRED', "unknown option '%s'", tostring(k)) end
  end
  if math.type(opts.vocab) ~= 'integer' or opts.vocab < 1 then
    fail('HRED', 'vocab must be a positive integer (the vocabulary size), got %s', tostring(opts.vocab))
  end
  if math.type(opts.pad) ~= 'integer' then fail('HRED', 'pad must be the id of padding, got %s', tostring(opts.pad)) end
  local V, E, H = opts.vocab, opts.embed or 128, opts.hidden or 256
  local C, Hd, Z, dt = opts.context or 256, opts.decoder or 256, opts.latent or 0, opts.dtype
  self.vocab, self.pad, self.latent, self.hidden, self.context_size = V, opts.pad, Z, H, C
  self.embed = nn.Embedding(V, E, { dtype = dt })
  self.utterance = nn.GRU(E, H, { dtype = dt })
  self.context_rnn = nn.GRU(H, C, { dtype = dt })
  self.init = nn.Linear(C + Z, Hd, { dtype = dt })
  self.decoder = nn.GRU(E + C + Z, Hd, { dtype = dt })
  self.out = nn.Linear(Hd, V, { dtype = dt })
  if Z > 0 then
    self.prior_h = nn.Linear(C, C, { dtype = dt })
    self.prior = nn.GaussianLatent(C, Z, { dtype = dt })
    self.posterior_h = nn.Linear(C + H, C, { dtype = dt })
    self.posterior = nn.GaussianLatent(C, Z, { dtype = dt })
  end
end

-- utterances (N, L) ids, lengths (N) -> (N, H), each one's last state
function HRED:encode_utterances(ids, lengths)
  local _, h = self.utterance(self.embed(ids:transpose(1, 2)), nil, lengths)
  return h:select(1, 1)
end

-- batch (see M.dialogue_batch) -> c (B, C)
function HRED:context(batch)
  local u = self:encode_utterances(batch.ctx, batch.ctx_len)            -- (B*K, H)
  u = u:view(batch.B, batch.K, self.hidden):transpose(1, 2)             -- (K, B, H)
  local _, c = self.context_rnn(u, nil, batch.turns)
  return c:select(1, 1)
end

-- the prior's N(mu_p, exp(lv_p)) from c
function HRED:prior_of(c)
  local h = self.prior_h(c):tanh()
  return self.prior.mu(h), self.prior.logvar(h)
end

local function enc_of(self, cond)
  return { cond = cond, state = { self.init(cond):tanh():unsqueeze(1) } }
end

-- decode(enc, y_in (T, B), state) -> logits (T, B, V), the final state
function HRED:decode(enc, y_in, state)
  local T, B = y_in:size(1), y_in:size(2)
  local x = usagi.cat({ self.embed(y_in), enc.cond:unsqueeze(1):expand(T, B, enc.cond:size(2)) }, 3)
  local d, h = self.decoder(x, state[1])
  return self.out(d), { h }
end

-- loss(batch [, {beta = 1}]) -> loss, {nll = per token, kl = per response,
-- tokens}: the response's mean NLL per token (stop included, padding not)
-- plus, for VHRED, beta * KL(q || p) per token.
function HRED:loss(batch, opts)
  local beta = (opts and opts.beta) or 1
  local c = self:context(batch)
  local cond, kl = c, nil
  if self.latent > 0 then
    local r = self:encode_utterances(batch.resp_ids, batch.resp_len)
    local mu_p, lv_p = self:prior_of(c)
    local hq = self.posterior_h(usagi.cat({ c, r }, 2)):tanh()
    local mu, lv = self.posterior.mu(hq), self.posterior.logvar(hq)
    local z
    z, kl = vae.sample(mu, lv, mu_p, lv_p, { mean = not self.training })
    cond = usagi.cat({ c, z }, 2)
  end
  local y = batch.resp
  local T = y:size(2) - 1
  local enc = enc_of(self, cond)
  local logits = self:decode(enc, y:narrow(2, 1, T):transpose(1, 2), enc.state)
  local target = y:narrow(2, 2, T):transpose(1, 2):reshape(-1)
  local nll = usagi.cross_entropy(logits:reshape(-1, self.vocab), target,
    { ignore_index = self.pad, reduction = 'sum' })
  local tokens = target:ne(self.pad):sum():item()
  local loss = nll / tokens
  local info = { nll = nll:item() / tokens, tokens = tokens, kl = 0 }
  if kl then
    local kl_sum = kl:sum()
    loss = loss + kl_sum * (beta / tokens)
    info.kl = kl_sum:item() / batch.B
    info.kl_sum = kl_sum:item()
  end
  return loss, info
end

-- decoding (generate, inherited): the context, and z drawn from the prior
-- (its mean with opts.mean)
function HRED:prepare(batch, opts)
  local c = self:context(batch)
  local cond = c
  if self.latent > 0 then
    local mu_p, lv_p = self:prior_of(c)
    cond = usagi.cat({ c, (vae.sample(mu_p, lv_p, nil, nil, { mean = opts.mean })) }, 2)
  end
  return enc_of(self, cond), batch.B
end

function HRED:expand_enc(enc, b, k)
  local cond = enc.cond:narrow(1, b, 1):expand(k, enc.cond:size(2)):contiguous()
  return enc_of(self, cond)
end

function HRED:extra_repr()
  return ('vocab=%d, hidden=%d, context=%d%s'):format(self.vocab, self.hidden, self.context_size,
    self.latent > 0 and (', latent=%d (VHRED)'):format(self.latent) or '')
end

-- dialogue_batch(examples, lo, hi, opts) -> a batch for HRED from examples
-- lo..hi, each {context = {utterance, ...} (lists of ids, oldest first, the
-- last K kept), response = {ids}}. opts: pad, start, stop, context (K,
-- default 3). The context utterances go left-aligned into (B*K, L) with
-- lengths (a missing turn is one pad of length 1, past `turns`); resp (B, 1
-- + n + 1) is start, the response, stop, padding; resp_ids and resp_len the
-- response alone (the posterior's input).
function M.dialogue_batch(examples, lo, hi, opts)
  local K, pad = opts.context or 3, opts.pad
  local B = hi - lo + 1
  local ctx, ctx_len, turns, resp, resp_ids, resp_len = {}, {}, {}, {}, {}, {}
  local Lu, Lr = 1, 1
  for i = lo, hi do
    local ex = examples[i]
    local n = math.min(#ex.context, K)
    turns[#turns + 1] = math.max(n, 1)
    for k = 1, K do
      local u = ex.context[#ex.context - n + k]
      if k > n then u = { pad } end
      ctx[#ctx + 1], ctx_len[#ctx_len + 1] = u, math.max(#u, 1)
      Lu = math.max(Lu, #u)
    end
    Lr = math.max(Lr, #ex.response)
  end
  local function padded(list, L)
    local rows = {}
    for r, u in ipairs(list) do
      local row = {}
      for j = 1, L do row[j] = u[j] or pad end
      rows[r] = row
    end
    return usagi.tensor(rows, 'i32')
  end
  for i = lo, hi do
    local r = examples[i].response
    local row = { opts.start }
    for j = 1, Lr + 1 do row[j + 1] = r[j] or (j == #r + 1 and opts.stop or pad) end
    resp[#resp + 1] = row
    resp_ids[#resp_ids + 1], resp_len[#resp_len + 1] = r, math.max(#r, 1)
  end
  return { B = B, K = K, ctx = padded(ctx, Lu), ctx_len = ctx_len, turns = turns,
           resp = usagi.tensor(resp, 'i32'), resp_ids = padded(resp_ids, Lr), resp_len = resp_len }
end

nn.Seq2Seq, nn.HRED = Seq2Seq, HRED
M.Seq2Seq, M.HRED = Seq2Seq, HRED

return M
