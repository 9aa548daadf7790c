local usagi = require 'usagi'

-- Specs of the Tensor type (host/lua/tensor_lua.c, print_lua.c over
-- host/core/tensor.c): creation, queries, views that share memory, copies,
-- conversion, 1-based indexing and slicing, assignment, and printing.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local shape, raises = h.shape, h.raises

local nan = 0 / 0

local function near(want, got, tol)
  assert.is_true(math.abs(want - got) <= (tol or 1e-6), ('want %.9g, got %.9g'):format(want, got))
end

local function m23() return usagi.tensor { { 1, 2, 3 }, { 4, 5, 6 } } end

-- ==== Creation =============================================================

describe('usagi.tensor', function()
  it('copies a nested table, f32 by default', function()
    local t = m23()
    assert.is_true(usagi.is_tensor(t))
    assert.are.equal('f32', t:dtype())
    assert.are.same({ 2, 3 }, shape(t))
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    assert.are.same({ 7, 8 }, usagi.tensor({ 7, 8 }):totable())
  end)

  it('keeps f32 rounding and f64 precision', function()
    local x = 0.1
    assert.are_not.equal(x, usagi.tensor({ x }):totable()[1])
    assert.are.equal(x, usagi.tensor({ x }, 'f64'):totable()[1])
  end)

  it('takes a dtype as a string or as {dtype=}', function()
    assert.are.equal('f64', usagi.tensor({ 1 }, 'f64'):dtype())
    assert.are.equal('i32', usagi.tensor({ 1 }, { dtype = 'i32' }):dtype())
    local i = usagi.tensor({ 1.9, -1.9, 7 }, 'i32')
    assert.are.same({ 1, -1, 7 }, i:totable())          -- toward zero, as .int()
    assert.are.equal('integer', math.type(i:totable()[3]))
    raises(function() return usagi.tensor({ 1 }, 'f16') end, 'dtype', 'f16')
  end)

  it('makes a 3-D tensor and an empty one', function()
    local t = usagi.tensor { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
    assert.are.same({ 2, 2, 2 }, shape(t))
    assert.are.equal(7, t[{ 2, 2, 1 }])
    local e = usagi.tensor {}
    assert.are.same({ 0 }, shape(e))
    assert.are.equal(0, e:numel())
    assert.are.same({ 2, 0 }, shape(usagi.tensor { {}, {} }))
  end)

  it('refuses ragged and non-numeric tables', function()
    raises(function() return usagi.tensor { { 1, 2 }, { 3 } } end, 'tensor', 'ragged')
    raises(function() return usagi.tensor { { 1, 2 }, 3 } end, 'tensor')
    raises(function() return usagi.tensor { 1, { 2 } } end, 'tensor')
    raises(function() return usagi.tensor { 1, 'x' } end, 'tensor')
    raises(function() return usagi.tensor { { 1 }, { true } } end, 'tensor')
    raises(function() return usagi.tensor 'x' end, 'bad argument #1')
  end)

  it('usagi.tensor(2, 3) gives zeros, as torch.Tensor(2, 3)', function()
    local t = usagi.tensor(2, 3)
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, t:totable())
    assert.are.equal('f32', t:dtype())
    assert.are.equal('i32', usagi.tensor(2, 'i32'):dtype())
    assert.are.same({ 0, 0 }, usagi.Tensor(2):totable())
  end)

  it('copies a tensor (never aliases it)', function()
    local a = m23()
    local b = usagi.tensor(a)
    b[1][1] = 100
    assert.are.equal(1, a[1][1])
    local c = usagi.tensor(a, 'f64')
    assert.are.equal('f64', c:dtype())
    assert.are.same(a:totable(), c:totable())
  end)
end)

