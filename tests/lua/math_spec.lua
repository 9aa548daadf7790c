local usagi = require 'usagi'

-- Specs of the math binding (host/ops/math.lua over host/core/elementwise.c
-- and blas.c): operators with numbers on either side and broadcasting,
-- comparisons, every unary function and its in-place variant, clamp, where,
-- allclose / equal, the matrix products, and the threads they are split over.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local near, shape, raises, expect = h.near_nan, h.shape, h.raises, h.expect

local nan, inf = 0 / 0, math.huge

local function m23(dt) return usagi.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt) end

-- ==== Operators ============================================================

describe('operators', function()
  it('+ - * / ^ between tensors', function()
    local a, b = m23(), usagi.tensor { { 6, 5, 4 }, { 3, 2, 1 } }
    expect(a + b, 'f32', { 2, 3 }, { 7, 7, 7, 7, 7, 7 })
    expect(a - b, 'f32', { 2, 3 }, { -5, -3, -1, 1, 3, 5 })
    expect(a * b, 'f32', { 2, 3 }, { 6, 10, 12, 12, 10, 6 })
    expect(a / b, 'f32', { 2, 3 }, { 1 / 6, 2 / 5, 3 / 4, 4 / 3, 5 / 2, 6 })
    expect(a ^ b, 'f32', { 2, 3 }, { 1, 32, 81, 64, 25, 6 })
    expect(-a, 'f32', { 2, 3 }, { -1, -2, -3, -4, -5, -6 })
  end)

  it('a number on either side', function()
    local a = m23()
    expect(a + 1, 'f32', { 2, 3 }, { 2, 3, 4, 5, 6, 7 })
    expect(1 + a, 'f32', { 2, 3 }, { 2, 3, 4, 5, 6, 7 })
    expect(a - 1, 'f32', { 2, 3 }, { 0, 1, 2, 3, 4, 5 })
    expect(10 - a, 'f32', { 2, 3 }, { 9, 8, 7, 6, 5, 4 })
    expect(a * 2, 'f32', { 2, 3 }, { 2, 4, 6, 8, 10, 12 })
    expect(2 * a, 'f32', { 2, 3 }, { 2, 4, 6, 8, 10, 12 })
    expect(a / 2, 'f32', { 2, 3 }, { 0.5, 1, 1.5, 2, 2.5, 3 })
    expect(6 / a, 'f32', { 2, 3 }, { 6, 3, 2, 1.5, 1.2, 1 })
    expect(a ^ 2, 'f32', { 2, 3 }, { 1, 4, 9, 16, 25, 36 })
    expect(2 ^ a, 'f32', { 2, 3 }, { 2, 4, 8, 16, 32, 64 })
    expect(a ^ 0.5, 'f32', { 2, 3 }, { 1, math.sqrt(2), math.sqrt(3), 2, math.sqrt(5), math.sqrt(6) })
  end)

  it('broadcast rows, columns and scalars', function()
    local a = m23()
    expect(a + usagi.tensor { 10, 20, 30 }, 'f32', { 2, 3 }, { 11, 22, 33, 14, 25, 36 })
    expect(usagi.tensor { 10, 20, 30 } + a, 'f32', { 2, 3 }, { 11, 22, 33, 14, 25, 36 })
    expect(a * usagi.tensor { { 1 }, { -1 } }, 'f32', { 2, 3 }, { 1, 2, 3, -4, -5, -6 })
    expect(usagi.tensor { { 1 }, { 2 } } - usagi.tensor { 1, 2, 3 }, 'f32', { 2, 3 },
           { 0, -1, -2, 1, 0, -1 })
    expect(a / usagi.full({}, 2), 'f32', { 2, 3 }, { 0.5, 1, 1.5, 2, 2.5, 3 })
    raises(function() return a + usagi.zeros(2) end, 'add', '(2, 3)', '(2,)')
    raises(function() return usagi.mul(a, usagi.zeros(3, 2)) end, 'mul', '(3, 2)')
  end)

  it('work on views', function()
    local a = m23()
    expect(a:t() + 0, 'f32', { 3, 2 }, { 1, 4, 2, 5, 3, 6 })
    expect(a:t() * a:t(), 'f32', { 3, 2 }, { 1, 16, 4, 25, 9, 36 })
    expect(a[{ {}, { 2, 3 } }] - a[{ {}, { 1, 2 } }], 'f32', { 2, 2 }, { 1, 1, 1, 1 })
  end)

  it('promote dtypes: f64 > f32 > i32, and i32 / i32 is f32', function()
    local i, f, d = m23('i32'), m23('f32'), m23('f64')
    assert.are.equal('i32', (i + i):dtype())
    assert.are.equal('i32', (i * 2):dtype())
    assert.are.equal('f32', (i + 0.5):dtype())
    expect(i + 0.5, 'f32', { 2, 3 }, { 1.5, 2.5, 3.5, 4.5, 5.5, 6.5 })
    assert.are.equal('f32', (i + f):dtype())
    assert.are.equal('f64', (f + d):dtype())
    assert.are.equal('f64', (d * i):dtype())
    expect(i / i, 'f32', { 2, 3 }, { 1, 1, 1, 1, 1, 1 })
    expect(i / 2, 'f32', { 2, 3 }, { 0.5, 1, 1.5, 2, 2.5, 3 })
    expect(-i, 'i32', { 2, 3 }, { -1, -2, -3, -4, -5, -6 })
  end)

  it('functions and methods match the operators', function()
    local a, b = m23(), usagi.tensor { 2, 2, 2 }
    expect(usagi.add(a, b), 'f32', { 2, 3 }, { 3, 4, 5, 6, 7, 8 })
    expect(a:sub(1), 'f32', { 2, 3 }, { 0, 1, 2, 3, 4, 5 })
    expect(usagi.mul(3, a), 'f32', { 2, 3 }, { 3, 6, 9, 12, 15, 18 })
    expect(a:div(b), 'f32', { 2, 3 }, { 0.5, 1, 1.5, 2, 2.5, 3 })
    expect(a:pow(b), 'f32', { 2, 3 }, { 1, 4, 9, 16, 25, 36 })
    expect(usagi.maximum(a, 3), 'f32', { 2, 3 }, { 3, 3, 3, 4, 5, 6 })
    expect(a:minimum(usagi.tensor { { 2 }, { 5 } }), 'f32', { 2, 3 }, { 1, 2, 2, 4, 5, 5 })
    expect(usagi.neg(a), 'f32', { 2, 3 }, { -1, -2, -3, -4, -5, -6 })
  end)

  it('refuse non-tensors and say which argument', function()
    -- a number first is fine when the second is a tensor: the second is wrong
    raises(function() return usagi.add(1, 2) end, 'bad argument #2', 'usagi.Tensor expected, got number')
    raises(function() return usagi.add(nil, 2) end, 'bad argument #1', 'usagi.Tensor or number expected, got nil')
    raises(function() return usagi.add(m23(), 'x') end, 'bad argument #2', 'number')
    raises(function() return m23() + {} end, 'number')
    raises(function() return m23() + true end)
  end)
end)

