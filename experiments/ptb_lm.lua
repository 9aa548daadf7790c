-- ptb_lm.lua -- the word-level LSTM language model of Zaremba, Sutskever &
-- Vinyals, "Recurrent Neural Network Regularization" (2014), on the Penn
-- Treebank (10,000 words; 929k train tokens): predict each next word.
--
--   e^t = E w^t                                  embedding, (T, B, H)
--   h^t_l, c^t_l = LSTM_l(D(h^t_{l-1}), h^{t-1}_l, c^{t-1}_l)   h^t_0 = e^t, l = 1..L
--   p(w^{t+1}) = softmax(W D(h^t_L) + b)         over the V words
--   L = -1/B sum_t sum_b log p(w^{t+1}_b)        truncated BPTT over T steps
--   perplexity = exp(mean NLL per token)
--
-- D is dropout (on the non-recurrent connections only; p = 0 in the small
-- config). The text is cut into B contiguous columns (usagi.data.batchify)
-- read T words at a time; the LSTM carries its (h, c) from one window to
-- the next, detached, and starts from zeros at every epoch and every
-- evaluation. SGD with gradients clipped to norm 5; from epoch decay_from
-- on, the learning rate is multiplied by decay at the start of every epoch.
-- Every parameter starts from U(-init, init).
--
--   usagi run experiments/ptb_lm.lua                      # "small": 2x200, 13 epochs, test ppl ~115
--   usagi run experiments/ptb_lm.lua --set preset=medium  # 2x650, dropout 0.5, 39 epochs, ~82
--   usagi run experiments/ptb_lm.lua --smoke              # a few seconds, for the tests
--   usagi infer runs/ptb_lm/<run-id> 'the company said'   # its perplexity, and ten words more
--
-- preset=medium (or large) gives every preset key that is still at its small
-- default the preset's value (hidden, steps, dropout, epochs, init, decay,
-- decay_from; large also clip). So `--set preset=medium --set hidden=400`
-- keeps 400; a key --set to exactly its small default cannot be told from
-- one not set, so it takes the preset's value too (spell the whole config
-- out with preset=small for that). The run prints the values in force.
--
-- The loss that is differentiated is the mean over the batch of the sum
-- over the T steps (as Zaremba's code and the TensorFlow tutorial do): the
-- per-token mean times T; lr = 1 and the clip norm 5 assume that scale.
-- The valid set is read as train is (B columns); the test set as one column
-- (B = 1), a single state carried over the whole text, as in the paper.
--
-- Under `mpirun -np R`, B stays the whole batch: rank r reads columns
-- r B/R + 1 .. (r + 1) B/R of every window (run:shard), carries the state of
-- those columns, and the gradients are averaged over the ranks before the
-- clip, so R ranks take the steps one rank takes with all B columns (to f32
-- rounding). The perplexities sum their NLL and token counts over the ranks.
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
require 'usagi.lstm'

local CONFIG = { preset = 'small', layers = 2, hidden = 200, steps = 20, batch = 20, lr = 1.0,
                 decay = 0.5, decay_from = 5, epochs = 13, clip = 5.0, dropout = 0.0, init = 0.1,
                 limit = 0 }

-- Zaremba's medium and large configs (decay as the TensorFlow tutorial
-- has it; the paper divides by 1.2 and 1.15: --set decay=0.8333).
local PRESETS = {
  small = {},
  medium = { hidden = 650, steps = 35, dropout = 0.5, epochs = 39, init = 0.05, decay = 0.8, decay_from = 7 },
  large = { hidden = 1500, steps = 35, dropout = 0.65, epochs = 55, init = 0.04, decay = 1 / 1.15,
            decay_from = 15, clip = 10.0 },
}

-- The config in force: the preset's values where cfg still has the small ones.
local function resolve(cfg)
  local preset = PRESETS[cfg.preset]
  if not preset then
    error(("ptb_lm: preset must be small, medium or large, got '%s'"):format(cfg.preset), 0)
  end
  local c = {}
  for k, v in pairs(cfg) do c[k] = v end
  for k, v in pairs(preset) do
    if cfg[k] == CONFIG[k] then c[k] = v end
  end
  return c
end

-- ==== The model ==========================================================

local LM = nn.Module:extend 'WordLSTM'
local continue_sentence