describe('zeros, ones, full', function()
  it('take sizes as numbers or as a table', function()
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, usagi.zeros(2, 3):totable())
    assert.are.same({ { 1, 1 }, { 1, 1 }, { 1, 1 } }, usagi.ones { 3, 2 }:totable())
    assert.are.same({ { 7.5, 7.5, 7.5 } }, usagi.full(1, 3, 7.5):totable())
    assert.are.same({ { 7.5 }, { 7.5 } }, usagi.full({ 2, 1 }, 7.5):totable())
    assert.are.same({ 2, 3 }, shape(usagi.zeros(m23():size())))  -- a usagi.Size
  end)

  it('take a dtype as a string or {dtype=}', function()
    assert.are.equal('f64', usagi.zeros(2, 'f64'):dtype())
    assert.are.equal('i32', usagi.ones({ 2 }, { dtype = 'i32' }):dtype())
    assert.are.equal('f64', usagi.full(2, 3, 1.5, 'f64'):dtype())
    assert.are.equal('i32', usagi.full({ 2 }, 4, { dtype = 'i32' }):dtype())
    assert.are.same({ 4, 4 }, usagi.full({ 2 }, 4, { dtype = 'i32' }):totable())
    assert.are.equal('f32', usagi.zeros(2):dtype())
  end)

  it('make a 0-dim tensor from no sizes', function()
    local z = usagi.zeros()
    assert.are.equal(0, z:dim())
    assert.are.equal(1, z:numel())
    assert.are.equal(0, z:item())
    assert.are.equal(5, usagi.full({}, 5):item())
  end)

  it('refuse bad sizes', function()
    raises(function() return usagi.zeros(-1) end, 'bad argument', 'non-negative')
    raises(function() return usagi.ones(2.5) end, 'non-negative integers')
    raises(function() return usagi.zeros(2 ^ 40) end, 'zeros', 'too large')
    raises(function() return usagi.ones(2 ^ 40) end, 'ones')
    raises(function() return usagi.full() end, 'full')
  end)

  it('read a shape to its end, options after it by name', function()
    assert.are.same({ 2, 3 }, shape(usagi.full(2, 3, 7.5)))
    assert.are.equal(7.5, usagi.full({ 2 }, 7.5, 'f64')[1])
    assert.are.equal('f64', usagi.zeros({ 2 }, { dtype = 'f64' }):dtype())
    raises(function() return usagi.zeros(2, 3, true) end, "bad argument #3 to 'zeros'", 'dtype')
    raises(function() return usagi.zeros(2, { dtype = 'f64', dtpye = 1 }) end,
      "zeros: unknown option 'dtpye' (expected dtype)")
    raises(function() return usagi.ones(2, 'f64', 3) end, "bad argument #3 to 'ones'", 'unexpected argument')
    raises(function() return usagi.view(usagi.zeros(2, 3), 6, 'x') end, "bad argument #3 to 'view'",
      'unexpected argument after the shape')
    raises(function() return usagi.view(usagi.zeros(2, 3), 2.5, -1) end, "bad argument #2 to 'view'", 'integers')
    raises(function() return usagi.zeros(2, 3):permute { 1, 5 } end, "'permute'", 'dim 5 out of range')
    raises(function() return usagi.cat({ usagi.zeros(2) }, 1, 2) end, "bad argument #3 to 'cat'",
      'unexpected argument')
  end)

  it('zeros_like and ones_like keep shape and dtype, or take a dtype', function()
    local a = usagi.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, 'f64')
    local z, o = usagi.zeros_like(a), usagi.ones_like(a)
    assert.are.same({ 3, 2 }, shape(z))
    assert.are.equal('f64', z:dtype())
    assert.are.same({ { 0, 0 }, { 0, 0 }, { 0, 0 } }, z:totable())
    assert.are.same({ { 1, 1 }, { 1, 1 }, { 1, 1 } }, o:totable())
    assert.are.equal('i32', usagi.ones_like(a, 'i32'):dtype())
    assert.are.equal('f32', usagi.zeros_like(a, { dtype = 'f32' }):dtype())
  end)
