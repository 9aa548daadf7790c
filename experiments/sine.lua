-- sine.lua -- next-value prediction of a noisy sine wave with an RNN, an
-- LSTM and a GRU side by side: the same data, size, optimiser and steps.
--
--   s_t = sin(2π t / period) + ε_t,   ε_t ~ N(0, noise²)
--   input  s_t, ..., s_{t+T-1}   →   target  s_{t+1}, ..., s_{t+T}   (every step predicts the next)
--   model  h = net(x) (T, B, H),  ŷ = W h + b,  loss = mean (ŷ - y)²,  Adam
--
-- The best any model can do is the noise: the test MSE against the noisy
-- targets cannot go below noise² (0.0025 by default), and against the clean
-- sine it can go toward 0. Each net's test MSE (against both) is logged;
-- sine.png in the run directory shows the three one-step predictions over
-- the start of the test stretch against the clean and the noisy wave.
--
--   usagi run experiments/sine.lua
--   usagi run experiments/sine.lua --set hidden=64 --set iterations=2000
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local plot = require 'usagi.plot'
require 'usagi.rnn'
require 'usagi.lstm'
require 'usagi.gru'

local Predictor = nn.Module:extend 'SinePredictor'

function Predictor:__init(kind, H)
  nn.Module.__init(self)
  self.net = (kind == 'rnn' and nn.RNN or kind == 'lstm' and nn.LSTM or nn.GRU)(1, H)
  self.out = nn.Linear(H, 1)
end

function Predictor:forward(x)          -- (T, B, 1) -> (T, B, 1)
  local h = self.net(x)
  return self.out(h)
end

-- The wave: clean and noisy, n points, as Lua lists.
local function wave(n, cfg)
  local clean, noisy = {}, {}
  local eps = usagi.randn(n) * cfg.noise
  for t = 1, n do
    clean[t] = math.sin(2 * math.pi * t / cfg.period)
    noisy[t] = clean[t] + eps[t]
  end
  return clean, noisy
end

-- B random windows of T + 1 points from s[lo..hi]: x (T, B, 1), y (T, B, 1).
local function batch(s, lo, hi, T, B)
  local x, y = usagi.zeros(T, B, 1), usagi.zeros(T, B, 1)
  local starts = usagi.rand(B) * (hi - lo - T)
  for b = 1, B do
    local s0 = lo + math.floor(starts[b])
    for t = 1, T do
      x[{ t, b, 1 }] = s[s0 + t - 1]
      y[{ t, b, 1 }] = s[s0 + t]
    end
  end
  return x, y
end

-- One-step predictions over s[lo..hi] fed as one long sequence (B = 1).
local function predict(model, s, lo, hi)
  local n = hi - lo
  local x = usagi.zeros(n, 1, 1)
  for t = 1, n do x[{ t, 1, 1 }] = s[lo + t - 1] end
  return usagi.no_grad(function() return model(x) end):view(n)
end

local function mse(pred, ref, lo)
  local sum = 0
  for t = 1, pred:numel() do sum = sum + (pred[t] - ref[lo + t]) ^ 2 end
  return sum / pred:numel()
end

return usagi.experiment {
  name = 'sine',
  config = { period = 25, noise = 0.05, points = 3000, test = 500, steps = 50, batch = 32,
             hidden = 32, lr = 0.01, iterations = 600, log_every = 50, show = 75 },
  smoke = { points = 600, test = 150, iterations = 60, hidden = 8, log_every = 20, show = 50 },
  run = function(run, cfg)
    local clean, noisy = wave(cfg.points, cfg)
    local split = cfg.points - cfg.test                  -- train on 1..split, test after it
    local models, all = {}, nn.Sequential {}
    for _, kind in ipairs { 'rnn', 'lstm', 'gru' } do
      models[kind] = Predictor(kind, cfg.hidden)
      all:add(models[kind])
    end
    -- one Adam over the three nets' parameters: Adam is per parameter, so
    -- this is three optimisers, and the summed loss gives each net its own
    -- gradient (they share no parameter)
    local opt = optim.Adam(all:parameters(), { lr = cfg.lr })
    run:track { model = all, optim = opt }
    -- each step draws its own batch: the loop carries nothing
    for it in run:progress(cfg.iterations, { label = 'sine', per_step = 3 * cfg.batch, unit = 'windows',
                                             carry = {} }) do
      local x, y = batch(noisy, 1, split, cfg.steps, cfg.batch)   -- the same batch for all three
      local losses, total = {}, nil
      for kind, m in pairs(models) do
        local loss = usagi.mse_loss(m(x), y)
        total = total and total + loss or loss
        losses[kind] = loss:item()
      end
      opt:zero_grad()
      total:backward()
      opt:step()
      if it % cfg.log_every == 0 or it == cfg.iterations then run:log(losses) end
    end
    local series = {
      { label = 'clean sine', x = {}, y = {} },
      { label = 'noisy input', x = {}, y = {} },
    }
    for t = 1, cfg.show do
      series[1].x[t], series[1].y[t] = t, clean[split + t]
      series[2].x[t], series[2].y[t] = t, noisy[split + t]
    end
    for _, kind in ipairs { 'rnn', 'lstm', 'gru' } do
      local pred = predict(models[kind], noisy, split, cfg.points)
      local m_noisy, m_clean = mse(pred, noisy, split), mse(pred, clean, split)
      run:log { ['test_mse_' .. kind] = m_noisy, ['test_mse_clean_' .. kind] = m_clean }
      run:print(('%-4s test MSE %.5f against the noisy wave (noise² = %.5f), %.5f against the clean one')
        :format(kind:upper(), m_noisy, cfg.noise ^ 2, m_clean))
      local s = { label = kind:upper() .. ' prediction', x = {}, y = {} }
      for t = 1, cfg.show do s.x[t], s.y[t] = t, pred[t] end
      series[#series + 1] = s
    end
    if run.dir then
      local path = run.dir .. '/sine.png'
      plot.lines { series = series, xlabel = 'test step', ylabel = 'value', path = path,
                   title = ('one-step predictions of a noisy sine (period %d, noise %.2g)'):format(cfg.period, cfg.noise) }
      run:print('plot: ' .. path)
    end
  end,
}
