-- random_spec.lua -- the run's generator from Lua: seeding, the state as a
-- table, known first values, reproducibility, the shapes and options of
-- rand / randn / bernoulli / multinomial / randperm / dropout, the in-place
-- fills, distribution sanity, and that every bad call raises an error naming
-- its function.
local usagi = require 'usagi'

-- The message of the error f raises (f must raise).
local function err_of(f)
  local ok, msg = pcall(f)
  assert.is_false(ok, 'expected an error')
  return tostring(msg)
end

-- f raises an error whose message holds each of the plain strings given.
local function raises(f, ...)
  assert.has_error(f)
  local msg = err_of(f)
  for _, needle in ipairs({...}) do
    assert.is_truthy(msg:find(needle, 1, true), ('"%s" lacks "%s"'):format(msg, needle))
  end
end

local function flat(t) return t:contiguous():view(t:numel()):totable() end

local function same(a, b)
  local x, y = flat(a), flat(b)
  assert.are.equal(#x, #y)
  for i = 1, #x do assert.are.equal(x[i], y[i]) end
end


local function check_shape(t, dtype, ...)
  assert.are.equal(dtype, t:dtype())
  local want, got = {...}, t:size()
  assert.are.equal(#want, t:dim())
  for d = 1, #want do assert.are.equal(want[d], got[d]) end
end

local function mean(t) local s = 0; local v = flat(t); for i = 1, #v do s = s + v[i] end; return s / #v end

local function var(t)
  local m, s, v = mean(t), 0, flat(t)
  for i = 1, #v do s = s + (v[i] - m) ^ 2 end
  return s / #v
end

local function near(got, want, tol, what)
  assert(math.abs(got - want) <= tol, ('%s: got %.6f, want %.6f +- %g'):format(what or '', got, want, tol))
end

describe('the generator state', function()
  it('starts from seed 0, stream 0 and gives the Philox known answer', function()
    usagi.manual_seed(0)
    assert.are.same({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}, usagi.get_rng_state())
    -- one f32 uniform is the top 24 bits of Philox4x32-10(0, 0)'s first word
    local x = usagi.rand(1)[1]
    assert.are.equal((0x6627e8d5 >> 8) / 2 ^ 24, x)
    assert.are.same({0, 0, 1, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8, 1},
                    usagi.get_rng_state())
  end)

  it('puts seed and stream into key and counter words', function()
    usagi.manual_seed(0x0123456789abcdef, 5)
    assert.are.same({0x89abcdef, 0x01234567, 0, 0, 5, 0, 0, 0, 0, 0, 4}, usagi.get_rng_state())
    usagi.manual_seed(-1)
    local s = usagi.get_rng_state()
    assert.are.equal(0xffffffff, s[1])
    assert.are.equal(0xffffffff, s[2])
  end)

  it('remembers the last seed', function()
    usagi.manual_seed(42)
    assert.are.equal(42, usagi.initial_seed())
    usagi.manual_seed(-7, 3)
    assert.are.equal(-7, usagi.initial_seed())
    assert.is_true(math.type(usagi.initial_seed()) == 'integer')
  end)

  it('repeats a sequence for the same seed and not for another seed or stream', function()
    usagi.manual_seed(1); local a = usagi.randn(50)
    usagi.manual_seed(1); local b = usagi.randn(50)
    usagi.manual_seed(2); local c = usagi.randn(50)
    usagi.manual_seed(1, 1); local d = usagi.randn(50)
    same(a, b)
    assert.are_not.equal(flat(a)[1], flat(c)[1])
    assert.are_not.equal(flat(a)[1], flat(d)[1])
  end)

  it('resumes the exact sequence after set_rng_state, even mid-block', function()
    usagi.manual_seed(3)
    usagi.rand(3)                             -- three of four words used
    local s = usagi.get_rng_state()
    assert.are.equal(3, s[11])
    local a = usagi.rand(10, {dtype = 'f64'})
    local p = usagi.randperm(20)
    usagi.manual_seed(99)
    usagi.set_rng_state(s)
    same(a, usagi.rand(10, {dtype = 'f64'}))
    same(p, usagi.randperm(20))
  end)

  it('rejects a state that is not one', function()
    local s = usagi.get_rng_state()
    raises(function() usagi.set_rng_state() end, 'set_rng_state', 'table expected')
    raises(function() usagi.set_rng_state({1, 2, 3}) end, 'set_rng_state', 'table of 11 integers, got 3')
    local bad = {table.unpack(s)}; bad[5] = 1.5
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state: word 5 must be an integer')
    bad[5] = -1
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state: word 5')
    bad[5] = 2 ^ 32 // 1
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state: word 5')
    bad[5] = 'x'
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state: word 5')
    bad = {table.unpack(s)}; bad[11] = 5
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state: word 11')
    usagi.manual_seed(4); usagi.rand(1)
    bad = usagi.get_rng_state(); bad[8] = bad[8] ~ 1
    raises(function() usagi.set_rng_state(bad) end, 'set_rng_state', 'corrupt')
    raises(function() usagi.manual_seed('x') end, 'manual_seed')
    raises(function() usagi.manual_seed(1.5) end, 'manual_seed')
    raises(function() usagi.manual_seed(1, {}) end, 'manual_seed')
  end)
end)

describe('rand and randn', function()
  it('take a shape as numbers or a table, and options last', function()
    check_shape(usagi.rand(2, 3), 'f32', 2, 3)
    check_shape(usagi.rand({4, 1, 2}), 'f32', 4, 1, 2)
    check_shape(usagi.rand(usagi.zeros(3, 2):size()), 'f32', 3, 2)
    check_shape(usagi.rand(2, {dtype = 'f64'}), 'f64', 2)
    check_shape(usagi.rand({2, 2}, {dtype = 'f64'}), 'f64', 2, 2)
    check_shape(usagi.randn(5, {dtype = 'f64', std = 2}), 'f64', 5)
    check_shape(usagi.rand(0, 3), 'f32', 0, 3)
    check_shape(usagi.rand({}), 'f32')
    check_shape(usagi.rand({dtype = 'f64'}), 'f64')
    check_shape(usagi.randn(), 'f32')
  end)

  it('draw in [lo, hi) with the right moments', function()
    usagi.manual_seed(10)
    local u = usagi.rand(100000, {lo = -2, hi = 4})
    local v = flat(u)
    for i = 1, #v do assert(v[i] >= -2 and v[i] < 4) end
    near(mean(u), 1, 0.03, 'mean')
    near(var(u), 3, 0.04, 'var')           -- (hi - lo)^2 / 12
    local c = usagi.rand(3, {lo = 5, hi = 5})
    assert.are.same({5, 5, 5}, c:totable())

    local z = usagi.randn(100000, {dtype = 'f64', mean = 2, std = 3})
    near(mean(z), 2, 0.05, 'randn mean')
    near(var(z), 9, 0.2, 'randn var')
    local z0 = usagi.randn(3, {std = 0, mean = -1})
    assert.are.same({-1, -1, -1}, z0:totable())
  end)

  it('raise errors that name the function', function()
    raises(function() usagi.rand(2, {dtype = 'i32'}) end, 'rand: dtype must be f32 or f64, got i32')
    raises(function() usagi.rand(2, {dtype = 'f16'}) end, "rand: option 'dtype'")
    raises(function() usagi.rand(2, {dtype = 3}) end, "rand: option 'dtype'")
    raises(function() usagi.rand(2, {dtpye = 'f64'}) end, "rand: unknown option 'dtpye'")
    raises(function() usagi.rand(2, {mean = 0}) end, "rand: unknown option 'mean'")
    raises(function() usagi.rand(2, {lo = 'a'}) end, "rand: option 'lo' must be a number, got string")
    raises(function() usagi.rand(2, {lo = 1, hi = 0}) end, 'rand: lo must be <= hi')
    raises(function() usagi.rand(2, {hi = math.huge}) end, 'rand: lo and hi must be finite')
    raises(function() usagi.rand(2, {hi = 1e300}) end, 'rand: lo and hi must be finite f32')
    raises(function() usagi.rand(-1) end, 'rand', 'non-negative')
    raises(function() usagi.rand(2.5) end, 'rand')
    raises(function() usagi.rand({2}, 3) end, 'rand', 'unexpected argument')
    raises(function() usagi.rand(2, 'x') end, 'rand', 'unexpected argument')
    raises(function() usagi.rand(1, 1, 1, 1, 1, 1, 1, 1, 1) end, 'rand')
    raises(function() usagi.rand(2 ^ 30, 2 ^ 30) end, 'rand: shape', 'too large')
    raises(function() usagi.randn(2, {std = -1}) end, 'randn: std must be finite and >= 0')
    raises(function() usagi.randn(2, {mean = 0 / 0}) end, 'randn: mean must be finite')
    raises(function() usagi.randn(2, {lo = 0}) end, "randn: unknown option 'lo'")
    raises(function() usagi.randn(2, {dtype = 'i32'}) end, 'randn: dtype')
  end)
end)

describe('in-place fills', function()
  it('fill any float view and return the tensor itself', function()
    usagi.manual_seed(11)
    local t = usagi.zeros(3, 4)
    local r = t:uniform_(-1, 1)
    assert.is_true(rawequal(r, t))
    for _, x in ipairs(flat(t)) do assert(x >= -1 and x < 1) end
    assert.is_true(rawequal(t:normal_(0, 2), t))
    assert.is_true(rawequal(usagi.uniform_(t), t))
    for _, x in ipairs(flat(t)) do assert(x >= 0 and x < 1) end

    -- a transposed view fills in its own row-major order, like a new tensor
    local base = usagi.zeros(3, 4, {dtype = 'f64'})
    local view = base:t()
    usagi.manual_seed(12); view:normal_(1, 0.5)
    usagi.manual_seed(12); local want = usagi.randn(4, 3, {dtype = 'f64', mean = 1, std = 0.5})
    same(view, want)

    -- a narrowed view leaves the rest alone
    local z = usagi.zeros(3, 2)
    z:narrow(1, 2, 1):fill_(0):uniform_(5, 6)
    local v = z:totable()
    assert.are.same({0, 0}, v[1]); assert.are.same({0, 0}, v[3])
    assert(v[2][1] >= 5 and v[2][2] < 6)
  end)

  it('reject bad tensors and parameters', function()
    local i = usagi.zeros(2, {dtype = 'i32'})
    raises(function() i:uniform_() end, 'uniform_: tensor must be f32 or f64, got i32')
    raises(function() usagi.zeros(2):uniform_(1, 0) end, 'uniform_: lo must be <= hi')
    raises(function() usagi.zeros(2):uniform_('a') end, 'uniform_')
    raises(function() usagi.uniform_(3) end, 'uniform_', 'usagi.Tensor expected')
    raises(function() i:normal_() end, 'normal_: tensor')
    raises(function() usagi.zeros(2):normal_(0, -1) end, 'normal_: std')
  end)
end)

describe('bernoulli', function()
  it('draws 0/1 with the probabilities of a tensor', function()
    usagi.manual_seed(20)
    local p = usagi.tensor({{0, 1}, {1, 0}}, {dtype = 'f64'})
    for _ = 1, 10 do
      local b = usagi.bernoulli(p)
      check_shape(b, 'f64', 2, 2)
      assert.are.same({{0, 1}, {1, 0}}, b:totable())
    end
    local m = usagi.full(100000, 0.3):bernoulli()
    check_shape(m, 'f32', 100000)
    near(mean(m), 0.3, 0.006, 'tensor p')
  end)

  it('draws with one probability for a new tensor', function()
    usagi.manual_seed(21)
    local b = usagi.bernoulli(0.7, 200, 500, {dtype = 'i32'})
    check_shape(b, 'i32', 200, 500)
    for _, x in ipairs(flat(b)) do assert(x == 0 or x == 1) end
    near(mean(b), 0.7, 0.006, 'scalar p')
    check_shape(usagi.bernoulli(0.5, {3}), 'f32', 3)
    check_shape(usagi.bernoulli(0.5), 'f32')
    assert.are.same({1, 1}, usagi.bernoulli(1, 2):totable())
  end)

  it('rejects bad probabilities', function()
    raises(function() usagi.bernoulli(usagi.tensor({0.5, 1.5})) end,
           'bernoulli: p must hold probabilities in [0, 1], got 1.5 at flat index 1')
    raises(function() usagi.bernoulli(usagi.tensor({0 / 0})) end, 'bernoulli: p must hold')
    raises(function() usagi.bernoulli(usagi.zeros(2, {dtype = 'i32'})) end, 'bernoulli: p must be f32 or f64')
    raises(function() usagi.bernoulli(-0.5, 2) end, 'bernoulli: p must be in [0, 1]')
    raises(function() usagi.bernoulli('x') end, 'bernoulli', 'usagi.Tensor or number expected')
    raises(function() usagi.bernoulli(0.5, 2, {dtype = 'f16'}) end, "bernoulli: option 'dtype'")
    raises(function() usagi.bernoulli(0.5, 2, {p = 1}) end, "bernoulli: unknown option 'p'")
  end)
end)

describe('multinomial', function()
  it('draws 1-based indices with replacement in proportion to the weights', function()
    usagi.manual_seed(30)
    local w = usagi.tensor({1, 2, 0, 7})
    local d = usagi.multinomial(w, 100000, true)
    check_shape(d, 'i32', 100000)
    local count = {0, 0, 0, 0}
    for _, k in ipairs(d:totable()) do count[k] = count[k] + 1 end
    assert.are.equal(0, count[3])
    near(count[1] / 1e5, 0.1, 0.006, 'w=1')
    near(count[2] / 1e5, 0.2, 0.008, 'w=2')
    near(count[4] / 1e5, 0.7, 0.009, 'w=7')
    local rows = w:multinomial(3, true)
    check_shape(rows, 'i32', 3)
    check_shape(usagi.multinomial(usagi.ones(5, 4), 6, true), 'i32', 5, 6)
  end)

  it('draws without replacement by default', function()
    usagi.manual_seed(31)
    local w = usagi.tensor({{1, 1, 1, 1}, {4, 3, 2, 1}})
    local d = usagi.multinomial(w, 4)
    check_shape(d, 'i32', 2, 4)
    for _, row in ipairs(d:totable()) do
      table.sort(row)
      assert.are.same({1, 2, 3, 4}, row)
    end
    for _ = 1, 20 do
      local two = usagi.tensor({0, 5, 0, 5}):multinomial(2, false):totable()
      table.sort(two)
      assert.are.same({2, 4}, two)
    end
  end)

  it('rejects bad weights and counts', function()
    local w = usagi.tensor({1, 2, 3})
    raises(function() usagi.multinomial(w, 4) end,
           'multinomial: n must be <= 3 (the number of categories) without replacement, got 4')
    raises(function() usagi.multinomial(w, -1, true) end, 'multinomial: n must be >= 0')
    raises(function() usagi.multinomial(usagi.tensor({1, -1}), 1) end,
           'multinomial: weights must be finite and >= 0, got -1 at row 1, column 2')
    raises(function() usagi.multinomial(usagi.tensor({1, 0 / 0}), 1) end, 'multinomial: weights must be finite')
    raises(function() usagi.multinomial(usagi.tensor({{1, 1}, {0, 0}}), 1) end,
           'multinomial: each row of weights must have a positive finite sum, row 2 sums to 0')
    raises(function() usagi.multinomial(usagi.tensor({0, 1, 0}), 2) end,
           'multinomial: row 1 has 1 categories with positive weight')
    raises(function() usagi.multinomial(usagi.zeros(1, 1, 2), 1) end,
           'multinomial: weights must be (C) or (R, C), got (1, 1, 2)')
    raises(function() usagi.multinomial(w, 1, 'yes') end, 'multinomial', 'boolean expected')
    raises(function() usagi.multinomial(w, 1.5) end, 'multinomial')
    raises(function() usagi.multinomial({1, 2}, 1) end, 'multinomial', 'usagi.Tensor expected')
  end)
end)

describe('randperm', function()
  it('is a permutation of 1..n', function()
    usagi.manual_seed(40)
    local p = usagi.randperm(100)
    check_shape(p, 'i32', 100)
    local v = p:totable()
    local moved = 0
    for i = 1, 100 do if v[i] ~= i then moved = moved + 1 end end
    assert(moved > 80, 'a shuffle moves most elements')
    table.sort(v)
    for i = 1, 100 do assert.are.equal(i, v[i]) end
    check_shape(usagi.randperm(0), 'i32', 0)
    assert.are.same({1}, usagi.randperm(1):totable())
  end)

  it('rejects a bad n', function()
    raises(function() usagi.randperm(-1) end, 'randperm: n must be in 0..2147483647, got -1')
    raises(function() usagi.randperm(2 ^ 31 // 1) end, 'randperm: n must be in')
    raises(function() usagi.randperm('x') end, 'randperm')
  end)
end)

describe('dropout', function()
  it('zeroes with probability p and scales the rest by 1 / (1 - p)', function()
    usagi.manual_seed(50)
    local x = usagi.full(400, 250, 3)
    local out, mask = usagi.dropout(x, 0.25)
    check_shape(out, 'f32', 400, 250)
    check_shape(mask, 'f32', 400, 250)
    local o, m = flat(out), flat(mask)
    for i = 1, #o do
      assert(m[i] == 0 or m[i] == 1)
      assert.are.equal(m[i] * 4, o[i])       -- 3 / 0.75
    end
    near(mean(mask), 0.75, 0.006, 'keep rate')
    local o2 = x:dropout(0.5)
    check_shape(o2, 'f32', 400, 250)
  end)

  it('copies without drawing when p = 0 or when not training', function()
    usagi.manual_seed(51)
    local x = usagi.tensor({1, -2, 3})
    local s = usagi.get_rng_state()
    local out, mask = usagi.dropout(x, 0)
    assert.are.same({1, -2, 3}, out:totable())
    assert.are.same({1, 1, 1}, mask:totable())
    local e, none = usagi.dropout(x, 0.9, false)
    assert.are.same({1, -2, 3}, e:totable())
    assert.is_nil(none)
    assert.is_false(rawequal(e, x))
    e:fill_(0)
    assert.are.same({1, -2, 3}, x:totable())
    assert.are.same(s, usagi.get_rng_state())
  end)

  it('rejects a bad p or input', function()
    local x = usagi.ones(3)
    raises(function() usagi.dropout(x, 1) end, 'dropout: p must be in [0, 1), got 1')
    raises(function() usagi.dropout(x, -0.1) end, 'dropout: p must be in [0, 1)')
    raises(function() usagi.dropout(x, 1, false) end, 'dropout: p must be in [0, 1), got 1')
    raises(function() usagi.dropout(x, 0 / 0) end, 'dropout: p must be in [0, 1)')
    raises(function() usagi.dropout(usagi.ones(2, {dtype = 'i32'}), 0.5) end,
           'dropout: input must be f32 or f64, got i32')
    raises(function() usagi.dropout(usagi.ones(2, {dtype = 'i32'}), 0.5, false) end, 'dropout: input')
    raises(function() usagi.dropout(x) end, 'dropout', 'number expected')
    raises(function() usagi.dropout(x, 0.5, 1) end, 'dropout', 'boolean expected')
  end)
end)