end)

describe('arange, linspace, eye', function()
  it('arange is [start, stop), i32 for integer arguments', function()
    local a = usagi.arange(5)
    assert.are.equal('i32', a:dtype())
    assert.are.same({ 0, 1, 2, 3, 4 }, a:totable())
    assert.are.same({ 2, 4, 6, 8 }, usagi.arange(2, 10, 2):totable())
    assert.are.same({ 5, 3, 1 }, usagi.arange(5, 0, -2):totable())
    assert.are.same({ 0 }, shape(usagi.arange(3, 3)))
  end)

  it('arange is f32 when an argument is a float', function()
    local a = usagi.arange(0, 1, 0.25)
    assert.are.equal('f32', a:dtype())
    assert.are.same({ 0, 0.25, 0.5, 0.75 }, a:totable())
    assert.are.equal('f32', usagi.arange(3.0):dtype())
    assert.are.equal('f64', usagi.arange(3, 'f64'):dtype())
    raises(function() return usagi.arange(0, 1, 0) end, 'arange')
    -- the type named is that of the missing argument, not of a buffer
    raises(function() return usagi.arange() end, 'arange', 'number expected, got no value')
    raises(function() return usagi.arange(1, 2, 3, 'f16') end, 'arange', "got 'f16'")
  end)

  it('linspace includes both ends', function()
    local l = usagi.linspace(0, 1, 5)
    assert.are.equal('f32', l:dtype())
    assert.are.same({ 0, 0.25, 0.5, 0.75, 1 }, l:totable())
    assert.are.same({ 2, 2 + 1 / 3, 2 + 2 / 3, 3 }, usagi.linspace(2, 3, 4, 'f64'):totable())
    raises(function() return usagi.linspace(0, 1, -1) end, 'linspace')
  end)

  it('eye is square or (n, m)', function()
    assert.are.same({ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }, usagi.eye(3):totable())
    assert.are.same({ { 1, 0, 0 }, { 0, 1, 0 } }, usagi.eye(2, 3):totable())
    assert.are.equal('f64', usagi.eye(2, 'f64'):dtype())
    assert.are.equal('i32', usagi.eye(2, 2, { dtype = 'i32' }):dtype())
    raises(function() return usagi.eye(-1) end, 'eye')
  end)
end)

-- ==== Queries ==============================================================

