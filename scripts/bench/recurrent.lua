--[[
recurrent.lua -- the fused recurrent plugins timed as a user runs them, the
usagi half of the side-by-side benchmark against PyTorch (the other half is
peers/recurrent_torch.py, the driver is ./recurrent).

    <build>/usagi scripts/bench/recurrent.lua [--threads N] [--only NAME,...]
                                              [--reps R] [--warmup W]

Rows (NAME):
  rnn_h256  rnn_h512    nn.RNN (tanh)   require 'usagi.rnn'
  lstm_h256 lstm_h512   nn.LSTM         require 'usagi.lstm'
  gru_h256  gru_h512    nn.GRU          require 'usagi.gru'
  bilstm_h256 bilstm_h512  nn.LSTM with bidirectional = true (outputs concatenated,
                        (T, B, 2H); g has that shape)
      T = 64, B = 32, I = 128, H = 256 or 512, one layer, f32, h0 = zeros.
      train_ms  forward + backward: out = model(x), loss = sum(out * g) with a
                fixed g (T, B, H), loss:backward(); x and every weight require
                grad, gradients set to nil before each call (outside the clock).
      infer_ms  forward only, inside usagi.no_grad.
  ptb_small   Embedding(10000, 200) -> LSTM(200, 200, 2 layers) -> Linear(200, 10000)
              -> cross_entropy (mean over the T*B tokens), T = 20, B = 20, weights
              from U(-0.1, 0.1), no dropout.
  ptb_medium  the same with 650 units, T = 35, B = 20, U(-0.05, 0.05), Dropout(0.5)
              after the embedding and after the LSTM, LSTM dropout 0.5 between layers.
      step_ms       one full training step: opt:zero_grad() (to nil), forward,
                    loss:backward(), optim.clip_grad_norm(params, 5), SGD lr 1 step.
                    The LSTM carries its (h, c) from step to step, detached
                    (carry = true), as truncated BPTT does. Token ids are random
                    (uniform over the 10000 words), drawn once.
      tokens_per_s  T * B / step_ms.
  dates_attn  the date-translation model of experiments/attention_dates.lua as the
              benchmark of issue 6 has it: nn.Seq2Seq with a GRU encoder and decoder
              (embedding 64, hidden 256, vocabulary 59) and Luong's dot attention,
              batch 64, questions of 29 ids, answers of 10 (after the start id);
      step_ms          one Adam step: zero_grad, loss (mean cross-entropy per answer
                       id), backward, clip_grad_norm(params, 5), step.
      samples_per_s    64 / step_ms.
      beam_sents_per_s 16 questions decoded by beam search, beam 5, 10 steps
                       each (no stop id), one question after another: 16 / time.

For every row also:
  base_mb   VmRSS (/proc/self/status) just before the row builds its model.
  peak_mb   VmHWM, the process's peak resident memory, after the row. It is a
            high-water mark of the whole process, so it belongs to one row only
            when the process runs that row alone: the driver runs each row in a
            fresh process (--only NAME). Several rows in one process report
            the peak so far.

Each time is the median of R repetitions of one call after W warm-up calls,
wall time from usagi.sys.monotonic(). Output: '#' comment lines, then one line
per figure, `row <name> <metric> <value>`. Not for gating CI on a time.
]]
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local optim = require 'usagi.optim'
require 'usagi.rnn'
require 'usagi.lstm'
require 'usagi.gru'
require 'usagi.seq2seq'
local now = usagi.sys.monotonic

-- ==== Options ==============================================================

local ROWS = { 'rnn_h256', 'rnn_h512', 'lstm_h256', 'lstm_h512', 'gru_h256', 'gru_h512',
               'bilstm_h256', 'bilstm_h512', 'ptb_small', 'ptb_medium', 'dates_attn' }
local opts = { reps = 7, warmup = 2 }
local only
do
  local function fail(msg)
    io.stderr:write('recurrent.lua: ', msg, ' (see the header of this file)\n')
    os.exit(2)
  end
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if v == nil then fail('option ' .. tostring(k) .. ' needs a value') end
    if k == '--only' then
      only = {}
      for name in v:gmatch('[^,]+') do only[name] = true end
    elseif k == '--threads' or k == '--reps' or k == '--warmup' then
      local n = math.tointeger(tonumber(v))
      if not n or n < (k == '--warmup' and 0 or 1) then fail(k .. ' needs a positive integer') end
      opts[k:sub(3)] = n
    else
      fail('bad option ' .. tostring(k))
    end
    i = i + 2
  end
  if only then
    local known = {}
    for _, r in ipairs(ROWS) do known[r] = true end
    for name in pairs(only) do
      if not known[name] then fail('no row ' .. name .. '; rows: ' .. table.concat(ROWS, ' ')) end
    end
  end
end
if opts.threads then usagi.set_num_threads(opts.threads) end

-- ==== Measuring ============================================================

local function median(xs)
  local s = {}
  for i = 1, #xs do s[i] = xs[i] end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

-- ms per call of f: median of R timed calls after W untimed ones; before
-- each call, prep() (outside the clock).
local function time_ms(f, prep)
  for _ = 1, opts.warmup do
    if prep then prep() end
    f()
  end
  local ts = {}
  for r = 1, opts.reps do
    if prep then prep() end
    local t0 = now()
    f()
    ts[r] = (now() - t0) * 1e3
  end
  return median(ts)
end

local rows = dofile((arg[0]:match('^(.*)/') or '.') .. '/rows.lua')
local status_mb, emit = rows.status_mb, rows.emit

-- ==== Recurrent layers =====================================================

