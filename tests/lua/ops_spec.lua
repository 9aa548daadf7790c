-- ops_spec.lua -- one test that walks every op declared in an op table
-- (usagi.op_table(): host/ops/*.lua and the plugins'), as ggml's
-- test-backend-ops walks its op enum. For each overload of each op, with
-- inputs made from the table's hints (host/ops/README.md):
--   * f64 against the declared scalar reference or fold, and f32 against f64;
--   * the method and in-place forms against the function;
--   * the gradient by central finite differences in f64 (usagi.gradcheck);
--   * the declared dtype rule: f32, f64 and i32 inputs taken or refused, and
--     the result's dtype;
--   * a bad value for every argument: an error that names the op, never a crash.
-- A random op (test.random) has no reference: the same seed must give the
-- same draws, the forms must agree, and the draws must have the dtype,
-- shape and range they should, in f64 and f32.
-- A new op gets all of this by being declared.
local usagi = require 'usagi'

-- Load every plugin so that its declared ops are walked too.
for _, name in ipairs { 'rnn', 'lstm', 'gru', 'birnn', 'attention', 'seq2seq', 'vae', 'hello', 'word2vec',
                        'dist' } do
  pcall(require, 'usagi.' .. name)
end
local all = usagi.op_table()

local function module_of(op)
  return op.module == 'usagi' and usagi or require('usagi.' .. op.module)
end

-- A method of a plugin's userdata (op.class, a metatable name), called as
-- mt.name(...) so that an error names it as a user's v:name() would.
local function method_of(op)
  local mt = debug.getregistry()[op.class]
  return assert(load(('local mt = ... return function(...) local r = table.pack(mt.%s(...)) '
    .. 'return table.unpack(r, 1, r.n) end'):format(op.name), '=' .. op.name))(mt), mt
end

local function has(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local function load_ref(src) return assert(load(src, '=ref', 't', {math = math}))() end

-- A tensor of `shape` in f64 with seeded values in [-1, 1), moved into the
-- domain the table asks for.
local function input(shape, domain)
  local x = usagi.rand(shape, { dtype = 'f64', lo = -1, hi = 1 })
  local flat = x:view(-1)
  for i = 1, flat:numel() do
    local v = flat[i]
    if domain == 'positive' then v = 0.5 + math.abs(v)
    elseif domain == 'away0' then v = (v < 0 and -1 or 1) * (0.3 + math.abs(v))
    elseif domain == 'away_half' then
      v = v * 1.5
      if math.abs(math.abs(v) - 0.5) < 0.15 or math.abs(math.abs(v) - 1.5) < 0.15 then v = v + 0.3 end
    elseif domain == 'mask' then v = v > 0 and 1 or 0
    elseif domain == 'unit' then v = 0.5 + 0.45 * v
    end
    flat[i] = v
  end
  return x
end

-- The arguments of overload o, made from the op's test hints: tensors of
-- the hinted shapes (default (3, 4)), numbers, optional ones left out.
-- `along`: optional dims given (the last dim, keepdim true) instead of left out.
local function arguments(op, o, along)
  local test = op.test or {}
  local args, nt, nn, nd = { n = #o.args }, 0, 0, 0
  local tensors = {}
  for i, a in ipairs(o.args) do
    local kind = a[1]
    if a.test and a.test.make then            -- a plugin's kind: the table says how to make one
      args[i] = load_ref(a.test.make)(module_of(op))
    elseif test.index and test.index.at == i then   -- 1-based i32 indices in 1..max
      local ids = usagi.zeros(test.index.shape, 'i32')
      local flat = ids:view(-1)
      for e = 1, flat:numel() do flat[e] = (e * 7 + 3) % test.index.max + 1 end
      args[i] = ids
    elseif (kind == 'tensor' or kind == 'scalar') and a.optional and not (test.shapes or {})[nt + 1] then
      args[i] = nil                  -- an optional tensor without a hinted shape is left out
    elseif kind == 'tensor' or kind == 'scalar' then
      nt = nt + 1
      local shape = (test.shapes or {})[nt] or { 3, 4 }
      args[i] = input(shape, (test.domain or {})[nt])
      tensors[#tensors + 1] = i
    elseif kind == 'number' or kind == 'integer' then
      nn = nn + 1
      args[i] = (test.numbers or {})[nn] or (kind == 'integer' and 2 or 0.7)
    elseif kind == 'dim' then
      nd = nd + 1
      args[i] = (test.dims or {})[nd] or -1
    elseif kind == 'newdim' then args[i] = -1
    elseif kind == 'dtype' then args[i] = nil
    elseif kind == 'optdim' then args[i] = along and -1 or nil
    elseif kind == 'lastdim' then args[i] = nil
    elseif kind == 'boolean' then args[i] = along or (not a.optional and false or nil)
    elseif kind == 'norm_p' then args[i] = nil
    elseif kind == 'dtypeopt' then args[i] = nil
    elseif kind == 'shape' then args[i] = { table.unpack(test.shape or { 3, 4 }) }
    elseif kind == 'dims' then args[i] = { table.unpack(test.perm) }
    elseif kind == 'tensors' then    -- a list of tensors of the hinted shapes
      local list = {}
      for j, shape in ipairs(test.shapes or { { 3, 4 }, { 3, 4 } }) do
        nt = nt + 1
        list[j] = input(shape)
        tensors[#tensors + 1] = { i, j, list = true }
      end
      args[i] = list
    elseif kind == 'layers' then     -- one layer of the hinted weight shapes
      local layer = {}
      for j, shape in ipairs(test.layers) do
        layer[j] = input(shape):mul_(0.5)
        tensors[#tensors + 1] = { i, j }
      end
      args[i] = { layer }
    end
  end
  -- trailing optional arguments left out
  local n = #o.args
  while n > 0 and args[n] == nil do n = n - 1 end
  args.n = n
  return args, tensors
end

local function call(f, args) return f(table.unpack(args, 1, args.n)) end

-- An op that works in place (returns self) is given a fresh copy of its
-- first argument each time, so every call starts from the same values.
local function fresh(o, args)
  if o.returns ~= 'self' and o.returns ~= 'first' then return args end
  local copy = { n = args.n, table.unpack(args, 1, args.n) }
  copy[1] = args[1]:clone()
  return copy
end

-- The tensors of the arguments sit at index i, or at {i, j}: weight j of
-- the one layer of a layers argument.
local function get(args, at)
  if type(at) == 'table' and at.list then return args[at[1]][at[2]] end
  if type(at) == 'table' then return args[at[1]][1][at[2]] end
  return args[at]
end

-- A copy of the argument list (the layers list copied too), with the tensor
-- at each place of `tensors` replaced by fn(tensor, k).
local function with(args, tensors, fn)
  local out = { n = args.n }
  for i = 1, args.n do
    local v = args[i]
    if type(v) == 'table' and usagi.is_tensor(v[1]) then out[i] = { table.unpack(v) }
    elseif type(v) == 'table' and type(v[1]) == 'table' and usagi.is_tensor(v[1][1]) then
      out[i] = { { table.unpack(v[1]) } }
    else out[i] = v end
  end
  for k, at in ipairs(tensors) do
    local t = fn(get(args, at), k)
    if type(at) == 'table' and at.list then out[at[1]][at[2]] = t
    elseif type(at) == 'table' then out[at[1]][1][at[2]] = t
    else out[at] = t end
  end
  return out
end

local function as(args, tensors, dtype)
  return with(args, tensors, function(t) return t:to(dtype) end)
end

local function near(a, b, rtol, atol, what)
  assert.is_true(usagi.is_tensor(a) and usagi.is_tensor(b), what)
  assert.are.same(a:size(), b:size(), what)
  local da, db = a:double():reshape(-1), b:double():reshape(-1)
  for i = 1, da:numel() do
    local x, y = da[i], db[i]
    if not (x ~= x and y ~= y) then
      assert(math.abs(x - y) <= atol + rtol * math.abs(y),
        ('%s: element %d is %.9g, expected %.9g'):format(what, i, x, y))
    end
  end
end

-- Results of the same kind compared: tensors near, lists of them
-- element by element, other values equal.
local function same(a, b, rtol, atol, what)
  if usagi.is_tensor(a) then near(a, b, rtol, atol, what)
  elseif type(a) == 'table' and type(b) == 'table' then
    assert.are.equal(#b, #a, what)
    for i = 1, #a do same(a[i], b[i], rtol, atol, what .. '[' .. i .. ']') end
  else assert.are.equal(b, a, what) end
end

-- The place of the overload's dtype argument, or of its options table
-- (whose dtype key says it), so that the f64 and f32 runs can ask for
-- their dtype; nil when the dtype follows the inputs.
local function dtype_at(o)
  for i, a in ipairs(o.args) do
    if a[1] == 'dtypeopt' then return i, false end
    if a[1] == 'options' then
      for _, f in ipairs(a.options or {}) do if f[2] == 'dtype' then return i, true end end
    end
  end
end

-- args for a run in dtype dt: the tensors converted, and the dtype asked
-- for where the overload takes one.
local function in_dtype(o, args, tensors, dt)
  local out = as(args, tensors, dt)
  local at, option = dtype_at(o)
  if at then
    out[at] = option and { dtype = dt } or dt
    out.n = math.max(out.n, at)
  end
  return out
end


-- A value of a kind the argument does not take.
local bad_value = {
  tensor = 'x', scalar = 'x', number = 'x', integer = 0.5, dim = 99, optdim = 99, lastdim = 99,
  newdim = 99, dtype = 'f16',
  boolean = 'yes', norm_p = 'nuc',
  shape = -3, dims = 99, tensors = 'x', dtypeopt = 'f16',
}

describe('the op table', function()
  it('declares each op once, with a doc, and registers its forms', function()
    local seen = {}
    assert.is_true(#all >= 40)
    for _, op in ipairs(all) do
      local key = op.module .. '.' .. op.name
      assert.is_nil(seen[key], key .. ' is declared twice')
      seen[key] = true
      assert.are.equal('string', type(op.doc), key)
      assert.is_truthy(op.doc:find(op.name, 1, true), key .. ': its doc does not name it')
      local m = module_of(op)
      if has(op.forms, 'usagi') then assert.are.equal('function', type(m[op.name]), key) end
      if op.class then
        assert.are.equal('function', type(select(2, method_of(op))[op.name]), key .. ' as a method')
      elseif has(op.forms, 'method') then
        assert.are.equal('function', type(usagi.zeros(1)[op.name]), key .. ' as a method')
      end
      if op.inplace then assert.are.equal('function', type(usagi.zeros(1)[op.name .. '_']), key .. '_') end
      assert.is_truthy(op.grad == true or type(op.grad) == 'string', key .. ': say why there is no gradient')
    end
  end)

  it('shows each op\'s dtype rule under its help', function()
    local doc = require 'usagi.doc'
    local exp = doc.text('usagi.exp')
    assert.truthy(exp:find("Dtypes: f32, f64 or i32; the result has the inputs' dtype, f32 for i32.", 1, true), exp)
    local mm = doc.text('usagi.mm')
    assert.truthy(mm:find('Dtypes: f32 or f64 (i32 is refused)', 1, true), mm)
    assert.truthy(doc.text('usagi.zeros'):find('the result has the dtype asked for', 1, true))
    assert.truthy(doc.text('usagi.eq'):find('the result is i32', 1, true))
  end)
end)

-- The checks of overload k (o) of op, with its optional dims left out or
-- given (along).
-- Every tensor of a result (a list's included), in order.
local function tensors_of(results)
  local out = {}
  for _, r in ipairs(results) do
    if usagi.is_tensor(r) then out[#out + 1] = r
    elseif type(r) == 'table' then for _, t in ipairs(r) do out[#out + 1] = t end end
  end
  return out
end

-- A random op: draws have no reference, so what is checked is what a draw
-- promises. With the same seed the same draws (in f64 and f32, and from the
-- method form); each result in the dtype asked for (f32 from f32 inputs),
-- of the same shape in f64 and f32, and in [lo, hi] when the op says; with
-- `mean` and `var`, f32 and f64 agree with them (and so in distribution)
-- within five standard errors and a fifth.
local function check_random(op, key, f, k, o, label)
  local hint = op.test.random
  it(label .. ': a seed gives the same draws, of the dtype, shape and range promised', function()
    usagi.manual_seed(k)
    local args, tensors = arguments(op, o)
    local function draw(a, seed)
      usagi.manual_seed(seed)
      return table.pack(call(f, fresh(o, a)))
    end
    local runs = {}
    for _, dt in ipairs { 'f64', 'f32' } do
      local a = in_dtype(o, args, tensors, dt)
      local r1, r2 = draw(a, 7), draw(a, 7)
      assert.are.equal(r1.n, r2.n)
      for i = 1, r1.n do same(r1[i], r2[i], 0, 0, key .. ' in ' .. dt .. ': the same seed, result ' .. i) end
      if has(op.forms, 'method') and o.args[1][1] == 'tensor' then
        usagi.manual_seed(7)
        local m = fresh(o, a)
        local rm = table.pack(m[1][op.name](table.unpack(m, 1, m.n)))
        for i = 1, r1.n do same(rm[i], r1[i], 0, 0, key .. ' as a method, result ' .. i) end
      end
      local ts = tensors_of(r1)
      assert.is_true(#ts > 0, key .. ': no tensor drawn')
      for _, t in ipairs(ts) do
        assert.are.equal(hint.integer and 'i32' or dt, t:dtype(), key .. ' in ' .. dt)
        local flat = t:double():reshape(-1)
        local n, sum, sq = flat:numel(), 0, 0
        for e = 1, n do
          local v = flat[e]
          assert(v == v, key .. ': a NaN drawn')
          if hint.lo then
            assert(v >= hint.lo and v <= hint.hi, ('%s: %g is outside [%g, %g]'):format(key, v, hint.lo, hint.hi))
          end
          sum, sq = sum + v, sq + v * v
        end
        if hint.mean then
          local mean = sum / n
          local var = sq / n - mean * mean
          assert(math.abs(mean - hint.mean) <= 5 * math.sqrt(hint.var / n),
            ('%s in %s: mean %g of %d draws, expected %g'):format(key, dt, mean, n, hint.mean))
          assert(math.abs(var - hint.var) <= 0.2 * hint.var,
            ('%s in %s: variance %g of %d draws, expected %g'):format(key, dt, var, n, hint.var))
        end
      end
      runs[dt] = ts
    end
    for i, t in ipairs(runs.f64) do
      assert.are.same(t:size(), runs.f32[i]:size(), key .. ': f32 and f64 shapes')
    end
  end)
end

local function check(op, key, f, k, o, along)
  local returns = type(o.returns) == 'table' and table.concat(o.returns, ', ') or o.returns
  local label = ('overload %d (%s)%s'):format(k, returns, along and ' along a dim' or '')
  if op.test and op.test.random then check_random(op, key, f, k, o, label) else
  it(label .. ': f64 against the reference, f32 against f64, the forms agree', function()
    usagi.manual_seed(k)
    local args, tensors = arguments(op, o, along)
    local r64 = table.pack(call(f, fresh(o, in_dtype(o, args, tensors, 'f64'))))
    local test = op.test or {}
    if test.ref then
      local ref = load_ref(test.ref)
      local flat = {}
      for i = 1, args.n do
        flat[i] = usagi.is_tensor(args[i]) and args[i]:contiguous():view(-1) or args[i]
      end
      if not usagi.is_tensor(r64[1]) then   -- a number: the reference of the arguments
        local want = ref(table.unpack(args, 1, args.n))
        assert(math.abs(r64[1] - want) <= 1e-12 + 1e-12 * math.abs(want),
          ('%s is %.17g, the reference %.17g'):format(key, r64[1], want))
      end
      local out = usagi.is_tensor(r64[1]) and r64[1]:double():view(-1) or usagi.zeros(0)
      for e = 1, out:numel() do
        local vals = {}
        for i = 1, args.n do vals[i] = usagi.is_tensor(flat[i]) and flat[i][e] or flat[i] end
        local want = ref(table.unpack(vals, 1, args.n))
        assert(math.abs(out[e] - want) <= 1e-12 + 1e-12 * math.abs(want),
          ('%s: element %d is %.17g, the reference %.17g'):format(key, e, out[e], want))
      end
    end
    if test.fold and o.returns == 'tensor' and not along then
      local fn, start = load_ref(test.fold)
      local acc, flat = start, args[1]:view(-1)
      for e = 1, flat:numel() do acc = fn(acc, flat[e]) end
      assert(math.abs(r64[1]:item() - acc) <= 1e-12 * (1 + math.abs(acc)), key .. ' against its fold')
    end
    local r32 = table.pack(call(f, fresh(o, in_dtype(o, args, tensors, 'f32'))))
    assert.are.equal(r64.n, r32.n)
    if dtype_at(o) then   -- the dtype asked for is the dtype made
      assert.are.equal('f64', r64[1]:dtype(), key)
      assert.are.equal('f32', r32[1]:dtype(), key)
    end
    for i = 1, r64.n do same(r32[i], r64[i], 1e-4, 1e-5, key .. ' in f32, result ' .. i) end
    if has(op.forms, 'method') and o.args[1][1] == 'tensor' then
      local margs = fresh(o, args)
      local rm = table.pack(margs[1][op.name](table.unpack(margs, 1, margs.n)))
      for i = 1, r64.n do same(rm[i], r64[i], 0, 0, key .. ' as a method') end
      for _, alias in ipairs(op.aliases or {}) do
        margs = fresh(o, args)
        rm = table.pack(margs[1][alias](table.unpack(margs, 1, margs.n)))
        for i = 1, r64.n do same(rm[i], r64[i], 0, 0, key .. ' as ' .. alias) end
      end
    end
    if op.inplace and o.args[1][1] == 'tensor' and o.returns == 'tensor' then
      local copy = { n = args.n, table.unpack(args, 1, args.n) }
      copy[1] = args[1]:clone()
      local ok, self = pcall(call, copy[1][op.name .. '_'], copy)
      if ok then
        assert.are.equal(copy[1], self)
        near(copy[1], r64[1], 0, 0, key .. '_ in place')
      else  -- only the overloads with an in-place form have one
        assert.is_truthy(tostring(self):find(op.name, 1, true), self)
      end
    end
  end)
  end

  if op.grad == true and o.returns ~= 'index' and o.returns ~= 'boolean' then
    it(label .. ': the gradient by finite differences', function()
      usagi.manual_seed(100 + k)
      local args, tensors = arguments(op, o, along)
      -- gradcheck takes a flat list of tensors: the checked ones, then
      -- rebuilds the arguments from it on every call
      local nograd = {}
      for _, k in ipairs(op.test and op.test.nograd or {}) do nograd[k] = true end
      local flat = {}
      for k, at in ipairs(tensors) do
        local t = get(args, at)
        flat[k] = nograd[k] and t or t:requires_grad(true)
      end
      local function g(...)
        local xs = { ... }
        -- a random op (dropout) draws the same mask on every call
        if op.test and op.test.random then usagi.manual_seed(7) end
        -- its tensors only, not an index as a number
        return tensors_of { call(f, with(args, tensors, function(_, k) return xs[k] end)) }
      end
      local eps = op.test and op.test.eps
      assert.is_true(usagi.gradcheck(g, flat, eps and { eps = eps, atol = 1e-4 } or nil))
    end)
  end

  if along then return end
  local rule = o.dtypes or op.dtypes
  it(label .. ': the dtypes the table declares (' .. rule .. ')', function()
    usagi.manual_seed(300 + k)
    local args, tensors = arguments(op, o)
    -- the op makes its tensors in the dtype asked for, or takes them in it
    local kind_at
    for i, a in ipairs(o.args) do if a[1] == 'dtype' then kind_at = i end end
    local asks = dtype_at(o) ~= nil or kind_at ~= nil
    for _, dt in ipairs { 'f32', 'f64', 'i32' } do
      local a = in_dtype(o, args, tensors, dt)
      if dt == 'i32' then
        -- small integers, and whole numbers beside them, as an i32 user has
        a = in_dtype(o, with(args, tensors, function(t) return (t * 3):int():add(1) end), {}, dt)
        for i, x in ipairs(o.args) do
          if x[1] == 'number' and type(a[i]) == 'number' then a[i] = math.floor(a[i] + 0.5) end
        end
      end
      if kind_at then a[kind_at], a.n = dt, math.max(a.n, kind_at) end
      local ok, r = pcall(call, f, fresh(o, a))
      local what = ('%s with %s tensors'):format(key, dt)
      if dt == 'i32' and rule == 'float' and (#tensors > 0 or asks) then
        assert.is_false(ok, what .. ' was taken, but the table says f32 and f64 only')
        assert.is_truthy(tostring(r):find(op.errname or op.name, 1, true), what .. ': ' .. tostring(r))
        assert.is_truthy(tostring(r):find('i32', 1, true), what .. ': ' .. tostring(r))
      else
        assert(ok, what .. ': ' .. tostring(r))
        if usagi.is_tensor(r) then
          local want = ({ float = dt, any = dt, to_float = dt == 'i32' and 'f32' or dt })[rule]
            or rule
          assert.are.equal(want, r:dtype(), what)
        end
      end
    end
  end)

  it(label .. ': a bad value for each argument names the op', function()
    usagi.manual_seed(200 + k)
    for i, a in ipairs(o.args) do
      local args = arguments(op, o)
      local n = math.max(args.n, i)
      local bad = bad_value[a[1]]
      if bad == nil and a.test then bad = a.test.bad end
      if a[1] == 'options' then bad = { bogus = 1 } end
      if bad ~= nil then
        args[i], args.n = bad, n
        -- called straight from pcall, the error names the function as the
        -- user knows it (usagi.add), not as a local of this file
        local ok, err = pcall(f, table.unpack(args, 1, args.n))
        assert.is_false(ok, ('%s: argument %d (%s) = %s was taken'):format(key, i, a[2], tostring(bad)))
        assert.is_truthy(tostring(err):find(op.errname or op.name, 1, true),
          ('%s: argument %d: %s'):format(key, i, tostring(err)))
      end
    end
  end)
end

for _, op in ipairs(all) do
  local key = op.module .. '.' .. op.name
  local m = module_of(op)
  local f = op.class and method_of(op) or has(op.forms, 'usagi') and m[op.name] or usagi.zeros(1)[op.name]
  describe(key, function()
    for k, o in ipairs(op.overloads) do
      check(op, key, f, k, o, false)
      for _, a in ipairs(o.args) do
        if a[1] == 'optdim' then check(op, key, f, k, o, true) break end
      end
    end
  end)
end