describe('size, dim, numel, dtype, stride, item', function()
  it('size() is a usagi.Size that prints and compares', function()
    local t = m23()
    local s = t:size()
    assert.are.equal('(2, 3)', tostring(s))
    assert.are.equal(2, s[1])
    assert.are.equal(3, s[2])
    assert.are.equal(2, #s)
    assert.is_true(s == usagi.zeros(2, 3):size())
    assert.is_false(s == usagi.zeros(3, 2):size())
    assert.is_false(s == usagi.zeros(2, 3, 1):size())
    assert.are.equal('(4,)', tostring(usagi.zeros(4):size()))
    assert.are.equal('()', tostring(usagi.zeros():size()))
  end)

  it('#t is the size, as in Torch7', function()
    local t = m23()
    assert.are.equal('(2, 3)', tostring(#t))
    assert.is_true(#t == t:size())
  end)

  it('size(d) takes 1-based and negative dims', function()
    local t = usagi.zeros(2, 3, 4)
    assert.are.equal(2, t:size(1))
    assert.are.equal(4, t:size(3))
    assert.are.equal(4, t:size(-1))
    assert.are.equal(2, t:size(-3))
    raises(function() return t:size(4) end, 'dim 4', '3-D')
    raises(function() return t:size(0) end, 'dim 0')
  end)

  it('dim, numel, nelement, dtype', function()
    local t = usagi.zeros(2, 3, 4, 'f64')
    assert.are.equal(3, t:dim())
    assert.are.equal(24, t:numel())
    assert.are.equal(24, t:nelement())
    assert.are.equal(24, usagi.numel(t))
    assert.are.equal('f64', t:dtype())
    assert.are.equal(0, usagi.zeros(0, 5):numel())
  end)

  it('stride is in elements, row-major for a new tensor', function()
    local t = usagi.zeros(2, 3, 4)
    assert.are.same({ 12, 4, 1 }, t:stride())
    assert.are.equal(4, t:stride(2))
    assert.are.equal(1, t:stride(-1))
    assert.are.same({ 1, 4 }, usagi.zeros(3, 4):t():stride())
    assert.are.same({ 0, 1 }, usagi.zeros(1, 4):expand(3, 4):stride())
  end)

  it('item gives the one element, a float or an integer', function()
    assert.are.equal(2.5, usagi.tensor({ 2.5 }):item())
    assert.are.equal(6, m23()[{ 2, 3 }])
    local i = usagi.tensor({ { 7 } }, 'i32'):item()
    assert.are.equal(7, i)
    assert.are.equal('integer', math.type(i))
    assert.are.equal('float', math.type(usagi.tensor({ 7 }):item()))
    raises(function() return m23():item() end, 'item', '(2, 3)')
  end)

  it('totable round-trips, also through views', function()
    local tbl = { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
    assert.are.same(tbl, usagi.tensor(tbl):totable())
    assert.are.same(tbl, usagi.tensor(usagi.tensor(tbl):totable()):totable())
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, m23():t():totable())
    assert.are.equal(3, usagi.full({}, 3):totable())   -- 0-dim: the number
    raises(function() return usagi.ones(1):expand(2 ^ 40):totable() end, 'totable', 'too many')
  end)
end)

-- ==== Views ================================================================

-- v is a view of p: writing v changes p (and the other way round).
local function shares(p, v)
  local before = p:clone()
  v:fill_(-7)
  assert.is_false(usagi.equal(before, p), 'the parent did not change')
  p:fill_(3)
  for _, x in ipairs(v:contiguous():view(-1):totable()) do assert.are.equal(3, x) end
end

describe('views share memory with their parent', function()
  it('view and reshape(-1)', function()
    local p = m23()
    local v = p:view(3, 2)
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, v:totable())
    v[{ 1, 2 }] = 20
    assert.are.equal(20, p[{ 1, 2 }])
    local r = p:reshape(-1)
    assert.are.same({ 6 }, shape(r))
    r[6] = 60
    assert.are.equal(60, p[{ 2, 3 }])
    assert.are.same({ 2, 3 }, shape(p:view(-1, 3)))
    assert.are.same({ 2, 3 }, shape(p:view { 2, -1 }))
    shares(p, p:view(6))
  end)

  it('view refuses what the strides cannot express; reshape then copies', function()
    local p = m23()
    raises(function() return p:t():view(6) end, 'view')
    raises(function() return p:view(4, 2) end, 'view', '(4, 2)')
    local r = p:t():reshape(6)
    assert.are.same({ 1, 4, 2, 5, 3, 6 }, r:totable())
    r[1] = 99
    assert.are.equal(1, p[{ 1, 1 }])   -- a copy, not a view
  end)

  it('transpose, t and permute', function()
    local p = m23()
    local tt = p:t()
    assert.are.same({ 3, 2 }, shape(tt))
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, tt:totable())
    assert.is_false(tt:is_contiguous())
    tt[{ 3, 1 }] = 30
    assert.are.equal(30, p[{ 1, 3 }])
    shares(p, p:transpose(1, 2))
    local q = usagi.arange(24):view(2, 3, 4)
    local pq = q:permute(3, 1, 2)
    assert.are.same({ 4, 2, 3 }, shape(pq))
    assert.are.equal(q[{ 2, 3, 4 }], pq[{ 4, 2, 3 }])
    assert.are.same({ 4, 2, 3 }, shape(q:permute { 3, 1, 2 }))
    shares(q, pq)
    raises(function() return q:t() end, 't', '2-D')
    raises(function() return q:permute(1, 2) end, 'permute')
    raises(function() return q:permute(1, 1, 2) end, 'permute')
  end)

  it('narrow and select (1-based)', function()
    local p = m23()
    local n = p:narrow(2, 2, 2)
    assert.are.same({ { 2, 3 }, { 5, 6 } }, n:totable())
    n[{ 2, 1 }] = 50
    assert.are.equal(50, p[{ 2, 2 }])
    local s = p:select(1, 2)
    assert.are.same({ 4, 50, 6 }, s:totable())
    assert.are.same({ 3, 6 }, p:select(2, -1):totable())
    s[3] = 66
    assert.are.equal(66, p[{ 2, 3 }])
    shares(p, p:narrow(1, 1, 1))
    raises(function() return p:narrow(2, 3, 2) end, 'narrow')
    raises(function() return p:narrow(2, 0, 1) end, 'narrow')
    raises(function() return p:select(1, 3) end, 'select')
  end)

  it('unsqueeze, squeeze and expand', function()
    local p = usagi.tensor { 1, 2, 3 }
    local u = p:unsqueeze(1)
    assert.are.same({ 1, 3 }, shape(u))
    assert.are.same({ 3, 1 }, shape(p:unsqueeze(2)))
    assert.are.same({ 3, 1 }, shape(p:unsqueeze(-1)))
    shares(p, u)
    local q = usagi.zeros(1, 3, 1)
    assert.are.same({ 3 }, shape(q:squeeze()))
    assert.are.same({ 3, 1 }, shape(q:squeeze(1)))
    shares(q, q:squeeze())
    local c = usagi.tensor { { 1 }, { 2 } }
    local e = c:expand(2, 3)
    assert.are.same({ { 1, 1, 1 }, { 2, 2, 2 } }, e:totable())
    assert.are.same({ 2, 3 }, shape(c:expand(usagi.zeros(2, 3))))
    assert.are.same({ 2, 3 }, shape(c:expand_as(usagi.zeros(2, 3))))
    c[{ 2, 1 }] = 9
    assert.are.same({ 9, 9, 9 }, e[2]:totable())
    raises(function() return c:expand(3, 3) end, 'expand')
  end)

  it('a view outlives its parent', function()
    local v
    do
      local p = usagi.arange(10, 'f64')
      v = p:narrow(1, 8, 3)
    end
    collectgarbage(); collectgarbage()
    assert.are.same({ 7, 8, 9 }, v:totable())
  end)
end)

describe('copies and conversion', function()
  it('contiguous copies a non-contiguous view and returns a contiguous one as is', function()
    local p = m23()
    local c = p:t():contiguous()
    assert.is_true(c:is_contiguous())
    assert.are.same({ 2, 1 }, c:stride())
    c[{ 1, 1 }] = 100
    assert.are.equal(1, p[{ 1, 1 }])
    local same = p:contiguous()
    same[{ 1, 1 }] = 100
    assert.are.equal(100, p[{ 1, 1 }])  -- already contiguous: the same memory
  end)

  it('clone is independent', function()
    local p = m23()
    local c = p:clone()
    c:fill_(0)
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, p:totable())
    assert.are.same({ 3, 2 }, shape(p:t():clone()))
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, p:t():clone():totable())
  end)

  it(':float(), :double(), :int() and :to() convert', function()
    local p = usagi.tensor { 1.5, -2.5, 3 }
    local d = p:double()
    assert.are.equal('f64', d:dtype())
    assert.are.same({ 1.5, -2.5, 3 }, d:totable())
    local i = p:int()
    assert.are.equal('i32', i:dtype())
    assert.are.same({ 1, -2, 3 }, i:totable())
    assert.are.equal('f32', i:float():dtype())
    assert.are.equal('f64', p:to('f64'):dtype())
    assert.are.equal('f32', i:to():dtype())
    d[1] = 100
    assert.are.equal(1.5, p[1])        -- a converted copy
    assert.are.equal(p, p:float())     -- the same dtype: the same tensor, as Torch7
    raises(function() return p:to('x') end, 'dtype')
  end)

  it('copy_, fill_ and zero_ work in place and return self', function()
    local p = usagi.zeros(2, 3)
    assert.are.equal(p, p:copy_(m23()))
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, p:totable())
    assert.are.equal(p, p:copy_(usagi.tensor { 7, 8, 9 }))   -- broadcast
    assert.are.same({ { 7, 8, 9 }, { 7, 8, 9 } }, p:totable())
    assert.are.equal(p, p:copy_(5))
    assert.are.same({ { 5, 5, 5 }, { 5, 5, 5 } }, p:totable())
    assert.are.equal(p, p:fill_(2.5))
    assert.are.same({ { 2.5, 2.5, 2.5 }, { 2.5, 2.5, 2.5 } }, p:totable())
    assert.are.equal(p, p:zero_())
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, p:totable())
    p:t():copy_(usagi.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } })   -- into a view
    assert.are.same({ { 1, 3, 5 }, { 2, 4, 6 } }, p:totable())
    local i = usagi.zeros(2, 'i32'):copy_(usagi.tensor { 1.7, -1.7 })
    assert.are.same({ 1, -1 }, i:totable())
    raises(function() return p:copy_(usagi.zeros(3, 2)) end, 'copy', '(3, 2)', '(2, 3)')
  end)
