-- binary_addition.lua -- the course's first RNN: learn to add two 8-bit
-- numbers one bit per step, least significant bit first, so that the hidden
-- state must carry.
--
--   x^t = (a_t, b_t)                       two input bits at step t
--   u^t = W_in x^t + W z^{t-1} + b         z^t = f(u^t)       (16 units)
--   y^t = sigmoid(W_out z^t + c)           the predicted bit of a + b
--   L   = sum_t 1/2 (y^t - d^t)^2          SGD, lr 0.1, one sum per step
--
-- Try the course's variations from the command line, no code edits:
--   usagi experiments/binary_addition.lua --set activation=tanh
--   usagi experiments/binary_addition.lua --set init=xavier --set hidden=32
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
require 'usagi.rnn'

-- (bits, B, 2) inputs and (bits, B, 1) targets, least significant bit first
local function encode(a, b, bits)
  local n = #a
  local x, d = usagi.zeros(bits, n, 2), usagi.zeros(bits, n, 1)
  for i = 1, n do
    local s = a[i] + b[i]
    for t = 1, bits do
      local k = t - 1
      x[{t, i, 1}] = (a[i] >> k) & 1
      x[{t, i, 2}] = (b[i] >> k) & 1
      d[{t, i, 1}] = (s >> k) & 1
    end
  end
  return x, d
end

local function decode(y, i, bits)   -- the integer whose bits are y[{., i, 1}] > 0.5
  local v = 0
  for t = bits, 1, -1 do v = 2 * v + (y[{t, i, 1}] > 0.5 and 1 or 0) end
  return v
end

local Adder = nn.Module:extend('BinaryAdder')

function Adder:__init(cfg)
  nn.Module.__init(self)
  self.rnn = nn.RNN(2, cfg.hidden, { nonlinearity = cfg.activation })
  self.out = nn.Linear(cfg.hidden, 1)
end

function Adder:forward(x)                          -- (T, B, 2) -> (T, B, 1)
  local z = self.rnn(x)
  return self.out(z):sigmoid()
end

-- Draw all weights as the chosen scheme says (biases start at zero).
local function initialise(model, cfg)
  usagi.no_grad(function()
    for _, p in ipairs(model:named_parameters()) do
      local name, w = p[1], p[2]
      if name:find('bias') then
        w:zero_()
      elseif cfg.init == 'normal' then
        nn.init.normal_(w, 0, cfg.init_std)
      elseif cfg.init == 'uniform' then
        nn.init.uniform_(w, -cfg.init_std, cfg.init_std)
      elseif cfg.init == 'xavier' then
        nn.init.xavier_uniform_(w)
      elseif cfg.init == 'he' then
        nn.init.kaiming_normal_(w)
      else
        error(("binary_addition: init must be normal, uniform, xavier or he, got '%s'"):format(cfg.init), 0)
      end
    end
  end)
end

-- Exact-match accuracy over every sum of two (bits-1)-bit numbers.
local function accuracy(model, bits)
  local half = 1 << (bits - 1)
  local a, b = {}, {}
  for i = 0, half - 1 do
    for j = 0, half - 1 do a[#a + 1], b[#b + 1] = i, j end
  end
  local x, d = encode(a, b, bits)
  local y = usagi.no_grad(function() return model(x) end)     -- (bits, N, 1)
  local wrong_bits = (y:gt(0.5):float() - d):abs():sum(1)      -- (N, 1)
  local right = wrong_bits:eq(0):sum():item()
  return right / #a, #a
end

return usagi.experiment {
  name = 'binary_addition',
  config = { bits = 8, hidden = 16, lr = 0.1, iterations = 10000, batch = 1,
             activation = 'sigmoid', init = 'normal', init_std = 1.0, samples = 3, log_every = 100 },
  smoke = { iterations = 300, log_every = 30 },
  checkpoint = { every = 5000, keep = 3, best = 'loss' },   -- best.h5: the lowest loss
  run = function(run, cfg)
    local model = Adder(cfg)
    initialise(model, cfg)
    local opt = optim.SGD(model:parameters(), { lr = cfg.lr })
    -- what a checkpoint keeps, and --resume restores here
    run:track { model = model, optim = opt }
    local acc = { loss_sum = 0, seen = 0 }     -- carried from step to step, and checkpointed
    local half = 1 << (cfg.bits - 1)
    local t0 = os.clock()
    for it in run:progress(cfg.iterations, { label = 'binary_addition', per_step = cfg.batch, unit = 'sums',
                                             carry = acc }) do
      local a, b = {}, {}
      local r = usagi.rand(cfg.batch, 2) * half          -- from the run's RNG
      for i = 1, cfg.batch do
        a[i], b[i] = math.floor(r[{i, 1}]), math.floor(r[{i, 2}])
      end
      local x, d = encode(a, b, cfg.bits)
      local y = model(x)
      local loss = usagi.mse_loss(y, d, { reduction = 'sum' }) * (0.5 / cfg.batch)
      opt:zero_grad()
      loss:backward()
      opt:step()
      acc.loss_sum, acc.seen = acc.loss_sum + loss:item(), acc.seen + 1
      if it % cfg.log_every == 0 or it == cfg.iterations then
        run:log { loss = acc.loss_sum / acc.seen }
        local lines = {}
        for i = 1, math.min(cfg.samples, cfg.batch) do
          lines[#lines + 1] = ('%d + %d = %d (%d)'):format(a[i], b[i], decode(y, i, cfg.bits), a[i] + b[i])
        end
        if it % (10 * cfg.log_every) == 0 or it == cfg.iterations then
          run:print(('iter %6d  loss %.5f  %s'):format(it, acc.loss_sum / acc.seen, table.concat(lines, '  ')))
        end
        acc.loss_sum, acc.seen = 0, 0
      end
    end
    local acc, n = accuracy(model, cfg.bits)
    run:log { accuracy = acc }
    run:print(('exact-match accuracy over all %d sums of two %d-bit numbers: %.2f%%  (%.1f s of CPU)')
      :format(n, cfg.bits - 1, 100 * acc, os.clock() - t0))
    return acc
  end,
}