function LM:__init(V, c)
  nn.Module.__init(self)
  self.embed = nn.Embedding(V, c.hidden)
  self.drop_in = nn.Dropout(c.dropout)
  self.lstm = nn.LSTM(c.hidden, c.hidden, { num_layers = c.layers, dropout = c.dropout, carry = true })
  self.drop_out = nn.Dropout(c.dropout)
  self.decoder = nn.Linear(c.hidden, V)
end

-- ids (T, B) -> scores (T*B, V), the state carried from the last call
function LM:forward(ids)
  local h = self.lstm(self.drop_in(self.embed(ids)))   -- (T, B, H)
  h = self.drop_out(h)
  return self.decoder(h:reshape(-1, h:size(3)))
end

-- exp(mean NLL per token) over every full window of batched (N, B), in
-- eval mode with the state carried from window to window and reset before.
-- With `run` (a sharded set), the NLL and counts of all ranks together.
local function perplexity(model, batched, T, run)
  model:eval()
  model.lstm:reset()
  local nll, n = 0, 0
  usagi.no_grad(function()
    for x, y in data.windows(batched, T) do
      nll = nll + usagi.cross_entropy(model(x), y:reshape(-1)):item() * y:numel()
      n = n + y:numel()
    end
  end)
  model.lstm:reset()
  model:train()
  if run then nll, n = run:allreduce(nll), run:allreduce(n) end
  return math.exp(nll / n)
end

-- The splits as (N, B) batches; limit > 0 keeps the first `limit` ids of
-- each split and only the words of those train ids: ids 1..V, since ids
-- follow first appearance in train (valid and test words past V read as
-- <unk>). The smoke config trains on 10,000 tokens with V = 2138.
local function splits(ptb, c)
  local train, valid, test, V = ptb.train, ptb.valid, ptb.test, #ptb.vocab
  if c.limit > 0 then
    local function head(ids) return ids:narrow(1, 1, math.min(c.limit, ids:size(1))) end
    local unk = ptb.ids['<unk>']
    train = head(train)
    V = math.max(train:max():item(), unk)
    local function known(ids) return usagi.where(ids:gt(V), unk, ids) end
    valid, test = known(head(valid)), known(head(test))
  end
  return data.batchify(train, c.batch), data.batchify(valid, c.batch), data.batchify(test, 1), V
end

-- ==== The model in use ==================================================

-- One sampled id of logits (1, V) at a temperature (0: the argmax).
local function pick(logits, temperature)
  if temperature <= 0 then
    local _, i = logits:max(2)
    return i[{ 1, 1 }]
  end
  return usagi.multinomial((logits / temperature):softmax(2), 1)[{ 1, 1 }]
end

