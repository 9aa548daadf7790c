-- char_rnn.lua -- a character-level LSTM language model on Tiny Shakespeare,
-- karpathy's char-rnn task: read the text one character at a time and learn
-- to predict the next; then write some, sampling with a temperature.
--
--   x^t = E[c_t]   (an embedding row per character, as char-rnn's one-hot times a matrix)
--   h^t = LSTM(x^t, h^{t-1})     (num_layers layers, carried across windows: truncated BPTT)
--   p(c_{t+1} | c_{≤t}) = softmax(W h^t + b)        loss: cross-entropy, nats per character
--
-- The text is split 90/5/5 into train, validation and test as char-rnn does
-- (train_frac 0.95 with the rest split, here 0.9 / 0.05 / 0.05); each split is
-- cut into `batch` contiguous streams read `steps` characters at a time.
--
--   usagi run experiments/char_rnn.lua                        # 2 x 128, 3000 steps
--   usagi run experiments/char_rnn.lua --set prompt='ROMEO:' --set temperature=0.5
--   usagi infer runs/char_rnn/<run-id> 'ROMEO:' --n 200       # the trained model writes
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
require 'usagi.lstm'

local CharLM = nn.Module:extend 'CharLM'

function CharLM:__init(V, cfg)
  nn.Module.__init(self)
  self.embed = nn.Embedding(V, cfg.hidden)
  self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, { num_layers = cfg.layers, dropout = cfg.dropout, carry = true })
  self.drop = nn.Dropout(cfg.dropout)
  self.out = nn.Linear(cfg.hidden, V)
end

function CharLM:forward(ids)                     -- (T, B) i32 -> logits (T * B, V)
  local h = self.drop(self.lstm(self.embed(ids)))
  return self.out(h:reshape(-1, h:size(3)))
end

-- The text and its alphabet: ids (n) i32 (1-based), and the data.Vocab of
-- its characters (ids in order of first appearance).
local function load_text(path)
  local text = usagi.sys.read(data.path(path))
  local vocab = data.Vocab.from_text(text, { level = 'char' })
  return vocab:encode(text), vocab
end

-- Mean cross-entropy (nats per character) over a split, state carried.
local function evaluate(model, batched, T)
  model:eval()
  model.lstm:reset()
  local total, n = 0, 0
  usagi.no_grad(function()
    for x, y in data.windows(batched, T) do
      local loss = usagi.cross_entropy(model(x), y:reshape(-1))
      total, n = total + loss:item() * y:numel(), n + y:numel()
    end
  end)
  model:train()
  model.lstm:reset()
  return total / n
end

-- Text from the model: the prompt fed in, then n characters drawn from
-- softmax(logits / temperature). The model is left in the mode it was in.
local function sample(model, vocab, prompt, n, temperature)
  local training = model.training
  model:eval()
  model.lstm:reset()
  local out = { prompt }
  local logits
  usagi.no_grad(function()
    for c in prompt:gmatch('.') do
      logits = model(usagi.tensor({ { vocab.index[c] or 1 } }, { dtype = 'i32' }))
    end
    for _ = 1, n do
      local p = (logits / temperature):softmax(2)
      local id = usagi.multinomial(p, 1)[{ 1, 1 }]
      out[#out + 1] = vocab[id]
      logits = model(usagi.tensor({ { id } }, { dtype = 'i32' }))
    end
  end)
  model:train(training)
  model.lstm:reset()
  return table.concat(out)
end

return usagi.experiment {
  name = 'char_rnn',
  config = { layers = 2, hidden = 128, steps = 50, batch = 50, lr = 2e-3, clip = 5, dropout = 0.0,
             iterations = 3000, eval_every = 500, limit = 0, prompt = 'JULIET:', temperature = 0.8,
             sample = 400 },
  smoke = { hidden = 32, steps = 20, batch = 8, iterations = 60, eval_every = 30, limit = 30000, sample = 40 },
  checkpoint = { every = 500, keep = 2, best = 'valid_loss' },

  -- the model of a config; data is what the run keeps (run:model below)
  model = function(cfg, d) return CharLM(#d.vocab, cfg) end,

  -- usagi infer RUN_DIR 'ROMEO:' -> the prompt and what the model writes after it
  infer_help = 'each INPUT is a prompt (default: the config\'s prompt); the answer is the prompt '
    .. 'and --n characters sampled after it at --temperature (0 < t; lower is safer). '
    .. '--seed N gives another sample',
  infer_options = { n = 400, temperature = 0.8 },
  infer = function(model, input, ctx)
    local prompt, o = input or ctx.config.prompt, ctx.options
    if type(prompt) ~= 'string' or prompt == '' then error('char_rnn: give a prompt, e.g. \'ROMEO:\'', 0) end
    if o.temperature <= 0 then error(('char_rnn: --temperature must be above 0, got %g'):format(o.temperature), 0) end
    if o.n < 0 then error(('char_rnn: --n must be 0 or more characters, got %d'):format(o.n), 0) end
    ctx.vocab:ids(prompt)                    -- every character of the prompt known, or a clear error
    return sample(model, ctx.vocab, prompt, o.n, o.temperature)
  end,

  run = function(run, cfg)
    local ids, chars = load_text('tinyshakespeare/input.txt')
    if cfg.limit > 0 then ids = ids:narrow(1, 1, math.min(cfg.limit, ids:size(1))) end
    local n = ids:size(1)
    local n_train, n_valid = math.floor(0.9 * n), math.floor(0.05 * n)
    local train = data.batchify(ids:narrow(1, 1, n_train), cfg.batch)
    local valid = data.batchify(ids:narrow(1, n_train + 1, n_valid), cfg.batch)
    local test = data.batchify(ids:narrow(1, n_train + n_valid + 1, n - n_train - n_valid), cfg.batch)
    run:print(('%d characters, %d distinct; %d / %d / %d for train / valid / test')
      :format(n, #chars, n_train, n_valid, n - n_train - n_valid))

    local model = run:model { vocab = chars }
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    local state = run:track { model = model, optim = opt, state = { window = 0 } }
    local per_epoch = data.nwindows(train, cfg.steps)
    -- the LSTM's state goes from one window to the next: a checkpoint keeps it
    for it in run:progress(cfg.iterations, { label = 'char_rnn', per_step = cfg.steps * cfg.batch, unit = 'chars',
                                             carry = { lstm = model.lstm } }) do
      state.window = state.window % per_epoch + 1
      if state.window == 1 then model.lstm:reset() end       -- a new pass over the text
      local x, y = data.window(train, cfg.steps, state.window)
      local loss = usagi.cross_entropy(model(x), y:reshape(-1))
      opt:zero_grad()
      loss:backward()
      optim.clip_grad_norm(model:parameters(), cfg.clip)
      opt:step()
      if it % cfg.eval_every == 0 or it == cfg.iterations then
        local v = evaluate(model, valid, cfg.steps)
        run:log { train_loss = loss:item(), valid_loss = v }
        run:print(('step %5d  train %.3f  valid %.3f nats/char'):format(it, loss:item(), v))
      end
    end
    local t = evaluate(model, test, cfg.steps)
    run:log { test_loss = t }
    run:print(('test loss %.4f nats/char (%.3f bits/char)'):format(t, t / math.log(2)))
    run:print(('--- sample, temperature %.2g ---\n%s'):format(cfg.temperature,
      sample(model, chars, cfg.prompt, cfg.sample, cfg.temperature)))
    return t
  end,
}
