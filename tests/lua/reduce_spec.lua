local usagi = require 'usagi'

-- Specs of the reductions (host/ops/reduce.lua over host/core/reduce.c):
-- values computed by hand, on contiguous tensors and views, every dim and
-- dtype, keepdim shapes, ties, NaN, empty tensors and every bad call.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local near, shape, raises, expect = h.near_nan, h.shape, h.raises, h.expect

local nan, inf = 0 / 0, math.huge

local function m23(dt) return usagi.tensor({ { 1, 5, 3 }, { 4, 2, 6 } }, { dtype = dt }) end

describe('sum, mean, prod', function()
  it('give a Lua number without a dim', function()
    local t = m23('f32')
    assert.are.equal(21, t:sum():item())
    assert.are.equal(3.5, t:mean():item())
    assert.are.equal(720, t:prod():item())
    assert.are.equal(21, usagi.sum(t):item())
    assert.are.equal('float', math.type(t:sum():item()))
    local i = m23('i32')
    assert.are.equal(21, i:sum():item())
    assert.are.equal('integer', math.type(i:sum():item()))
    assert.are.equal('integer', math.type(i:prod():item()))
    assert.are.equal(3.5, i:mean():item())
  end)

  it('reduce every dim, 1-based and negative, with keepdim', function()
    for _, dt in ipairs { 'f32', 'f64', 'i32' } do
      local t, fdt = m23(dt), dt == 'i32' and 'f32' or dt
      expect(t:sum(1), dt, { 3 }, { 5, 7, 9 })
      expect(t:sum(2), dt, { 2 }, { 9, 12 })
      expect(t:sum(-1, true), dt, { 2, 1 }, { 9, 12 })
      expect(usagi.sum(t, -2, true), dt, { 1, 3 }, { 5, 7, 9 })
      expect(t:mean(1), fdt, { 3 }, { 2.5, 3.5, 4.5 })
      expect(t:mean(2, true), fdt, { 2, 1 }, { 3, 4 })
      expect(t:prod(1), dt, { 3 }, { 4, 10, 18 })
      expect(t:prod(-1), dt, { 2 }, { 15, 48 })
    end
  end)

  it('reduce each dim of a 3-D tensor', function()
    local t = usagi.arange(0, 24):reshape(2, 3, 4)      -- i32, t[i][j][k] = 12(i-1) + 4(j-1) + (k-1)
    expect(t:sum(1), 'i32', { 3, 4 }, { 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34 })
    expect(t:sum(2), 'i32', { 2, 4 }, { 12, 15, 18, 21, 48, 51, 54, 57 })
    expect(t:sum(3), 'i32', { 2, 3 }, { 6, 22, 38, 54, 70, 86 })
    expect(t:sum(2, true), 'i32', { 2, 1, 4 }, { 12, 15, 18, 21, 48, 51, 54, 57 })
    expect(t:sum(nil, true), 'i32', { 1, 1, 1 }, { 276 })
    assert.are.equal(276, t:sum():item())
    assert.are.equal('integer', math.type(t:sum():item()))
    expect(t:float():sum(3), 'f32', { 2, 3 }, { 6, 22, 38, 54, 70, 86 })
  end)

  it('read views: transposed, narrowed, expanded', function()
    local t = m23('f32')
    local tt = t:t()                                       -- {{1,4},{5,2},{3,6}}
    expect(tt:sum(1), 'f32', { 2 }, { 9, 12 })
    expect(tt:prod(2), 'f32', { 3 }, { 4, 10, 18 })
    local n = t:narrow(2, 2, 2)                            -- {{5,3},{2,6}}
    expect(n:mean(1), 'f32', { 2 }, { 3.5, 4.5 })
    assert.are.equal(16, n:sum():item())
    local e = t:select(1, 2):expand(4, 3)                  -- four rows of {4,2,6}
    expect(e:sum(1), 'f32', { 3 }, { 16, 8, 24 })
    assert.are.equal(48, e:sum():item())
  end)

  it('of nothing: sum 0, prod 1, mean NaN', function()
    local z = usagi.zeros(2, 0)
    expect(z:sum(2), 'f32', { 2 }, { 0, 0 })
    expect(z:prod(2), 'f32', { 2 }, { 1, 1 })
    expect(z:mean(2), 'f32', { 2 }, { nan, nan })
    expect(z:sum(1), 'f32', { 0 }, {})
    assert.are.equal(0, z:sum():item())
    near(nan, z:mean():item())
  end)

  it('reject bad dims and arguments, naming the function', function()
    local t = m23('f32')
    raises(function() t:sum(3) end, 'sum', 'dim 3 out of range')
    raises(function() t:mean(-3) end, 'mean', 'out of range')
    raises(function() usagi.prod(t, 0) end, 'prod')
    raises(function() t:sum(1, 'yes') end, 'sum', 'boolean expected')
    raises(function() usagi.sum({ 1, 2 }) end, 'sum', 'usagi.Tensor expected')
    raises(function() t:sum('x') end, 'sum')
  end)
end)

