--[[
vae_phases.lua -- where one training step of the VAE of scripts/bench/vae.lua
goes (nn.VAE 784-400-20, Adam, batch 100 of Fashion-MNIST binarized afresh):
the binarization, the forward and loss, zero_grad, the backward and Adam's
step, each timed with the step around it, summed over 200 steps, for 3
passes (the last ones are the warm ones). Not a comparison with a peer: see
scripts/bench/vae for that.

    <build>/usagi scripts/bench/vae_phases.lua [threads]      (default 2)
]]
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
require 'usagi.vae'
usagi.set_num_threads(tonumber(arg[1] or 2))
local f = data.fashion_mnist()
usagi.manual_seed(1)
local model = nn.VAE(784, { hidden = 400, latent = 20 })
local opt = optim.Adam(model:parameters(), { lr = 0.001 })
local N, B = 20000, 100
local x = f.train.x:narrow(1, 1, N):contiguous()
local clk = usagi.sys.monotonic
local names = { 'binarize', 'forward', 'zero_grad', 'backward', 'step' }
print(('# vae_phases | threads %d | ms per step, %d steps a pass'):format(usagi.get_num_threads(), N // B))
for pass = 1, 3 do
  local acc = { 0, 0, 0, 0, 0 }
  local t00 = clk()
  for lo = 1, N, B do
    local t = { clk() }
    local xb = usagi.bernoulli(x:narrow(1, lo, B)); t[2] = clk()
    local loss = model:loss(xb); t[3] = clk()
    opt:zero_grad(); t[4] = clk()
    loss:backward(); t[5] = clk()
    opt:step(); t[6] = clk()
    for k = 1, 5 do acc[k] = acc[k] + t[k + 1] - t[k] end
  end
  local total, parts = clk() - t00, {}
  for k = 1, 5 do parts[k] = ('%s %.3f'):format(names[k], acc[k] / (N / B) * 1e3) end
  print(('pass %d  %s  total %.3f'):format(pass, table.concat(parts, '  '), total / (N / B) * 1e3))
end
