--[[
vae.lua -- the VAE of experiments/vae_mnist.lua trained as the benchmark of
issue 7 has it, the usagi half of a side-by-side run against PyTorch (the
other half is peers/vae_torch.py, the driver is `./recurrent --suite vae`).

    <build>/usagi scripts/bench/vae.lua [--threads N] [--reps EPOCHS] [--warmup W] [--only vae_fashion]

Row vae_fashion: nn.VAE 784-400-20 (ReLU, Bernoulli decoder), Adam 0.001,
batch 100, on Fashion-MNIST's 60,000 training images, each batch binarized
afresh (x ~ Bernoulli(pixel)), for EPOCHS epochs (--reps, default 5);
  images_per_s  60,000 / the median time of an epoch after the first
  test_elbo     the ELBO of the 10,000 test images (binarized once, z sampled),
                nats per image, after the last epoch
  base_mb, peak_mb  as recurrent.lua
--warmup is accepted and ignored (the first epoch is the warm-up).
]]
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
require 'usagi.vae'

local opts = { reps = 5 }
for i = 1, #arg, 2 do
  local k, v = arg[i], arg[i + 1]
  if k == '--threads' then usagi.set_num_threads(tonumber(v))
  elseif k == '--reps' then opts.reps = math.tointeger(tonumber(v)) or 5
  elseif k == '--warmup' or k == '--only' then -- one row; no warm-up beyond the first epoch
  else io.stderr:write('vae.lua: bad option ', tostring(k), '\n'); os.exit(2) end
end
local rows = dofile((arg[0]:match('^(.*)/') or '.') .. '/rows.lua')
local status_mb, emit = rows.status_mb, rows.emit

local info = usagi.blas_info()
print(('# usagi vae | %s | core %s | threads %d | %d epochs'):format(info.config, info.core, info.threads, opts.reps))
local name = 'vae_fashion'
local f = data.fashion_mnist()
emit(name, 'base_mb', '%.1f', status_mb('VmRSS'))
usagi.manual_seed(1)
local model = nn.VAE(784, { hidden = 400, latent = 20 })
local opt = optim.Adam(model:parameters(), { lr = 0.001 })
local N, B, times = f.train.x:size(1), 100, {}
for epoch = 1, opts.reps do
  local x <close> = f.train.x:index_select(1, usagi.randperm(N):int())   -- freed at the end of the epoch
  local t0 = usagi.sys.monotonic()
  for lo = 1, N, B do
    local loss = model:loss(usagi.bernoulli(x:narrow(1, lo, math.min(B, N - lo + 1))))
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  if epoch > 1 or opts.reps == 1 then times[#times + 1] = usagi.sys.monotonic() - t0 end
end
table.sort(times)
emit(name, 'images_per_s', '%.1f', N / times[(#times + 1) // 2])
local total = 0
usagi.no_grad(function()
  local xt = usagi.bernoulli(f.test.x)
  for lo = 1, xt:size(1), 500 do
    local _, inf = model:loss(xt:narrow(1, lo, 500))
    total = total + inf.elbo * 500
  end
end)
emit(name, 'test_elbo', '%.3f', total / f.test.x:size(1))
emit(name, 'peak_mb', '%.1f', status_mb('VmHWM'))
