--[[
rnn.lua -- forward + backward time of the fused RNN (modules/rnn: one
autograd node per layer, BPTT by hand) against the same RNN composed of
autograd ops step by step.

    build/usagi scripts/bench/rnn.lua [--threads N] [--reps R] [--iters K]
                                      [--T 64] [--B 32] [--I 128] [--H 256]
                                      [--layers 1] [--act tanh]

The model is u^t = W_in x^t + W z^{t-1} + b_ih + b_hh, z^t = f(u^t), in f32,
x (T, B, I) requiring grad, every weight requiring grad. One iteration is a
forward over the whole sequence and out:backward(g) with a fixed g (T, B, H).

  fused     rnn.rnn(x, nil, weights): per layer one gemm for the input
            projection of all T steps, one gemm and one pass of f per step;
            the backward is one sweep of one gemm per step, then one gemm per
            weight over all steps.
  composed  per step usagi.linear(x^t, W_in, b_ih) + usagi.linear(z, W, b_hh),
            then f, then usagi.stack of the T states: about 4 recorded ops
            per step, each with its own backward.

The two run alternately (fused, composed, fused, ...), R repetitions of K
iterations each after one warm-up repetition; the figures are medians of the
repetitions (this machine's timings swing by 15% from one run to the next:
see shared BENCHMARKING.md). GFLOP/s counts the matrix products only:
3 * 2 * B * T * H * (I + H) per layer (forward, input-gradient and
weight-gradient products), so both sides are credited the same work.

Not for gating CI on a time.
]]
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local rnn = require 'usagi.rnn'
local ok, system = pcall(require, 'system')
if not ok then
  io.stderr:write('rnn.lua: needs lua-system for a wall clock (require "system" failed)\n')
  os.exit(2)
end
local now = system.monotime

-- ==== Options ==============================================================

local opts = { reps = 7, iters = 3, T = 64, B = 32, I = 128, H = 256, layers = 1, act = 'tanh' }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    local name = type(k) == 'string' and k:match('^%-%-(%w+)$')
    if not name or (opts[name] == nil and name ~= 'threads') or v == nil then
      io.stderr:write('rnn.lua: bad option ', tostring(k), ' (see the header of this file)\n')
      os.exit(2)
    end
    if name == 'act' then opts.act = v
    else
      opts[name] = math.tointeger(tonumber(v))
      if not opts[name] or opts[name] < 1 then
        io.stderr:write('rnn.lua: ', k, ' needs a positive integer\n')
        os.exit(2)
      end
    end
    i = i + 2
  end
end
if opts.threads then usagi.set_num_threads(opts.threads) end

-- ==== The two contenders ===================================================

usagi.manual_seed(1)
local T, B, I, H = opts.T, opts.B, opts.I, opts.H
local model = nn.RNN(I, H, { num_layers = opts.layers, nonlinearity = opts.act })
local ws = model:layer_weights()
local x = usagi.randn(T, B, I):requires_grad(true)
local g = usagi.randn(T, B, H)

local function fused()
  local out = rnn.rnn(x, nil, ws, { nonlinearity = opts.act })
  out:backward(g)
end

-- z^t = f(x^t W_in^T + b_ih + z^{t-1} W^T + b_hh), op by op
local function composed()
  local layer_in = x
  for l = 1, #ws do
    local w_ih, w_hh, b_ih, b_hh = ws[l][1], ws[l][2], ws[l][3], ws[l][4]
    local z, zs = nil, {}
    for t = 1, T do
      local u = usagi.linear(layer_in[t], w_ih, b_ih)
      if z then u = u + usagi.linear(z, w_hh, b_hh) else u = u + b_hh end
      z = u[opts.act](u)
      zs[t] = z
    end
    layer_in = usagi.stack(zs, 1)
  end
  layer_in:backward(g)
end

local function zero_grads()
  x.grad = nil
  model:zero_grad()
end

-- ==== Timing ===============================================================

local function median(xs)
  local s = {}
  for i = 1, #xs do s[i] = xs[i] end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

-- seconds per iteration of f over one repetition
local function rep(f)
  zero_grads()
  local t0 = now()
  for _ = 1, opts.iters do f() end
  return (now() - t0) / opts.iters
end

-- the two agree before anything is timed
do
  zero_grads(); fused()
  local gw1 = ws[1][2].grad:clone()
  zero_grads(); composed()
  local diff = (ws[1][2].grad - gw1):abs():max():item() / (gw1:abs():max():item() + 1e-30)
  if diff > 1e-3 then
    io.stderr:write(('rnn.lua: fused and composed gradients differ (%.3g relative)\n'):format(diff))
    os.exit(1)
  end
end

rep(fused); rep(composed)                          -- warm-up
local tf, tc = {}, {}
for r = 1, opts.reps do
  tf[r] = rep(fused)
  tc[r] = rep(composed)
end

-- ==== Report ===============================================================

local info = usagi.blas_info()
local flop = 3 * 2 * B * T * H * (I + H) * opts.layers
local mf, mc = median(tf), median(tc)
print(string.format('# usagi rnn fwd+bwd: T=%d B=%d I=%d H=%d layers=%d %s f32 | %s | core %s | '
  .. 'threads %d | OPENBLAS_CORETYPE=%s | median of %d reps x %d iters',
  T, B, I, H, opts.layers, opts.act, info.config, info.core, info.threads,
  os.getenv('OPENBLAS_CORETYPE') or '(unset)', opts.reps, opts.iters))
print(string.format('fused     %8.2f ms  %6.1f GFLOP/s', mf * 1e3, flop / mf * 1e-9))
print(string.format('composed  %8.2f ms  %6.1f GFLOP/s', mc * 1e3, flop / mc * 1e-9))
print(string.format('ratio     composed / fused = %.2f', mc / mf))