-- The perplexity of a sentence (its words and the <eos> after it, each
-- given the ones before, the state starting after an <eos>) and the
-- sentence continued by o.n words: two lines.
function continue_sentence(model, vocab, V, input, o)
  if type(input) ~= 'string' or input:match('^%s*$') then
    error("ptb_lm: give a sentence, e.g. 'the company said it expects'", 0)
  end
  if o.n < 0 then error(('ptb_lm: --n must be 0 or more words, got %d'):format(o.n), 0) end
  local eos, unk = vocab.index['<eos>'], vocab.index['<unk>']
  local words, ids = {}, {}
  for w in input:lower():gsub('%d+', 'N'):gmatch('%S+') do
    local id = vocab.index[w]
    if not id or id > V then id, w = unk, w .. '(<unk>)' end
    words[#words + 1], ids[#ids + 1] = w, id
  end
  model:eval()
  model.lstm:reset()
  local function step(id) return model(usagi.tensor({ { id } }, 'i32')) end    -- (1, V)
  local nll, logits = 0, step(eos)
  for k = 1, #ids + 1 do
    local target = ids[k] or eos
    nll = nll - logits:log_softmax(2)[{ 1, target }]
    if ids[k] then logits = step(ids[k]) end
  end
  local ppl = math.exp(nll / (#ids + 1))
  local more = {}
  for _ = 1, o.n do
    local id = pick(logits, o.temperature)
    more[#more + 1] = vocab[id]
    logits = step(id)
  end
  model.lstm:reset()
  return { ('perplexity %.2f over %d words and <eos> (%.3f nats a word)'):format(ppl, #ids, nll / (#ids + 1)),
           table.concat(words, ' ') .. ' | ' .. table.concat(more, ' ') }
end

return usagi.experiment {
  name = 'ptb_lm',
  config = CONFIG,
  smoke = { hidden = 32, layers = 2, steps = 10, batch = 8, epochs = 2, limit = 10000 },
  checkpoint = { every_epochs = 1, keep = 2, best = 'valid_ppl' },

  -- the model of a config; data is what the run keeps (run:model below):
  -- the vocabulary and V, how many of its words the model predicts
  model = function(cfg, d) return LM(d.V, resolve(cfg)) end,

  -- usagi infer RUN_DIR 'the company said' -> its perplexity, and more words
  infer_help = "each INPUT is a sentence (PTB's way: lower case, numbers as N, words the "
    .. 'vocabulary lacks read as <unk>); the answer is its perplexity under the model, then the '
    .. 'sentence continued by --n words sampled at --temperature (0: the likeliest each time)',
  infer_options = { n = 10, temperature = 1.0 },
  infer = function(model, input, ctx)
    return continue_sentence(model, ctx.vocab, ctx.data.V, input, ctx.options)
  end,

  run = function(run, cfg)
    local c = resolve(cfg)
    local T, B = c.steps, c.batch
    local ptb = data.ptb()
    local train, valid, test, V = splits(ptb, c)    -- (N, B), (N', B), (N'', 1)
    local nbatches = data.nwindows(train, T)
    train, valid = run:shard(train, 2), run:shard(valid, 2)   -- this rank's columns
    run:print(('ptb_lm: %s, %d layers x %d, T %d, B %d, dropout %g, init %g, lr %g (x%g from epoch %d), '
      .. 'clip %g, %d epochs; V %d, %d train tokens, %d windows an epoch')
      :format(c.preset, c.layers, c.hidden, T, B, c.dropout, c.init, c.lr, c.decay, c.decay_from,
        c.clip, c.epochs, V, train:numel(), nbatches))

    local model = run:model { vocab = ptb.vocab, V = V }
    local params = model:parameters()
    usagi.no_grad(function()
      for _, p in ipairs(params) do nn.init.uniform_(p, -c.init, c.init) end
    end)
    local opt = optim.SGD(params, { lr = c.lr })
    run:track { model = model, optim = opt }

    for epoch in run:epochs(c.epochs) do
      local lr = c.lr * c.decay ^ math.max(0, epoch - c.decay_from + 1)
      opt.param_groups[1].lr = lr
      model.lstm:reset()
      -- what the steps carry, which a mid-epoch checkpoint keeps: the sums
      -- and the LSTM's (h, c) from one window to the next
      local carry, t0 = { nll = 0, seen = 0, lstm = model.lstm }, usagi.sys.monotonic()
      for i in run:progress(nbatches, { label = ('epoch %d/%d'):format(epoch, c.epochs),
                                        unit = 'tokens', per_step = T * B, carry = carry }) do
        local x, y = data.window(train, T, i)
        local loss = usagi.cross_entropy(model(x), y:reshape(-1))  -- mean NLL per token
        local objective = loss * T                                 -- sum over steps, mean over B
        opt:zero_grad()
        objective:backward()
        optim.clip_grad_norm(params, c.clip)
        opt:step()
        carry.nll, carry.seen = carry.nll + loss:item(), carry.seen + 1
      end
      local nll, seen = carry.nll, carry.seen
      local seconds = usagi.sys.monotonic() - t0
      local train_ppl = math.exp(run:allreduce(nll, 'mean') / math.max(seen, 1))
      local valid_ppl = perplexity(model, valid, T, run)
      local tokens = run:allreduce(seen * T * train:size(2))      -- of all ranks (each its columns)
      local tokens_per_s = tokens / seconds
      run:log { epoch = epoch, lr = lr, train_ppl = train_ppl, valid_ppl = valid_ppl,
                tokens_per_s = tokens_per_s, train_tokens = tokens }
      run:print(('epoch %2d  lr %.4g  train ppl %8.2f  valid ppl %8.2f  %6.0f tokens/s  (%.0f s)')
        :format(epoch, lr, train_ppl, valid_ppl, tokens_per_s, seconds))
    end

    local test_ppl = perplexity(model, test, T)   -- one column: every rank reads it all
    run:log { test_ppl = test_ppl }
    run:print(('test ppl %.2f'):format(test_ppl))
    return test_ppl
  end,
}