end)

-- ==== Indexing =============================================================

describe('indexing', function()
  it('t[i] is a number for 1-D and a row view for 2-D', function()
    local v = usagi.tensor { 10, 20, 30 }
    assert.are.equal(10, v[1])
    assert.are.equal(30, v[3])
    assert.are.equal('number', type(v[2]))
    local p = m23()
    local row = p[2]
    assert.is_true(usagi.is_tensor(row))
    assert.are.same({ 4, 5, 6 }, row:totable())
    row[1] = 40
    assert.are.equal(40, p[{ 2, 1 }])
    assert.are.equal(5, p[2][2])
    assert.are.equal('integer', math.type(usagi.tensor({ 3 }, 'i32')[1]))
  end)

  it('negative indices count from the end', function()
    local v = usagi.tensor { 10, 20, 30 }
    assert.are.equal(30, v[-1])
    assert.are.equal(10, v[-3])
    assert.are.same({ 4, 5, 6 }, m23()[-1]:totable())
    assert.are.equal(5, m23()[{ -1, -2 }])
  end)

  it('t[{i, j}] is a number', function()
    local p = m23()
    assert.are.equal(6, p[{ 2, 3 }])
    assert.are.equal(2, p[{ 1, 2 }])
    assert.are.equal('number', type(p[{ 1, 1 }]))
  end)

  it('ranges {a}, {a, b} and {} slice', function()
    local p = usagi.arange(1, 13):view(3, 4)
    assert.are.same({ { 2, 3 }, { 6, 7 }, { 10, 11 } }, p[{ {}, { 2, 3 } }]:totable())
    assert.are.same({ { 5, 6, 7, 8 } }, p[{ { 2 } }]:totable())          -- {a}: one, kept
    assert.are.same({ { 5, 6, 7, 8 }, { 9, 10, 11, 12 } }, p[{ { 2, 3 } }]:totable())
    assert.are.same({ 5, 6, 7, 8 }, p[{ 2 }]:totable())                 -- a number selects
    assert.are.same({ 3, 7, 11 }, p[{ {}, 3 }]:totable())
    assert.are.same({ { 11, 12 } }, p[{ { -1 }, { -2, -1 } }]:totable())
    assert.are.same({ 0, 4 }, shape(p[{ { 2, 1 } }]))                   -- empty range
    local s = p[{ { 2, 3 }, { 2, 3 } }]
    s:fill_(0)
    assert.are.same({ { 1, 2, 3, 4 }, { 5, 0, 0, 8 }, { 9, 0, 0, 12 } }, p:totable())
  end)

  it('assignment of a number or a tensor', function()
    local v = usagi.zeros(3)
    v[2] = 5
    assert.are.same({ 0, 5, 0 }, v:totable())
    v[-1] = 7
    assert.are.same({ 0, 5, 7 }, v:totable())
    local p = usagi.zeros(2, 3)
    p[1] = 1                                     -- a whole row
    assert.are.same({ { 1, 1, 1 }, { 0, 0, 0 } }, p:totable())
    p[{ 2, 3 }] = 9
    assert.are.equal(9, p[{ 2, 3 }])
    p[{ {}, 2 }] = usagi.tensor { 4, 5 }
    assert.are.same({ { 1, 4, 1 }, { 0, 5, 9 } }, p:totable())
    p[{ {}, { 1, 2 } }] = usagi.tensor { { 7, 8 }, { 9, 10 } }
    assert.are.same({ { 7, 8, 1 }, { 9, 10, 9 } }, p:totable())
    p[2] = usagi.tensor { 1, 2, 3 }
    assert.are.same({ 1, 2, 3 }, p[2]:totable())
    raises(function() p[1] = 'x' end, 'index assignment')
    raises(function() p[{ {}, 2 }] = usagi.zeros(3) end, 'index assignment', '(3,)', '(2,)')
  end)

  it('out of range is an error naming index', function()
    local p = m23()
    raises(function() return p[3] end, 'index', '3')
    raises(function() return p[0] end, 'index')
    raises(function() return p[-3] end, 'index')
    raises(function() return p[{ 1, 4 }] end, 'index', '4', 'dim 2 of size 3')
    raises(function() return p[{ 1, 1, 1 }] end, 'index', '3 indices', '2-D')
    raises(function() return p[{ {}, { 2, 5 } }] end, 'index', 'range {2, 5}', 'dim 2')
    raises(function() return p[1.5] end, 'index')
    raises(function() return p[true] end, 'index')
    raises(function() p[3] = 1 end, 'index')
    raises(function() return usagi.full({}, 1)[1] end, 'index', '0-dim')
  end)

  it('method names still work as fields', function()
    local p = m23()
    assert.are.equal('function', type(p.size))
    assert.is_nil(p.no_such_method)
  end)
end)

