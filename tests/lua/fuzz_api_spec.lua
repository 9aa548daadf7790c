local usagi = require 'usagi'

-- fuzz_api_spec.lua -- a seeded random walk over the whole Lua API: every
-- function of usagi, every Tensor method and metamethod, usagi.nn (its
-- functions, the constructors of its classes and the methods of an
-- instance), usagi.optim (likewise), usagi.data's pure functions and the
-- public functions, classes and methods of every plugin. Each call gets
-- random arguments (nil, booleans, integers from 0 to math.mininteger, NaN
-- and inf, strings, empty, nested and cyclic tables, functions, tensors of
-- every dtype and of many shapes and layouts, userdata of other types) and
-- runs under pcall: it must return or raise a Lua error. A crash kills the
-- process, which fails the test; after every call a small tensor op must
-- still give the right value, or the test fails naming the call.
--
--   USAGI_FUZZ_SEED     the seed (default 19); the same seed makes the same
--                       calls in the same order
--   USAGI_FUZZ_SECONDS  the time budget (default 60)
--   USAGI_FUZZ_ITERS    stop after this many calls instead (no default)
--   USAGI_FUZZ_TRACE=1  name each call on stderr before making it: how a
--                       crash at a seed is replayed to find its call
--
-- This is not badinput_spec.lua's sweep, which tries fixed bad argument
-- lists on the usagi table and the Tensor methods and checks the messages;
-- the fuzzer reaches the Lua library and the plugins and mixes valid and
-- invalid arguments at random.

local seed = math.tointeger(tonumber(os.getenv('USAGI_FUZZ_SEED') or '')) or 19
local seconds = tonumber(os.getenv('USAGI_FUZZ_SECONDS') or '') or 60
local max_iters = math.tointeger(tonumber(os.getenv('USAGI_FUZZ_ITERS') or '')) or math.maxinteger
local trace = os.getenv('USAGI_FUZZ_TRACE')
local clock = usagi.sys.monotonic

-- ==== Caps =================================================================

-- One tensor allocation may not pass 64 MiB while the fuzzer runs: random
-- sizes such as zeros(2147483647, 3) would otherwise ask the system for
-- gigabytes (past the cap they fail with 'out of memory' like an absurd
-- size). Lua-side work is capped by a count hook: a call that runs longer
-- than CALL_SECONDS or grows Lua's heap past LUA_MIB is stopped with an
-- error (counted, and listed when USAGI_FUZZ_TRACE is set).
local ALLOC_CAP = 64 << 20
local CALL_SECONDS = 3
local LUA_MIB = 512

-- ==== Exclusions ===========================================================

-- Functions never called, with the reason. Everything else that the walk
-- below finds is fuzzed.
local excluded = {
  -- the process, files, other processes, the clock
  ['usagi.sys'] = 'spawns, kills and waits on processes, removes, links and locks files, sleeps, reads stdin',
  ['usagi.h5'] = 'opens and writes files (the store has its own fault tests)',
  ['usagi.save'] = 'writes files', ['usagi.load'] = 'reads files named by its argument',
  ['usagi.experiment'] = 'runs an experiment, which writes a run directory',
  ['usagi.image.save_png'] = 'writes files', ['Canvas.save_png'] = 'writes files',
  ['usagi.help'] = 'prints pages to stdout (pure, but floods the log)',
  ['usagi.plot'] = 'draws to the terminal or writes files',
  ['usagi.set_num_threads'] = 'would start up to 1024 threads; restored by badinput_spec instead',
  ['usagi.alloc_limit'] = 'the fuzzer\'s own cap (above)',
  -- data sets: loaders read files from the data directory
  ['usagi.data.path'] = 'looks up data files', ['usagi.data.mnist'] = 'reads a data set',
  ['usagi.data.fashion_mnist'] = 'reads a data set', ['usagi.data.ptb'] = 'reads a data set',
  ['usagi.data.dailydialog'] = 'reads a data set', ['usagi.data.idx'] = 'reads a file',
  ['usagi.data.image_set'] = 'reads a data set', ['usagi.data.digits'] = 'reads a data set',
  -- word2vec: files and long multi-threaded training
  ['usagi.word2vec._save'] = 'writes files', ['usagi.word2vec._save_h5'] = 'writes files',
  ['usagi.word2vec._load'] = 'reads files', ['usagi.word2vec._load_h5'] = 'reads files',
  ['usagi.word2vec.load'] = 'reads files', ['usagi.word2vec.english_text'] = 'reads a data set',
  ['usagi.word2vec.train'] = 'reads a corpus file and trains on threads (Hogwild)',
  ['usagi.word2vec._train'] = 'trains on threads (Hogwild) for as long as its arguments say',
  ['usagi.word2vec.Model.save'] = 'writes files',
  -- MPI is never loaded: require 'usagi.dist' would initialise MPI
}

