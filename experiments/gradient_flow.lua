-- gradient_flow.lua -- the vanishing gradient of the course, seen: how much
-- of a loss at the last step of a long sequence reaches each earlier hidden
-- state, ‖∂L/∂h^t‖ for t = 1..T, in an Elman RNN, an LSTM and a GRU of the
-- same size on the same inputs, with PyTorch's default initialisation.
--
--   L = Σ_b w · h_b^T          (a fixed random read-out of the last state)
--   ∂L/∂h^t = (∂h^{t+1}/∂h^t)^T ··· (∂h^T/∂h^{T-1})^T w
--
-- In the RNN each factor is W^T diag f'(u): unless W is large its norm is
-- below 1 and the product shrinks geometrically. The LSTM's cell path
-- multiplies by the forget gate instead (c^t = f ⊙ c^{t-1} + ...), which
-- stays near 1 when f does, and the GRU's h^t = z ⊙ h^{t-1} + ... likewise.
-- Untrained with PyTorch's init, f and z sit near σ(0) = 1/2 and all three
-- vanish; an LSTM whose forget gate starts open (bias 3: f ≈ 0.95) keeps the
-- gradient alive over the whole sequence -- what training learns to do.
--
-- The states are made visible by stepping each net one step at a time and
-- adding a zero leaf e^t to every h^t: ∂L/∂e^t = ∂L/∂h^t.
--
--   usagi run experiments/gradient_flow.lua            # writes gradient_flow.png in the run directory
--   usagi run experiments/gradient_flow.lua --set steps=200 --set hidden=128
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local plot = require 'usagi.plot'
require 'usagi.rnn'
require 'usagi.lstm'
require 'usagi.gru'

local function lstm_step(m, x, s)
  local out, hn, cn = m(x:unsqueeze(1), s and s[1]:unsqueeze(1), s and s[2]:unsqueeze(1))
  return out[1], { hn[1], cn[1] }
end

-- One step of each family: (x^t (B, I), state) -> h^t (B, H), state.
local NETS = {
  { name = 'RNN (tanh)', make = function(I, H) return nn.RNN(I, H) end,
    step = function(m, x, s)
      local out, hn = m(x:unsqueeze(1), s and s:unsqueeze(1))
      return out[1], hn[1]
    end },
  { name = 'LSTM', make = function(I, H) return nn.LSTM(I, H) end, step = lstm_step },
  { name = 'LSTM (forget bias 3)', key = 'lstm_fb3', step = lstm_step,
    make = function(I, H, cfg) return nn.LSTM(I, H, { forget_bias = cfg.forget_bias }) end },
  { name = 'GRU', make = function(I, H) return nn.GRU(I, H) end,
    step = function(m, x, s)
      local out, hn = m(x:unsqueeze(1), s and s:unsqueeze(1))
      return out[1], hn[1]
    end },
}

-- ‖∂L/∂h^t‖ (mean over the batch) for t = 1..T, as a Lua list.
local function gradient_norms(net, m, x, w)
  local T, B, H = x:size(1), x:size(2), w:size(1)
  local s, h, probes = nil, nil, {}
  for t = 1, T do
    h, s = net.step(m, x[t], s)
    probes[t] = usagi.zeros(B, H):requires_grad(true)
    h = h + probes[t]                              -- e^t: a door for ∂L/∂h^t
    if type(s) == 'table' then s[1] = h else s = h end
  end
  local loss = (h * w):sum()
  loss:backward()
  local norms = {}
  for t = 1, T do norms[t] = probes[t].grad:norm(2, 2):mean():item() end
  return norms
end

return usagi.experiment {
  name = 'gradient_flow',
  config = { steps = 100, hidden = 64, inputs = 8, batch = 16, forget_bias = 3 },
  smoke = { steps = 20, hidden = 16 },
  run = function(run, cfg)
    local x = usagi.randn(cfg.steps, cfg.batch, cfg.inputs)
    local w = usagi.randn(cfg.hidden)
    local series = {}
    for _, net in ipairs(NETS) do
      local norms = gradient_norms(net, net.make(cfg.inputs, cfg.hidden, cfg), x, w)
      local ts = {}
      for t = 1, cfg.steps do ts[t] = t end
      series[#series + 1] = { label = net.name, x = ts, y = norms }
      local key = net.key or net.name:match('^%a+'):lower()
      run:log { [key .. '_first'] = norms[1], [key .. '_last'] = norms[cfg.steps] }
      run:print(('%-20s ‖∂L/∂h^t‖ at t = T: %.3g   t = T/2: %.3g   t = 1: %.3g   (first / last = %.2g)')
        :format(net.name, norms[cfg.steps], norms[cfg.steps // 2 + 1], norms[1], norms[1] / norms[cfg.steps]))
    end
    if run.dir then
      local path = run.dir .. '/gradient_flow.png'
      plot.lines { series = series, logy = true, xlabel = 'step t', ylabel = '|dL/dh_t| (mean over the batch)',
                   title = ('gradient reaching h_t from a loss at t = %d (untrained nets)'):format(cfg.steps), path = path }
      run:print('plot: ' .. path)
    end
  end,
}