-- ==== Printing =============================================================

describe('tostring', function()
  it('shows the values and a footer with dtype and shape', function()
    local s = tostring(m23())
    assert.is_truthy(s:find('[usagi.Tensor f32 (2, 3)]', 1, true), s)
    for _, v in ipairs { '1', '2', '3', '4', '5', '6' } do assert.is_truthy(s:find(v, 1, true)) end
    local lines = {}
    for l in s:gmatch('[^\n]+') do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    assert.is_truthy(lines[1]:find('^%s*1%s+2%s+3$'), lines[1])
    assert.is_truthy(lines[2]:find('^%s*4%s+5%s+6$'), lines[2])
  end)

  it('uses decimals for fractions and integers for i32', function()
    local s = tostring(usagi.tensor { 1.5, 0.25 })
    assert.is_truthy(s:find('1.5000', 1, true), s)
    assert.is_truthy(s:find('0.2500', 1, true), s)
    local i = tostring(usagi.tensor({ 3, -4 }, 'i32'))
    local values = i:match('^[^\n]*')
    assert.is_truthy(values:find('-4', 1, true) and not values:find('.', 1, true), i)
    assert.is_truthy(i:find('[usagi.Tensor i32 (2,)]', 1, true), i)
    local n = tostring(usagi.tensor { nan, math.huge, 1 })
    assert.is_truthy(n:find('nan') and n:find('inf'), n)
  end)

  it('shows each matrix of a 3-D tensor in a "(i,.,.) =" block', function()
    local s = tostring(usagi.arange(60):view(3, 4, 5))
    for i = 1, 3 do assert.is_truthy(s:find(('(%d,.,.) ='):format(i), 1, true), s) end
    assert.is_falsy(s:find('(4,.,.)', 1, true))
    assert.is_truthy(s:find('59', 1, true))
    assert.is_truthy(s:find('[usagi.Tensor i32 (3, 4, 5)]', 1, true))
    local s4 = tostring(usagi.zeros(2, 2, 2, 2))
    assert.is_truthy(s4:find('(2,1,.,.) =', 1, true), s4)
  end)

  it('elides a 100x100 tensor with "..." and stays short', function()
    local t = usagi.arange(10000):view(100, 100)
    local s = tostring(t)
    assert.is_truthy(s:find('...', 1, true))
    assert.is_true(#s < 1000, #s .. ' characters')
    assert.is_truthy(s:find('9999', 1, true))         -- the last element is shown
    assert.is_falsy(s:find('5050', 1, true))          -- a middle one is not
    assert.is_truthy(s:find('[usagi.Tensor i32 (100, 100)]', 1, true))
  end)

  it('prints a huge expanded tensor quickly', function()
    local t = usagi.ones(1):expand(2 ^ 40)
    local t0 = os.clock()
    local s = tostring(t)
    assert.is_true(os.clock() - t0 < 1)
    assert.is_truthy(s:find('...', 1, true))
  end)

  it('prints empty, 0-dim and view tensors', function()
    assert.is_truthy(tostring(usagi.zeros(0, 3)):find('[usagi.Tensor f32 (0, 3)]', 1, true))
    local z = tostring(usagi.full({}, 2.5))
    assert.is_truthy(z:find('2.5', 1, true) and z:find('()', 1, true), z)
    local v = tostring(m23():t())
    assert.is_truthy(v:find('^%s*1%s+4\n%s*2%s+5\n%s*3%s+6\n'), v)
  end)
end)

describe('usagi.frombytes', function()
  it('reads unsigned bytes from an offset into a shape and dtype, scaled', function()
    local s = string.char(7, 7, 0, 1, 128, 255)
    assert.are.same({ { 0, 1 }, { 128, 255 } }, usagi.frombytes(s, { 2, 2 }, { offset = 2, dtype = 'i32' }):totable())
    local f = usagi.frombytes(s, 4, { offset = 2, scale = 1 / 255 })
    assert.are.equal('f32', f:dtype())
    assert.is_true(math.abs(f[4] - 1) < 1e-7 and f[1] == 0)
    assert.are.equal('f64', usagi.frombytes(s, { 6 }, { dtype = 'f64' }):dtype())
  end)

  it('names what it expected and what came', function()
    local s = string.char(1, 2, 3)
    local ok, err = pcall(usagi.frombytes, s, { 2, 2 })
    assert.is_false(ok)
    assert.is_truthy(err:find("frombytes: the shape needs more bytes from offset 0 than the string's 3", 1, true))
    ok, err = pcall(usagi.frombytes, s, { 2 ^ 62 // 1, 4 })
    assert.is_truthy(err:find('frombytes: the shape needs more bytes', 1, true))
    assert.are.same({ 0, 5 }, h.shape(usagi.frombytes(s, { 0, 5 })))
    ok, err = pcall(usagi.frombytes, s, { 1 }, { offset = -2 })
    assert.is_truthy(err:find('frombytes: offset must be an integer >= 0, got -2', 1, true))
    ok, err = pcall(usagi.frombytes, s, { 1 }, { stride = 2 })
    assert.is_truthy(err:find("frombytes: unknown option 'stride'", 1, true))
  end)
end)
