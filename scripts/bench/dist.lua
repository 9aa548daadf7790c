--[[
dist.lua -- data-parallel training throughput of the PTB LSTM language
model, alone or under mpirun: the model of experiments/ptb_lm.lua (and of
recurrent.lua's ptb rows: Embedding(10000, H) -> LSTM(H, H, 2 layers) ->
Linear(H, 10000)), B = 20 columns in all, each of R ranks taking B/R of
them (random ids, drawn alike on every rank), the gradients averaged over
the ranks by usagi.dist's bucketed allreduce at the end of each backward,
then clip and SGD, as the experiment does. Prints one line (rank 0):

  ranks R threads N preset P params n grad_mb G step_ms S tokens_s K allreduce_ms A buckets b early e

step_ms and allreduce_ms are medians over the timed steps; tokens_s is all
ranks' tokens (T x B) per median step; allreduce_ms is the part of the step
spent waiting for the averaging after the backward (0 on one rank); of
the b buckets, e started inside the backward in the last step.

    <build>/usagi scripts/bench/dist.lua [--preset small|medium] [--threads N]
        [--steps S] [--warmup W] [--bucket-mb X]
    mpirun -np 2 <build>/usagi scripts/bench/dist.lua --threads 1 ...

scripts/bench/dist runs it both ways alternately and prints the ratios.
]]
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local dist = require 'usagi.dist'
require 'usagi.lstm'

local opts = { preset = 'small', threads = 2, steps = 20, warmup = 3, bucket_mb = 25 }
local i = 1
while i <= #arg do
  local k, v = arg[i]:match('^%-%-([%w_-]+)$'), arg[i + 1]
  k = k and k:gsub('-', '_')
  if not k or opts[k] == nil or v == nil then
    io.stderr:write('dist.lua: unknown or incomplete option ', arg[i], '\n'); os.exit(2)
  end
  opts[k] = k == 'preset' and v or tonumber(v)
  i = i + 2
end
local presets = {
  small = { V = 10000, H = 200, T = 20, B = 20, init = 0.1 },
  medium = { V = 10000, H = 650, T = 35, B = 20, init = 0.05 },   -- dropout left out: compute alike
}
local c = presets[opts.preset]
if not c then io.stderr:write('dist.lua: --preset small or medium\n'); os.exit(2) end
usagi.set_num_threads(opts.threads)
local R, r = dist.size(), dist.rank()

usagi.manual_seed(1)
local embed = nn.Embedding(c.V, c.H)
local lstm = nn.LSTM(c.H, c.H, { num_layers = 2, carry = true })
local dec = nn.Linear(c.H, c.V)
local params, n = {}, 0
for _, m in ipairs { embed, lstm, dec } do
  for _, p in ipairs(m:parameters()) do params[#params + 1] = p; n = n + p:numel() end
end
usagi.no_grad(function() for _, p in ipairs(params) do nn.init.uniform_(p, -c.init, c.init) end end)
local opt = optim.SGD(params, { lr = 1 })
local dp = R > 1 and dist.data_parallel(params, { bucket_mb = opts.bucket_mb }) or nil

-- this rank's columns of every (T, B) window of ids, the same draws on every rank
local first = r * (c.B // R) + math.min(r, c.B % R) + 1
local cols = c.B // R + (r < c.B % R and 1 or 0)
local function ids() return ((usagi.rand(c.T + 1, c.B) * c.V):floor():clamp(0, c.V - 1):int() + 1):narrow(2, first, cols) end

local now = usagi.sys.monotonic
local steps, syncs = {}, {}
for it = 1, opts.warmup + opts.steps do
  local w = ids()
  local x, y = w:narrow(1, 1, c.T), w:narrow(1, 2, c.T):reshape(-1)
  if R > 1 then dist.barrier() end                  -- every rank starts the step together
  local t0, s0 = now(), dp and dp.seconds or 0
  local h = lstm(embed(x))
  local loss = usagi.cross_entropy(dec(h:reshape(-1, c.H)), y) * c.T
  opt:zero_grad()
  loss:backward()                                   -- ends with the averaging on R > 1
  optim.clip_grad_norm(params, 5)
  opt:step()
  if it > opts.warmup then
    steps[#steps + 1] = now() - t0
    syncs[#syncs + 1] = (dp and dp.seconds or 0) - s0
  end
end
local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local step = median(steps)
if r == 0 then
  print(('ranks %d threads %d preset %s params %d grad_mb %.2f step_ms %.2f tokens_s %.0f allreduce_ms %.2f buckets %d early %d')
    :format(R, usagi.get_num_threads(), opts.preset, n, n * 4 / 2 ^ 20, step * 1e3, c.T * c.B / step,
      median(syncs) * 1e3, dp and dp.buckets or 0, dp and dp.early or 0))
end