describe('comparisons', function()
  it('give i32 0/1 with tensors, numbers and broadcasting', function()
    local a = m23()
    expect(a:gt(3), 'i32', { 2, 3 }, { 0, 0, 0, 1, 1, 1 })
    expect(a:ge(3), 'i32', { 2, 3 }, { 0, 0, 1, 1, 1, 1 })
    expect(a:lt(3), 'i32', { 2, 3 }, { 1, 1, 0, 0, 0, 0 })
    expect(a:le(3), 'i32', { 2, 3 }, { 1, 1, 1, 0, 0, 0 })
    expect(a:eq(usagi.tensor { 1, 5, 3 }), 'i32', { 2, 3 }, { 1, 0, 1, 0, 1, 0 })
    expect(usagi.ne(a, usagi.tensor { { 2 }, { 5 } }), 'i32', { 2, 3 }, { 1, 0, 1, 1, 0, 1 })
    expect(usagi.lt(2, a), 'i32', { 2, 3 }, { 0, 0, 1, 1, 1, 1 })   -- 2 < a
    expect(usagi.eq(m23('i32'), m23('f64')), 'i32', { 2, 3 }, { 1, 1, 1, 1, 1, 1 })
  end)

  it('NaN equals nothing', function()
    local n = usagi.tensor { nan, 1 }
    expect(n:eq(n), 'i32', { 2 }, { 0, 1 })
    expect(n:ne(n), 'i32', { 2 }, { 1, 0 })
  end)

  it('== and < are Lua identity and an error, not elementwise', function()
    local a = m23()
    assert.is_true(a == a)
    assert.is_false(a == m23())
    assert.has_error(function() return a < a end)
  end)
end)