describe('max, min, argmax, argmin', function()
  it('without a dim give the number and the 1-based flat index', function()
    local t = m23('f32')
    local v, i = t:max(); v = v:item()
    assert.are.equal(6, v); assert.are.equal(6, i)
    assert.are.equal('integer', math.type(i))
    v, i = usagi.min(t); v = v:item()
    assert.are.equal(1, v); assert.are.equal(1, i)
    assert.are.equal(6, t:argmax()); assert.are.equal(1, t:argmin())
    v, i = t:t():max(); v = v:item()                       -- flat order of the view: 1 4 5 2 3 6
    assert.are.equal(6, v); assert.are.equal(6, i)
    assert.are.equal(6, t:t():argmax())
    v, i = m23('i32'):max(); v = v:item()
    assert.are.equal('integer', math.type(v))
  end)

  it('with a dim give values and 1-based i32 indices', function()
    for _, dt in ipairs { 'f32', 'f64', 'i32' } do
      local t = m23(dt)
      local v, i = t:max(2)
      expect(v, dt, { 2 }, { 5, 6 }); expect(i, 'i32', { 2 }, { 2, 3 })
      v, i = usagi.max(t, 1, true)
      expect(v, dt, { 1, 3 }, { 4, 5, 6 }); expect(i, 'i32', { 1, 3 }, { 2, 1, 2 })
      v, i = t:min(-1)
      expect(v, dt, { 2 }, { 1, 2 }); expect(i, 'i32', { 2 }, { 1, 2 })
      expect(t:argmax(1), 'i32', { 3 }, { 2, 1, 2 })
      expect(t:argmin(2, true), 'i32', { 2, 1 }, { 1, 2 })
    end
  end)

  it('keep the first index on ties and propagate NaN with its index', function()
    local t = usagi.tensor { { 2, 7, 7 }, { -inf, -inf, -inf }, { 1, nan, 9 }, { 9, 9, 1 } }
    local v, i = t:max(2)
    expect(v, 'f32', { 4 }, { 7, -inf, nan, 9 }); expect(i, 'i32', { 4 }, { 2, 1, 2, 1 })
    v, i = t:min(2)
    expect(v, 'f32', { 4 }, { 2, -inf, nan, 1 }); expect(i, 'i32', { 4 }, { 1, 1, 2, 3 })
    v, i = t:max(); v = v:item()
    near(nan, v); assert.are.equal(8, i)
  end)

  it('read narrowed and expanded views', function()
    local t = m23('f32')
    local v, i = t:narrow(2, 2, 2):max(2, true)            -- {{5,3},{2,6}}
    expect(v, 'f32', { 2, 1 }, { 5, 6 }); expect(i, 'i32', { 2, 1 }, { 1, 2 })
    expect(t:select(1, 2):expand(3, 3):argmin(2), 'i32', { 3 }, { 2, 2, 2 })
  end)

  it('of two tensors are elementwise', function()
    local a, b = usagi.tensor { 1, 5, 3 }, usagi.tensor { 4, 2, 6 }
    expect(usagi.max(a, b), 'f32', { 3 }, { 4, 5, 6 })
    expect(a:min(b), 'f32', { 3 }, { 1, 2, 3 })
  end)

  it('refuse an empty dim and bad dims', function()
    local z = usagi.zeros(3, 0)
    raises(function() z:max(2) end, 'max: cannot reduce over an empty dim')
    raises(function() z:min() end, 'min: cannot reduce over an empty dim')
    raises(function() z:argmax() end, 'max: cannot reduce over an empty dim')
    local v, i = z:max(1)                                  -- a non-empty dim is fine
    expect(v, 'f32', { 0 }, {}); expect(i, 'i32', { 0 }, {})
    raises(function() m23('f32'):max(3) end, 'max', 'out of range')
    raises(function() m23('f32'):argmin(0) end, 'argmin', 'out of range')
    raises(function() usagi.max(nil) end, 'max')
  end)
end)

