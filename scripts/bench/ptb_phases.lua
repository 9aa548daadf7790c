--[[
ptb_phases.lua -- where one training step of the PTB small LSTM language
model goes: each phase of the step timed alone (zero_grad, embedding, the
two LSTM layers, the decoder, the loss, the whole backward, clipping, SGD),
the medians over 20 steps after 5 warm-up steps. The same model as the
ptb_small row of recurrent.lua (Embedding(10000, 200), LSTM(200, 200, 2
layers), Linear(200, 10000), cross-entropy over T = 20 x B = 20 random ids).

    <build>/usagi scripts/bench/ptb_phases.lua [threads]      (default 2)

The phases are timed with the rest of the step around them, so their sum is
the step; compare with perf (perf record <build>/usagi ...) to split the
backward further. Not a comparison with a peer: see recurrent for that.
]]
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
require 'usagi.lstm'
usagi.set_num_threads(tonumber(arg[1] or 2))
local V, H, T, B = 10000, 200, 20, 20
usagi.manual_seed(1)
local embed = nn.Embedding(V, H)
local lstm = nn.LSTM(H, H, { num_layers = 2, carry = true })
local dec = nn.Linear(H, V)
local params = {}
for _, m in ipairs { embed, lstm, dec } do
  for _, p in ipairs(m:parameters()) do params[#params + 1] = p end
end
usagi.no_grad(function() for _, p in ipairs(params) do nn.init.uniform_(p, -0.1, 0.1) end end)
local opt = optim.SGD(params, { lr = 1 })
local function ids() return (usagi.rand(T, B) * V):floor():clamp(0, V - 1):int() + 1 end
local x, y = ids(), ids():reshape(-1)
local now = usagi.sys.monotonic
local names = { 'zero_grad', 'embedding', 'lstm', 'decoder', 'loss', 'backward', 'clip', 'sgd' }
local times = {}
for i = 1, #names do times[i] = {} end
for it = 1, 25 do
  local t = { now() }
  opt:zero_grad();                                 t[2] = now()
  local e = embed(x);                              t[3] = now()
  local h = lstm(e);                               t[4] = now()
  local s = dec(h:reshape(-1, H));                 t[5] = now()
  local loss = usagi.cross_entropy(s, y);          t[6] = now()
  loss:backward();                                 t[7] = now()
  optim.clip_grad_norm(params, 5);                 t[8] = now()
  opt:step();                                      t[9] = now()
  if it > 5 then
    for i = 1, #names do times[i][#times[i] + 1] = (t[i + 1] - t[i]) * 1e3 end
  end
end
local total = 0
print(('# ptb_phases | threads %d | median of 20 steps after 5'):format(usagi.get_num_threads()))
for i, name in ipairs(names) do
  table.sort(times[i])
  local m = times[i][#times[i] // 2 + 1]
  total = total + m
  print(('%-10s %8.2f ms'):format(name, m))
end
print(('%-10s %8.2f ms'):format('step', total))