local T, B, I = 64, 32, 128
local CLASSES = { rnn = function(H) return nn.RNN(I, H, { nonlinearity = 'tanh' }) end,
                  lstm = function(H) return nn.LSTM(I, H) end,
                  gru = function(H) return nn.GRU(I, H) end,
                  bilstm = function(H) return nn.LSTM(I, H, { bidirectional = true }) end }
local DIRS = { bilstm = 2 }

local function cell_row(name, kind, H)
  emit(name, 'base_mb', '%.1f', status_mb('VmRSS'))
  usagi.manual_seed(1)
  local model = CLASSES[kind](H)
  local x = usagi.randn(T, B, I):requires_grad(true)
  local g = usagi.randn(T, B, (DIRS[kind] or 1) * H)
  local function prep()
    x.grad = nil
    model:zero_grad()
  end
  local function train()
    local out = model(x)
    local loss = (out * g):sum()
    loss:backward()
  end
  local function infer()
    usagi.no_grad(function() return model(x) end)
  end
  emit(name, 'train_ms', '%.3f', time_ms(train, prep))
  emit(name, 'infer_ms', '%.3f', time_ms(infer))
  emit(name, 'peak_mb', '%.1f', status_mb('VmHWM'))
end

-- One training step, timed: zero_grad (to nil), loss(), backward, the
-- gradient clipped to norm 5, opt:step(); the median ms.
local function step_ms(params, opt, loss)
  return time_ms(function()
    opt:zero_grad()
    loss():backward()
    optim.clip_grad_norm(params, 5)
    opt:step()
  end)
end

-- ==== PTB language model ===================================================

local PTB = {
  ptb_small = { V = 10000, H = 200, layers = 2, T = 20, B = 20, dropout = 0, init = 0.1 },
  ptb_medium = { V = 10000, H = 650, layers = 2, T = 35, B = 20, dropout = 0.5, init = 0.05 },
}

local LM = nn.Module:extend 'BenchLM'

function LM:__init(c)
  nn.Module.__init(self)
  self.embed = nn.Embedding(c.V, c.H)
  self.lstm = nn.LSTM(c.H, c.H, { num_layers = c.layers, dropout = c.dropout, carry = true })
  self.decoder = nn.Linear(c.H, c.V)
  if c.dropout > 0 then
    self.drop_in, self.drop_out = nn.Dropout(c.dropout), nn.Dropout(c.dropout)
  end
end

function LM:forward(ids)                    -- ids (T, B) -> scores (T*B, V)
  local e = self.embed(ids)
  if self.drop_in then e = self.drop_in(e) end
  local h = self.lstm(e)
  if self.drop_out then h = self.drop_out(h) end
  return self.decoder(h:reshape(-1, h:size(3)))
end

local function ptb_row(name)
  local c = PTB[name]
  emit(name, 'base_mb', '%.1f', status_mb('VmRSS'))
  usagi.manual_seed(1)
  local model = LM(c)
  local params = model:parameters()
  usagi.no_grad(function()
    for _, p in ipairs(params) do nn.init.uniform_(p, -c.init, c.init) end
  end)
  model:train()
  local opt = optim.SGD(params, { lr = 1 })
  local function ids() return (usagi.rand(c.T, c.B) * c.V):floor():clamp(0, c.V - 1):int() + 1 end
  local x, y = ids(), ids():reshape(-1)
  local ms = step_ms(params, opt, function() return usagi.cross_entropy(model(x), y) end)
  emit(name, 'step_ms', '%.3f', ms)
  emit(name, 'tokens_per_s', '%.1f', c.T * c.B / (ms * 1e-3))
  emit(name, 'peak_mb', '%.1f', status_mb('VmHWM'))
end

-- ==== Seq2seq with attention ================================================

local function dates_row(name)
  emit(name, 'base_mb', '%.1f', status_mb('VmRSS'))
  usagi.manual_seed(1)
  local V, Ts, Tt, B = 59, 29, 11, 64
  local model = nn.Seq2Seq { src_vocab = V, tgt_vocab = V, embed = 64, hidden = 256, cell = 'gru',
                             attention = 'dot' }
  local params = model:parameters()
  local opt = optim.Adam(params, { lr = 0.001 })
  local function ids(n, T) return (usagi.rand(n, T) * V):floor():clamp(0, V - 1):int() + 1 end
  local x, y = ids(B, Ts), ids(B, Tt)
  local ms = step_ms(params, opt, function() return model:loss(x, y) end)
  emit(name, 'step_ms', '%.3f', ms)
  emit(name, 'samples_per_s', '%.1f', B / (ms * 1e-3))
  model:eval()
  local q = x:narrow(1, 1, 16)
  local bms = time_ms(function() model:generate(q, { start = 1, max_len = 10, method = 'beam', beam = 5 }) end)
  emit(name, 'beam_sents_per_s', '%.1f', 16 / (bms * 1e-3))
  emit(name, 'peak_mb', '%.1f', status_mb('VmHWM'))
end

-- ==== Run ==================================================================

local info = usagi.blas_info()
print(('# usagi recurrent | %s | core %s | threads %d | OPENBLAS_CORETYPE=%s | median of %d reps after %d warm-up'):format(
  info.config, info.core, info.threads, os.getenv('OPENBLAS_CORETYPE') or '(unset)', opts.reps, opts.warmup))
for _, name in ipairs(ROWS) do
  if not only or only[name] then
    local kind, H = name:match('^(%a+)_h(%d+)$')
    if kind then cell_row(name, kind, tonumber(H))
    elseif name == 'dates_attn' then dates_row(name)
    else ptb_row(name) end
  end
end