-- ==== Unary functions ======================================================

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function round_half_even(x)
  local f = math.floor(x)
  local r = x - f
  if r > 0.5 or (r == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end
local function sign(x) return x > 0 and 1 or x < 0 and -1 or 0 end

local unary = {
  neg = function(x) return -x end,
  abs = math.abs,
  exp = math.exp,
  log = math.log,
  sqrt = math.sqrt,
  tanh = function(x) return (math.exp(x) - math.exp(-x)) / (math.exp(x) + math.exp(-x)) end,
  sigmoid = sigmoid,
  relu = function(x) return math.max(x, 0) end,
  sign = sign,
  floor = math.floor,
  ceil = math.ceil,
  round = round_half_even,
  log1p = function(x) return math.log(1 + x) end,
  sin = math.sin,
  cos = math.cos,
  square = function(x) return x * x end,
  reciprocal = function(x) return 1 / x end,
}
local names = {}
for name in pairs(unary) do names[#names + 1] = name end
table.sort(names)

-- positive values for log/sqrt, values of both signs and halves otherwise
local domain = { log = 'pos', sqrt = 'pos', log1p = 'pos', reciprocal = 'pos' }
local pos_vals = { 0.25, 0.5, 1, 2, 3.5, 10 }
local all_vals = { -2.5, -1.5, -0.5, 0, 0.5, 1.5, 2.5, 3.7 }

describe('unary functions', function()
  for _, name in ipairs(names) do
    it(name .. ' gives the right values in f32 and f64, on views too', function()
      local vals = domain[name] and pos_vals or all_vals
      local want = {}
      for i, v in ipairs(vals) do want[i] = unary[name](v) end
      for _, dt in ipairs { 'f32', 'f64' } do
        local t = usagi.tensor(vals, dt)
        expect(usagi[name](t), dt, { #vals }, want, dt == 'f32' and 1e-6 or 1e-12)
        expect(t[name](t), dt, { #vals }, want, dt == 'f32' and 1e-6 or 1e-12)
        -- a strided view: every other element of a (2, n) transposed
        local two = usagi.tensor({ vals, vals }, dt):t()
        expect(usagi[name](two), dt, { #vals, 2 }, (function()
          local w = {}
          for i = 1, #vals do w[2 * i - 1], w[2 * i] = want[i], want[i] end
          return w
        end)(), dt == 'f32' and 1e-6 or 1e-12)
      end
    end)

    it(name .. '_ works in place and returns self', function()
      local vals = domain[name] and pos_vals or all_vals
      local t = usagi.tensor(vals)
      local want = {}
      for i, v in ipairs(vals) do want[i] = unary[name](v) end
      local r = t[name .. '_'](t)
      assert.are.equal(t, r)
      expect(t, 'f32', { #vals }, want, 1e-6)
      -- in place through a view changes the parent
      local p = usagi.tensor { vals, vals }
      p[2][name .. '_'](p[2])
      expect(p[1], 'f32', { #vals }, vals)
      expect(p[2], 'f32', { #vals }, want, 1e-6)
    end)
  end

  it('special values follow IEEE', function()
    expect(usagi.log(usagi.tensor { 0, -1 }), 'f32', { 2 }, { -inf, nan })
    expect(usagi.sqrt(usagi.tensor { -1 }), 'f32', { 1 }, { nan })
    expect(usagi.exp(usagi.tensor { 1000, -1000 }), 'f32', { 2 }, { inf, 0 })
    expect(usagi.sigmoid(usagi.tensor { -1000, 1000 }), 'f32', { 2 }, { 0, 1 })
    expect(usagi.tanh(usagi.tensor { -1000, 1000 }), 'f32', { 2 }, { -1, 1 })
    expect(usagi.reciprocal(usagi.tensor { 0 }), 'f32', { 1 }, { inf })
    expect(usagi.relu(usagi.tensor { nan }), 'f32', { 1 }, { nan })
  end)

  it('i32 input: exact ops stay i32, the others give f32', function()
    local i = usagi.tensor({ -4, 0, 9 }, 'i32')
    expect(usagi.abs(i), 'i32', { 3 }, { 4, 0, 9 })
    expect(usagi.neg(i), 'i32', { 3 }, { 4, 0, -9 })
    expect(usagi.relu(i), 'i32', { 3 }, { 0, 0, 9 })
    expect(usagi.square(i), 'i32', { 3 }, { 16, 0, 81 })
    expect(usagi.sign(i), 'i32', { 3 }, { -1, 0, 1 })
    expect(usagi.sqrt(usagi.tensor({ 4, 9 }, 'i32')), 'f32', { 2 }, { 2, 3 })
    expect(usagi.exp(usagi.tensor({ 0 }, 'i32')), 'f32', { 1 }, { 1 })
    raises(function() return usagi.tensor({ 4 }, 'i32'):sqrt_() end, 'sqrt_', 'i32')
  end)

  it('empty and 0-dim tensors', function()
    expect(usagi.exp(usagi.zeros(0, 3)), 'f32', { 0, 3 }, {})
    expect(usagi.exp(usagi.full({}, 0)), 'f32', {}, { 1 })
  end)
end)

describe('in-place binary ops', function()
  it('return self, keep the dtype and broadcast the right side', function()
    local a = m23()
    assert.are.equal(a, a:add_(1))
    expect(a, 'f32', { 2, 3 }, { 2, 3, 4, 5, 6, 7 })
    assert.are.equal(a, a:mul_(usagi.tensor { 1, 10, 100 }))
    expect(a, 'f32', { 2, 3 }, { 2, 30, 400, 5, 60, 700 })
    assert.are.equal(a, a:sub_(usagi.tensor { { 2 }, { 5 } }))
    expect(a, 'f32', { 2, 3 }, { 0, 28, 398, 0, 55, 695 })
    a:div_(2):pow_(1)
    expect(a, 'f32', { 2, 3 }, { 0, 14, 199, 0, 27.5, 347.5 })
    local i = m23('i32')
    i:add_(0.5)
    assert.are.equal('i32', i:dtype())
    local g = m23()
    assert.are.equal(g, g:gt_(3))
    expect(g, 'f32', { 2, 3 }, { 0, 0, 0, 1, 1, 1 })
    raises(function() return usagi.zeros(3):add_(usagi.zeros(2, 3)) end, 'add')
  end)

  it('every in-place binary op equals its out-of-place twin, in a float tensor', function()
    local ops = { 'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum',
                  'eq', 'ne', 'lt', 'le', 'gt', 'ge' }
    local b = usagi.tensor { 3, 2, 1 }
    for _, op in ipairs(ops) do
      for _, rhs in ipairs { b, 2 } do
        local a = m23()
        local want = usagi[op](a, rhs):totable()
        local r = a[op .. '_'](a, rhs)
        assert.are.equal(a, r, op .. '_ did not return self')
        assert.are.equal('f32', a:dtype())
        for i = 1, 2 do
          for j = 1, 3 do near(want[i][j], a[{ i, j }], 1e-6, op .. '_ ') end
        end
      end
    end
  end)

  it('write through a transposed view into the parent', function()
    local p = usagi.tensor { { 1, 2 }, { 3, 4 } }
    p:t():add_(usagi.tensor { 10, 20 })
    expect(p, 'f32', { 2, 2 }, { 11, 12, 23, 24 })
  end)
end)

-- ==== clamp, where, allclose, equal ========================================

describe('clamp', function()
  it('takes both bounds, or nil for either', function()
    local a = m23()
    expect(a:clamp(2, 5), 'f32', { 2, 3 }, { 2, 2, 3, 4, 5, 5 })
    expect(a:clamp(3), 'f32', { 2, 3 }, { 3, 3, 3, 4, 5, 6 })
    expect(a:clamp(3, nil), 'f32', { 2, 3 }, { 3, 3, 3, 4, 5, 6 })
    expect(a:clamp(nil, 2), 'f32', { 2, 3 }, { 1, 2, 2, 2, 2, 2 })
    expect(usagi.clamp(a), 'f32', { 2, 3 }, { 1, 2, 3, 4, 5, 6 })
    expect(m23('i32'):clamp(2, 4), 'i32', { 2, 3 }, { 2, 2, 3, 4, 4, 4 })
  end)

  it('clamp_ works in place and returns self', function()
    local a = m23()
    assert.are.equal(a, a:clamp_(nil, 3))
    expect(a, 'f32', { 2, 3 }, { 1, 2, 3, 3, 3, 3 })
    raises(function() return usagi.clamp(a, 'x') end, 'bad argument #2', 'clamp')
  end)
end)

describe('where', function()
  it('picks from tensors or numbers, broadcasting', function()
    local a = m23()
    local c = a:gt(3)
    expect(usagi.where(c, a, 0), 'f32', { 2, 3 }, { 0, 0, 0, 4, 5, 6 })
    expect(usagi.where(c, 0, a), 'f32', { 2, 3 }, { 1, 2, 3, 0, 0, 0 })
    expect(usagi.where(c, 1, -1), 'i32', { 2, 3 }, { -1, -1, -1, 1, 1, 1 })
    expect(usagi.where(c, 0.5, -1), 'f32', { 2, 3 }, { -1, -1, -1, 0.5, 0.5, 0.5 })
    expect(usagi.where(usagi.tensor({ 1, 0, 1 }, 'i32'), a, -a), 'f32', { 2, 3 },
           { 1, -2, 3, 4, -5, 6 })
    expect(usagi.where(usagi.tensor { { 0 }, { 1 } }, a, 2 ^ 40), 'f32', { 2, 3 },
           { 2 ^ 40, 2 ^ 40, 2 ^ 40, 4, 5, 6 })
    raises(function() return usagi.where(c, a, usagi.zeros(3, 2)) end, 'where')
    raises(function() return usagi.where(c, a, 'x') end, 'bad argument #3')
  end)
end)

describe('allclose and equal', function()
  it('allclose uses rtol and atol; NaN is never close', function()
    local a = usagi.tensor { 1, 2, 3 }
    assert.is_true(usagi.allclose(a, a))
    assert.is_true(usagi.allclose(a, a + 1e-7))
    assert.is_false(usagi.allclose(a, a + 1e-3))
    assert.is_true(usagi.allclose(a, a + 1e-3, 1e-2))
    assert.is_true(a:allclose(a + 0.5, 0, 0.5))
    assert.is_false(a:allclose(a + 0.5, 0, 0.4))
    local n = usagi.tensor { 1, nan }
    assert.is_false(usagi.allclose(n, n))
    assert.is_true(usagi.allclose(m23(), usagi.tensor { 1, 2, 3 } + usagi.tensor { { 0 }, { 3 } }))
  end)

  it('equal needs the same shape and values', function()
    assert.is_true(usagi.equal(m23(), m23()))
    assert.is_true(usagi.equal(m23(), m23('f64')))
    assert.is_false(usagi.equal(m23(), m23() + 1e-6))
    assert.is_false(usagi.equal(m23(), m23():view(3, 2)))
    assert.is_false(usagi.equal(usagi.tensor { 1, 2, 3 }, m23()))   -- would broadcast: not equal
    assert.is_true(m23():equal(m23():t():t()))
  end)
end)

-- ==== Matrix products ======================================================

describe('matrix products', function()
  local a = usagi.tensor { { 1, 2, 3 }, { 4, 5, 6 } }          -- (2, 3)
  local b = usagi.tensor { { 7, 8 }, { 9, 10 }, { 11, 12 } }   -- (3, 2)
  local ab = { 58, 64, 139, 154 }
  local ba = { 39, 54, 69, 49, 68, 87, 59, 82, 105 }

  it('mm', function()
    expect(usagi.mm(a, b), 'f32', { 2, 2 }, ab)
    expect(a:mm(b), 'f32', { 2, 2 }, ab)
    expect(b:mm(a), 'f32', { 3, 3 }, ba)
    expect(usagi.mm(a:double(), b:double()), 'f64', { 2, 2 }, ab)
    expect(usagi.mm(usagi.ones(2, 0), usagi.ones(0, 3)), 'f32', { 2, 3 }, { 0, 0, 0, 0, 0, 0 })
  end)

  it('mm with transposed and sliced views', function()
    local at, bt = b:t(), a:t()                                 -- (2, 3), (3, 2) views
    expect(usagi.mm(bt:t(), at:t()), 'f32', { 2, 2 }, ab)
    expect(usagi.mm(at, bt), 'f32', { 2, 2 }, { 58, 139, 64, 154 })   -- (ab)^T
    expect(usagi.mm(a:t(), a), 'f32', { 3, 3 }, { 17, 22, 27, 22, 29, 36, 27, 36, 45 })
    expect(usagi.mm(a, a:t()), 'f32', { 2, 2 }, { 14, 32, 32, 77 })
    local big = usagi.arange(1, 13):float():view(3, 4)
    expect(usagi.mm(big[{ {}, { 2, 3 } }], usagi.eye(2)), 'f32', { 3, 2 },
           { 2, 3, 6, 7, 10, 11 })
    expect(usagi.mm(usagi.ones(1, 3):expand(2, 3), b), 'f32', { 2, 2 }, { 27, 30, 27, 30 })
  end)

  it('mm refuses wrong shapes and dtypes, naming both shapes', function()
    raises(function() return usagi.mm(a, a) end, 'mm', '(2, 3)')
    raises(function() return usagi.mm(a, usagi.zeros(4, 5)) end, 'mm', '(2, 3)', '(4, 5)')
    raises(function() return usagi.mm(a, usagi.zeros(3)) end, 'mm')
    raises(function() return usagi.mm(m23('i32'), b) end, 'mm')
    raises(function() return usagi.mm(a:double(), b) end, 'mm', 'f64')
  end)

  it('bmm multiplies batches', function()
    local x = usagi.stack { a, a * 2 }                          -- (2, 2, 3)
    local y = usagi.stack { b, b:t():t() }                      -- (2, 3, 2)
    expect(usagi.bmm(x, y), 'f32', { 2, 2, 2 }, { 58, 64, 139, 154, 116, 128, 278, 308 })
    expect(x:bmm(y:transpose(2, 3):transpose(2, 3)), 'f32', { 2, 2, 2 },
           { 58, 64, 139, 154, 116, 128, 278, 308 })
    raises(function() return usagi.bmm(x, x) end, 'bmm')
    raises(function() return usagi.bmm(a, b) end, 'bmm')
  end)

  it('matmul promotes 1-D operands and broadcasts batches', function()
    local v = usagi.tensor { 1, 2, 3 }
    expect(usagi.matmul(v, v), 'f32', {}, { 14 })
    expect(usagi.matmul(a, v), 'f32', { 2 }, { 14, 32 })
    expect(usagi.matmul(usagi.tensor { 1, 1 }, a), 'f32', { 3 }, { 5, 7, 9 })
    expect(usagi.matmul(a, b), 'f32', { 2, 2 }, ab)
    local x = usagi.stack { a, a }                              -- (2, 2, 3)
    expect(usagi.matmul(x, b), 'f32', { 2, 2, 2 }, { 58, 64, 139, 154, 58, 64, 139, 154 })
    assert.are.same({ 2, 5, 3, 2 },
                    shape(usagi.matmul(usagi.ones(2, 1, 3, 4), usagi.ones(5, 4, 2))))
    raises(function() return usagi.matmul(v, usagi.ones(2)) end, 'matmul')
    raises(function() return usagi.matmul(usagi.full({}, 1), v) end, 'matmul')
  end)

  it('addmm is beta c + alpha a b, c broadcast', function()
    local c = usagi.tensor { { 1, 1 }, { 1, 1 } }
    expect(usagi.addmm(c, a, b), 'f32', { 2, 2 }, { 59, 65, 140, 155 })
    expect(usagi.addmm(c, a, b, { beta = 2, alpha = 0.5 }), 'f32', { 2, 2 },
           { 31, 34, 71.5, 79 })
    expect(usagi.addmm(usagi.tensor { 1, 2 }, usagi.eye(2), usagi.eye(2), { beta = 2, alpha = 3 }),
           'f32', { 2, 2 }, { 5, 4, 2, 7 })
    expect(usagi.addmm(c, b:t(), a:t(), { beta = 0 }), 'f32', { 2, 2 }, { 58, 139, 64, 154 })
    raises(function() return usagi.addmm(usagi.zeros(3, 3), a, b) end, 'addmm')
    raises(function() return usagi.addmm(c, a, b, { beta = 'x' }) end, 'addmm', 'beta', 'number')
    raises(function() return usagi.addmm(c, a, b, { Beta = 2 }) end, 'addmm', 'unknown option')
    raises(function() return usagi.addmm(c, a, b, 2) end, 'bad argument #4', 'table')
  end)
end)

-- ==== OpenBLAS =============================================================

describe('OpenBLAS', function()
  it('blas_info says which library and how many threads', function()
    local info = usagi.blas_info()
    assert.are.equal('string', type(info.config))
    assert.is_truthy(info.config:find('OpenBLAS', 1, true), info.config)
    assert.are.equal('string', type(info.core))
    assert.is_true(#info.core > 0)
    assert.are.equal('integer', math.type(info.threads))
    assert.is_true(info.threads >= 1)
    assert.are.equal(usagi.get_num_threads(), info.threads)
  end)

  it('set_num_threads and get_num_threads', function()
    local before = usagi.get_num_threads()
    finally(function() usagi.set_num_threads(before) end)
    usagi.set_num_threads(1)
    assert.are.equal(1, usagi.get_num_threads())
    assert.are.equal(1, usagi.blas_info().threads)
    local x = usagi.randn(64, 64)
    local one = usagi.mm(x, x)
    usagi.set_num_threads(2)
    assert.is_true(usagi.get_num_threads() >= 1)
    assert.is_true(usagi.allclose(one, usagi.mm(x, x), 1e-5, 1e-4))
    raises(function() usagi.set_num_threads(0) end, 'set_num_threads', 'threads')
    raises(function() usagi.set_num_threads(2 ^ 40) end, 'set_num_threads')
    raises(function() usagi.set_num_threads('x') end, 'bad argument #1')
  end)
end)