-- ==== A small generator of our own =========================================

-- xorshift64*, so that nothing the API does to math.random or usagi's RNG
-- changes the sequence of calls.
local state = seed ~ 0x9E3779B97F4A7C15
if state == 0 then state = 1 end
local function next64()
  state = state ~ (state >> 12); state = state ~ (state << 25); state = state ~ (state >> 27)
  return state * 0x2545F4914F6CDD1D
end
local function below(n) return (next64() >> 1) % n + 1 end    -- 1..n
local function pick(t) return t[below(#t)] end

-- ==== Arguments ============================================================

local nan, inf = 0 / 0, math.huge
local numbers = { 0, 1, 2, 3, 4, -1, -2, 0.5, -0.5, 1e-3, 2147483647, -2147483648, 2147483648,
                  1 << 41, 1 << 62, math.maxinteger, math.mininteger, nan, inf, -inf, 1e308,
                  2.0, 3.0 }
local small = { 0, 1, 2, 3, 1, 2, -1 }
local strings = { '', 'f32', 'f64', 'i32', 'sum', 'mean', 'none', 'x', 'train', 'weight',
                  ('a'):rep(300), '%s%n', '\0', 'grad', 'nosuch', '__index', 'forward', 'lr' }
local shapes = { {}, { 0 }, { 3 }, { 2, 3 }, { 3, 2 }, { 2, 0, 3 }, { 1, 2, 3 }, { 2, 1, 3, 2 },
                 { 4, 3 }, { 3, 4 }, { 1 } }
local dtypes = { 'f32', 'f64', 'i32' }

local mt = getmetatable(usagi.zeros(1))

local function make_tensor()
  local shape, dt = pick(shapes), pick(dtypes)
  local t = usagi.zeros(shape, dt)
  local n = t:numel()
  if n > 0 then        -- small ids for i32 (embedding, gather), mixed values else
    local flat = t:view(n)
    for i = 1, n do flat[i] = dt == 'i32' and below(4) - 1 or pick { 0.5, -1, 2, 0, 3.25, nan, inf } end
  end
  local kind = below(8)
  if kind == 1 and t:dim() >= 2 then t = t:t() end                       -- not contiguous
  if kind == 2 and t:dim() >= 1 then t = t:unsqueeze(1):expand(3, table.unpack(shape)) end
  if kind == 3 and t:dim() >= 1 and shape[1] > 1 then t = t:narrow(1, 2, shape[1] - 1) end
  if kind == 4 then mt.__close(t) end                                    -- closed
  if kind == 5 and dt ~= 'i32' then t:requires_grad(true) end
  if kind == 6 and dt ~= 'i32' then t = (t:requires_grad(true) * 2) end   -- part of a graph
  return t
end

local function make_table()
  local k = below(9)
  if k == 1 then return {} end
  if k == 2 then return { 1, 2, 3 } end
  if k == 3 then return { { 1, 2 }, { 3, 4 } } end
  if k == 4 then local c = { 1 }; c[2] = c; c.self = c; return c end    -- cyclic
  if k == 5 then return { { { { { {} } } } } } end                       -- nested
  if k == 6 then return { make_tensor(), make_tensor() } end
  if k == 7 then return { 2, 3 } end
  if k == 8 then return setmetatable({}, { __index = function() error('poisoned table') end }) end
  local o = {}                                                          -- an options table
  for _ = 1, below(3) do
    o[pick { 'dtype', 'dim', 'reduction', 'lr', 'mask', 'bias', 'num_layers', 'batch_first',
             'keepdim', 'momentum', 'p', 'weight_decay', 'ignore_index', 'step_size' }] =
      pick { 1, 0, -1, nan, 'x', 'f64', true, {} }
  end
  return o
end

local others = { io.stdout, coroutine.create(function() end), usagi.zeros(2):size(), tostring,
                 usagi.image.canvas(2, 2) }

-- Results of earlier calls, fed back as arguments so that calls chain
-- (a view of a view, a module's output into a criterion). Only small ones
-- are kept: an expanded view of 2^31 elements costs nothing to make but a
-- Lua table of that size from totable would take all memory inside C,
-- where the count hook cannot stop it.
local results, RESULTS = {}, 16
local function keep(v)
  local ok, small = pcall(function()
    if usagi.is_tensor(v) then return v:numel() <= 4096 end
    return type(v) == 'table' and #v <= 64
  end)
  if ok and small then results[below(RESULTS)] = v end
end

local function make_arg()
  if below(6) == 1 and #results > 0 then
    local v = results[below(#results)]
    if v ~= nil then return v end
  end
  local k = below(12)
  if k == 1 then return nil end
  if k == 2 then return below(2) == 1 end
  if k == 3 then return pick(numbers) end
  if k == 4 then return pick(small) end
  if k == 5 then return pick(strings) end
  if k <= 7 then return make_table() end
  if k == 8 then return pick { function() end, function() error('boom') end,
                               function(...) return ... end, function() return usagi.ones(2) end } end
  if k == 9 then return pick(others) end
  return make_tensor()
end

-- A short text of a value, for traces and failures.
local function show(v)
  if usagi.is_tensor(v) then
    local ok, s = pcall(function() return v:dtype() .. tostring(v:size()) end)
    return 'tensor ' .. (ok and s or '(closed)')
  end
  if type(v) == 'string' then return ('%q'):format(#v > 20 and v:sub(1, 20) .. '...' or v) end
  if type(v) == 'number' or type(v) == 'boolean' or v == nil then return tostring(v) end
  return type(v)
end

-- ==== Targets ==============================================================

-- Each target: a name and a function making (f, args) for one call.
local targets = {}
local function add(name, make)
  if excluded[name] then return end
  for prefix in pairs(excluded) do
    if name:sub(1, #prefix + 1) == prefix .. '.' then return end
  end
  targets[#targets + 1] = { name = name, make = make }
end

local function random_args(first)
  local args, n = {}, below(5) - 1
  if first then args[1] = first() ; n = n + 1 end
  for i = (first and 2 or 1), n do args[i] = make_arg() end
  return args, n
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do if type(k) == 'string' then ks[#ks + 1] = k end end
  table.sort(ks)
  return ks
end

-- plain functions of a table (modules)
local function add_functions(prefix, tbl)
  for _, k in ipairs(sorted_keys(tbl)) do
    local f = rawget(tbl, k)
    if type(f) == 'function' then add(prefix .. '.' .. k, function() return f, random_args() end) end
  end
end

-- The methods an instance finds through its class chain (metatable
-- __index tables and their metatables), names sorted.
local function methods_of(obj)
  local seen, out = {}, {}
  local idx = getmetatable(obj)
  for _ = 1, 8 do
    if type(idx) ~= 'table' then break end
    local t = rawget(idx, '__index')
    if type(t) ~= 'table' then t = idx end
    for _, k in ipairs(sorted_keys(t)) do
      if not seen[k] and type(rawget(t, k)) == 'function' and k ~= '__gc' then
        seen[k] = true
        out[#out + 1] = k
      end
    end
    idx = getmetatable(t) or rawget(t, 'super')
    if idx == t then break end
  end
  table.sort(out)
  return out
end

-- A class (a callable table): its constructor with random arguments, and
-- each method on a fresh instance made by the first of `tries` that works.
local function add_class(prefix, cls, tries)
  add(prefix, function() return cls, random_args() end)
  for _, args in ipairs(tries) do
    local ok, inst = pcall(function() return cls(table.unpack(args())) end)
    if ok and inst ~= nil then
      for _, m in ipairs(methods_of(inst)) do
        add(prefix .. '.' .. m, function()
          local fresh = cls(table.unpack(args()))
          local f = fresh[m]
          return f, random_args(function() return below(6) > 1 and fresh or make_arg() end)
        end)
      end
      return
    end
  end
end

local function params() return usagi.nn.Linear(3, 4):parameters() end
local class_tries = {
  function() return { 3, 4 } end, function() return { 4, 2 } end, function() return {} end,
  function() return { 3 } end, function() return { 0.5 } end,
  function() return { { usagi.nn.Linear(3, 4) } } end,
  function() return { { input_size = 3, hidden_size = 4, vocab_size = 5, latent = 2, dim = 4,
                        embed = 3, hidden = 4, heads = 2, input = 3, vocab = 5 } } end,
  function() return { 5, 3, 4 } end, function() return { 5, 3, 4, 2 } end,
}
local optim_tries = {
  function() return { params(), { lr = 0.1 } } end, function() return { params() } end,
  function() return { usagi.optim.SGD(params(), { lr = 0.1 }), { step_size = 1, T_max = 2, gamma = 0.5 } } end,
  function() return { usagi.optim.SGD(params(), { lr = 0.1 }) } end,
}

local function add_module(prefix, mod, tries)
  add_functions(prefix, mod)
  for _, k in ipairs(sorted_keys(mod)) do
    local v = rawget(mod, k)
    if type(v) == 'table' and getmetatable(v) and getmetatable(v).__call then
      add_class(prefix .. '.' .. k, v, tries)
    end
  end
end

local function collect()
  -- usagi.* and its sub-tables of functions
  add_functions('usagi', usagi)
  add_functions('usagi.image', usagi.image)
  -- Tensor methods and metamethods, the receiver a tensor most of the time
  local function method(name, f)
    add('Tensor.' .. name, function()
      return f, random_args(function() return below(5) > 1 and make_tensor() or make_arg() end)
    end)
  end
  for _, k in ipairs(sorted_keys(mt.__methods)) do method(k, mt.__methods[k]) end
  for _, k in ipairs(sorted_keys(mt)) do if type(mt[k]) == 'function' then method(k, mt[k]) end end
  local size_mt = getmetatable(usagi.zeros(1):size())
  for _, k in ipairs(sorted_keys(size_mt)) do
    if type(size_mt[k]) == 'function' then
      add('Size.' .. k, function()
        return size_mt[k], random_args(function() return usagi.zeros(2, 3):size() end)
      end)
    end
  end
  -- the metatables of the usagi table itself and of a canvas
  local function add_metatable(prefix, make)
    local m = getmetatable(make())
    local function one(k, f)
      add(prefix .. '.' .. k, function()
        return f, random_args(function() return below(5) > 1 and make() or make_arg() end)
      end)
    end
    for _, k in ipairs(sorted_keys(m)) do if type(m[k]) == 'function' then one(k, m[k]) end end
    if type(rawget(m, '__methods')) == 'table' then
      for _, k in ipairs(sorted_keys(m.__methods)) do one(k, m.__methods[k]) end
    end
  end
  add_metatable('usagi(mt)', function() return usagi end)
  add_metatable('Canvas', function() return usagi.image.canvas(2, 2) end)
  add_module('usagi.nn', usagi.nn, class_tries)
  add_functions('usagi.nn.init', usagi.nn.init)
  add_module('usagi.optim', usagi.optim, optim_tries)
  add_functions('usagi.data', usagi.data)
  for _, p in ipairs { 'lstm', 'gru', 'rnn', 'birnn', 'attention', 'seq2seq', 'vae', 'word2vec' } do
    add_module('usagi.' .. p, require('usagi.' .. p), class_tries)
  end
end

-- ==== The walk =============================================================

-- The process is healthy when a fresh small tensor op still gives the right
-- numbers and usagi's global modes are as the fuzzer set them.
local function healthy()
  local a = usagi.tensor { { 1, 2 }, { 3, 4 } }
  local ok = usagi.mm(a, a):sum():item() == 54 and (a + 1):totable()[2][2] == 5
  return ok and usagi.is_grad_enabled()
end

describe('the API fuzzer', function()
  it('calls everything with random arguments and the process stays healthy', function()
    local threads, rng = usagi.get_num_threads(), usagi.get_rng_state()
    local old_cap = usagi.alloc_limit(ALLOC_CAP)
    finally(function()
      debug.sethook()
      usagi.alloc_limit(old_cap)
      usagi.set_num_threads(threads)
      usagi.set_rng_state(rng)
      usagi.set_grad_enabled(true)
    end)
    collect()
    assert.is_true(#targets > 400, 'only ' .. #targets .. ' targets found')
    -- a target that writes files named by its arguments would litter the
    -- working directory (the repository): found afterwards, and named
    local before = {}
    for _, name in ipairs(usagi.sys.listdir('.')) do before[name] = true end
    -- metamethods are a few targets among a thousand but the ones a user
    -- rarely calls with the arguments Lua gives them: ten times the weight
    local pool = {}
    for _, tg in ipairs(targets) do
      for _ = 1, tg.name:find('.__', 1, true) and 10 or 1 do pool[#pool + 1] = tg end
    end
    io.stderr:write(('\nfuzz_api: seed %d, %d targets, %g s budget (replay: USAGI_FUZZ_SEED=%d '
                     .. 'USAGI_FUZZ_TRACE=1)\n'):format(seed, #targets, seconds, seed))
    local started, deadline = clock(), clock() + seconds
    local call_end
    -- stops Lua-side work that runs away (see the caps above)
    debug.sethook(function()
      if call_end and (clock() > call_end or collectgarbage('count') > LUA_MIB * 1024) then
        call_end = nil
        error('fuzz: call stopped by the fuzzer\'s time or memory cap', 2)
      end
    end, '', 10000)
    local calls, errors, capped, failures, per = 0, 0, 0, {}, {}
    while calls < max_iters and clock() < deadline do
      local tg = pick(pool)
      local ok_make, f, args, n = pcall(tg.make)
      if ok_make and (type(f) == 'function' or type(f) == 'table') then
        calls = calls + 1
        local parts = {}
        for i = 1, n or 0 do parts[i] = show(args[i]) end
        local desc = ('%s(%s)'):format(tg.name, table.concat(parts, ', '))
        if trace then io.stderr:write(calls, ' ', desc, '\n') end
        call_end = clock() + CALL_SECONDS
        local ok, err = pcall(f, table.unpack(args, 1, n))
        call_end = nil
        if ok then keep(err) end
        usagi.set_grad_enabled(true)               -- set_grad_enabled(false) is legal
        usagi.set_rng_state(rng)                   -- and so are other seeds
        if not ok then
          errors = errors + 1
          if type(err) == 'string' and err:find('fuzz: call stopped', 1, true) then
            capped = capped + 1
            if trace then io.stderr:write('  capped: ', desc, '\n') end
          end
        end
        per[tg.name] = (per[tg.name] or 0) + 1
        local ok_h, good = pcall(healthy)
        if not (ok_h and good) then
          failures[#failures + 1] = ('seed %d, call %d: %s left the process unhealthy (%s)')
                                    :format(seed, calls, desc, tostring(good))
          break
        end
      end
    end
    debug.sethook()
    local reached = 0
    for _ in pairs(per) do reached = reached + 1 end
    for _, tg in ipairs(trace and targets or {}) do
      if not per[tg.name] then io.stderr:write('fuzz_api: never called: ', tg.name, '\n') end
    end
    io.stderr:write(('fuzz_api: %d calls (%d raised, %d capped) over %d of %d targets in %.1f s\n')
                    :format(calls, errors, capped, reached, #targets, clock() - started))
    for _, name in ipairs(usagi.sys.listdir('.')) do
      if not before[name] then
        failures[#failures + 1] = ('seed %d: a call wrote %q into the working directory; '
                                   .. 'exclude the target that writes files'):format(seed, name)
      end
    end
    assert.are.same({}, failures)
    assert.is_true(calls > 0)
  end)
end)
