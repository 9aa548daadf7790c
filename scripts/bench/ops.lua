--[[
ops.lua -- what a tensor op costs when called from Lua, and how fast
usagi.mm runs sgemm.

    build/usagi scripts/bench/ops.lua [--threads N] [--reps R] [--calls N]
                                      [--only small|gemm] [--shapes MxKxN,...]
                                      [--close]

Two parts:

  small  the per-call cost of ops on 10-element f32 tensors: a + b (a new
         tensor each call, so allocation and garbage collection are in the
         figure), a:add_(b) in place, t:sum(), and t:dim() -- a method that
         does no work, the floor set by the Lua -> C call and the method
         lookup. An empty loop shows what the loop itself costs. Then ops
         whose arguments run to the end of the call: zeros and rand (a
         shape), view and reshape, cat (a list), and fill_.
  gemm   GFLOP/s of usagi.mm(a, b) with a (M, K) and b (K, N), giving
         (M, N); one product counts 2 M K N floating-point operations. The
         shapes are written M x K x N. scripts/bench/sgemm.c times
         cblas_sgemm on the same shapes with the same repetition scheme and
         prints the same lines, so scripts/bench/ops can compare them.
         With --close each result is a to-be-closed variable, released at
         once instead of when the garbage collector comes by: the gap
         between the two is what deferred release of results costs.

Each figure is the median of R repetitions, each timing many calls with a
wall clock (os.clock counts CPU time summed over OpenBLAS's threads, so it
cannot be used). The clock is lua-system's monotime.

The script never calls collectgarbage(): the host runs Lua's generational
collector, and a full collection while finalizable tensors are pending
makes them old, so that later small ops run slower (see README.md). The
figures are those of a loop left to the collector, as user code is.

Not for: comparing with PyTorch (other benchmarks' job), or gating CI on a
time.
]]
local usagi = require 'usagi'
local ok, system = pcall(require, 'system')
if not ok then
  io.stderr:write('ops.lua: needs lua-system for a wall clock (require "system" failed)\n')
  os.exit(2)
end
local now = system.monotime

-- ==== Options ==============================================================

local opts = { reps = 7, calls = 200000, only = nil, close = false,
               shapes = '20x200x800,400x200x10000,1024x1024x1024' }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == '--close' then opts.close = true; i = i + 1; goto next end
    if k == '--threads' then opts.threads = tonumber(v)
    elseif k == '--reps' then opts.reps = tonumber(v)
    elseif k == '--calls' then opts.calls = tonumber(v)
    elseif k == '--only' then opts.only = v
    elseif k == '--shapes' then opts.shapes = v
    else
      io.stderr:write('ops.lua: unknown option ', tostring(k), '\n')
      os.exit(2)
    end
    if v == nil or (k ~= '--only' and k ~= '--shapes' and not tonumber(v)) then
      io.stderr:write('ops.lua: ', k, ' needs a ', k == '--only' and 'value' or 'number', '\n')
      os.exit(2)
    end
    i = i + 2
    ::next::
  end
end
if opts.reps < 1 or opts.calls < 1 then
  io.stderr:write('ops.lua: --reps and --calls must be at least 1\n')
  os.exit(2)
end
if opts.threads then usagi.set_num_threads(opts.threads) end

-- ==== Timing ===============================================================

local function median(xs)
  local s = {}
  for i = 1, #xs do s[i] = xs[i] end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function minmax(xs)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(xs) do lo, hi = math.min(lo, x), math.max(hi, x) end
  return lo, hi
end

-- Seconds per call of f(n) (which makes n calls), median of R repetitions
-- after one warm-up repetition; also the fastest and slowest repetitions.
local function per_call(f, n, reps)
  f(n)
  local t = {}
  for r = 1, reps do
    local t0 = now()
    f(n)
    t[r] = (now() - t0) / n
  end
  return median(t), minmax(t)
end

-- ==== Small ops ============================================================
-- Each runner makes n calls; locals keep global lookups out of the loop.

local function small_ops()
  local a, b = usagi.rand(10), usagi.rand(10)
  local acc = usagi.zeros(10)
  local cases = {
    { 'empty-loop', function(n) for _ = 1, n do end end },
    { 't:dim()', function(n) local t = a; for _ = 1, n do t:dim() end end },
    { 'a+b', function(n) local x, y = a, b; for _ = 1, n do local _ = x + y end end },
    { 'usagi.add(a,b)', function(n)
        local add, x, y = usagi.add, a, b
        for _ = 1, n do local _ = add(x, y) end
      end },
    -- adds 0 so the values stay put however many times it runs
    { 'a:add_(b)', function(n) local x, y = acc, usagi.zeros(10); for _ = 1, n do x:add_(y) end end },
    { 't:sum()', function(n) local t = a; for _ = 1, n do local _ = t:sum() end end },
    -- ops whose arguments run to the end of the call (a shape, a list)
    { 'usagi.zeros(10)', function(n) local zeros = usagi.zeros; for _ = 1, n do local _ = zeros(10) end end },
    { 'usagi.rand(10)', function(n) local rand = usagi.rand; for _ = 1, n do local _ = rand(10) end end },
    { 't:view(2,5)', function(n) local t = a; for _ = 1, n do local _ = t:view(2, 5) end end },
    { 't:reshape(5,-1)', function(n) local t = a; for _ = 1, n do local _ = t:reshape(5, -1) end end },
    { 'usagi.cat{a,b}', function(n)
        local cat, list = usagi.cat, { a, b }
        for _ = 1, n do local _ = cat(list) end
      end },
    { 'a:fill_(0)', function(n) local x = usagi.zeros(10); for _ = 1, n do x:fill_(0) end end },
  }
  for _, c in ipairs(cases) do
    local med, lo, hi = per_call(c[2], opts.calls, opts.reps)
    print(string.format('op    %-16s %9.3f us/call  min %.3f  max %.3f  reps %dx%d',
                        c[1], med * 1e6, lo * 1e6, hi * 1e6, opts.reps, opts.calls))
  end
end

-- ==== GEMM =================================================================

-- Calls per repetition: about 2e10 flop (0.1-0.2 s here), between 1 and
-- 20000 (tiny shapes). sgemm.c uses the same rule: both sides do the same work.
local function gemm_calls(M, K, N)
  return math.min(20000, math.max(1, math.ceil(2e10 / (2.0 * M * K * N))))
end

local function gemm(M, K, N)
  local a = usagi.rand(M, K, {lo = -1, hi = 1})
  local b = usagi.rand(K, N, {lo = -1, hi = 1})
  local mm = usagi.mm
  local calls = gemm_calls(M, K, N)
  local run = function(n) for _ = 1, n do local _ = mm(a, b) end end
  if opts.close then
    run = function(n) for _ = 1, n do local _ <close> = mm(a, b) end end
  end
  local med, lo, hi = per_call(run, calls, opts.reps)
  local flop = 2.0 * M * K * N
  -- fastest time = highest rate
  print(string.format('gemm  %-16s %9.2f GFLOP/s  min %.2f  max %.2f  reps %dx%d',
                      M .. 'x' .. K .. 'x' .. N, flop / med * 1e-9,
                      flop / hi * 1e-9, flop / lo * 1e-9, opts.reps, calls))
end

-- ==== Main =================================================================

local info = usagi.blas_info()
print(string.format('# usagi ops: %s | core %s | threads %d | OPENBLAS_CORETYPE=%s%s',
                    info.config, info.core, info.threads, os.getenv('OPENBLAS_CORETYPE') or '(unset)',
                    opts.close and ' | results <close>d' or ''))
if opts.only ~= 'gemm' then small_ops() end
if opts.only ~= 'small' then
  for M, K, N in opts.shapes:gmatch('(%d+)x(%d+)x(%d+)') do
    gemm(tonumber(M), tonumber(K), tonumber(N))
  end
end