describe('var, std', function()
  it('default to the unbiased estimate and take {correction = }', function()
    local t = usagi.tensor { 1, 2, 3, 4 }
    near(5 / 3, t:var():item())
    near(1.25, t:var { correction = 0 })
    near(math.sqrt(5 / 3), t:std():item())
    near(math.sqrt(1.25), usagi.std(t, { correction = 0 }))
  end)

  it('reduce a dim with keepdim and options, every dtype', function()
    for _, dt in ipairs { 'f32', 'f64', 'i32' } do
      local t = usagi.tensor({ { 1, 2, 3, 4 }, { 2, 4, 6, 8 } }, { dtype = dt })
      local fdt = dt == 'i32' and 'f32' or dt
      expect(t:var(2), fdt, { 2 }, { 5 / 3, 20 / 3 })
      expect(t:var(-1, true, { correction = 0 }), fdt, { 2, 1 }, { 1.25, 5 })
      expect(t:std(1), fdt, { 4 }, { math.sqrt(0.5), math.sqrt(2), math.sqrt(4.5), math.sqrt(8) })
      expect(t:std(1, { correction = 0 }), fdt, { 4 }, { 0.5, 1, 1.5, 2 })
      near(37.5 / 7, t:var():item())
    end
  end)

  it('of one element is NaN unbiased, 0 biased; of a transposed view', function()
    near(nan, usagi.tensor { 3 }:var():item())
    near(0, usagi.tensor { 3 }:var { correction = 0 })
    local t = usagi.tensor { { 1, 2 }, { 3, 4 }, { 5, 6 } }:t()   -- {{1,3,5},{2,4,6}}
    expect(t:var(2), 'f32', { 2 }, { 4, 4 })
  end)

  it('reject bad options', function()
    local t = usagi.tensor { 1, 2, 3 }
    raises(function() t:var { corection = 0 } end, "var: unknown option 'corection' (expected correction)")
    raises(function() t:std { correction = 0.5 } end, "std: option 'correction' must be an integer, got 0.5")
    raises(function() t:var { correction = -1 } end, 'var: correction must be >= 0')
    raises(function() t:std(2) end, 'std', 'out of range')
  end)
end)

describe('logsumexp', function()
  it('is stable and needs a dim', function()
    local t = usagi.tensor { { 1, 2, 3 }, { 1000, 1000, 1000 }, { -inf, -inf, -inf }, { inf, 1, 2 } }
    expect(t:logsumexp(2), 'f32', { 4 }, { 3.4076059644, 1000 + math.log(3), -inf, inf })
    expect(usagi.logsumexp(t, -1, true), 'f32', { 4, 1 }, { 3.4076059644, 1000 + math.log(3), -inf, inf })
    local i = usagi.tensor({ { 0, 0 }, { 1, 1 } }, { dtype = 'i32' })
    expect(i:logsumexp(1), 'f32', { 2 }, { math.log(1 + math.exp(1)), math.log(1 + math.exp(1)) })
    expect(usagi.zeros(2, 0):logsumexp(2), 'f32', { 2 }, { -inf, -inf })
    raises(function() t:logsumexp() end, 'logsumexp', 'number expected')
    raises(function() t:logsumexp(3) end, 'logsumexp', 'out of range')
  end)
end)

describe('norm', function()
  it('is 2 by default, any p > 0, inf as math.huge or "inf"', function()
    local t = usagi.tensor { { 3, -4 }, { 0, 0 } }
    assert.are.equal(5, t:norm():item())
    assert.are.equal(7, t:norm(1):item())
    assert.are.equal(4, t:norm(math.huge):item())
    assert.are.equal(4, t:norm('inf'):item())
    assert.are.equal(5, t:norm('fro'):item())
    near(91 ^ (1 / 3), t:norm(3):item())
    expect(t:norm(2, 2), 'f32', { 2 }, { 5, 0 })
    expect(usagi.norm(t, 1, 1, true), 'f32', { 1, 2 }, { 3, 4 })
    expect(t:t():norm(math.huge, 1), 'f32', { 2 }, { 4, 0 })
    expect(usagi.tensor({ 3, 4 }, { dtype = 'i32' }):norm(2, 1), 'f32', {}, { 5 })
  end)

  it('rejects p <= 0 and unknown names', function()
    local t = usagi.tensor { 1, 2 }
    raises(function() t:norm(0) end, 'norm: p must be > 0')
    raises(function() t:norm(-2) end, 'norm: p must be > 0')
    raises(function() t:norm 'nuc' end, 'norm', "p must be a number, 'inf' or 'fro', got 'nuc'")
    raises(function() t:norm(2, 2) end, 'norm', 'out of range')
  end)
end)
