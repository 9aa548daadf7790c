local usagi = require 'usagi'

-- Specs of autograd through the math and tensor bindings (generated from host/ops/math.lua, and
-- tensor_lua.c calling host/core/ad_math.c and ad_view.c): usagi.gradcheck
-- of every differentiable elementwise op, operator, product, view, copy and
-- index, gradients computed by hand where a convention matters (ties,
-- clamp's bounds, pow at 0), what records nothing (comparisons, sign and
-- friends, i32 results, no_grad), and the in-place methods refusing to
-- write into a tensor that requires grad.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local raises = h.raises

usagi.manual_seed(7)

-- an f64 leaf requiring grad with values uniform in [lo, hi)
local function leaf(shape, lo, hi)
  lo, hi = lo or -2, hi or 2
  return (usagi.rand(shape, { dtype = 'f64' }) * (hi - lo) + lo):requires_grad(true)
end

local function check(f, inputs, opts)
  assert.is_true(usagi.gradcheck(f, inputs, opts))
end

local function near(want, got, tol, what)
  tol = tol or 1e-9
  assert.is_true(math.abs(got - want) <= tol * (1 + math.abs(want)),
                 ('%swant %.10g, got %.10g'):format(what and what .. ': ' or '', want, got))
end

-- t's values (flat, row-major) are vals
local function values(t, vals, tol)
  local flat = t:reshape(-1):totable()
  assert.are.equal(#vals, #flat)
  for i = 1, #vals do near(vals[i], flat[i], tol, 'element ' .. i) end
end

-- backward of sum(y) (y of any shape)
local function backward_sum(y) y:sum():backward() end

describe('autograd through elementwise ops', function()
  local ops = { 'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum' }
  local shapes = {
    { { 2, 3 }, { 2, 3 } }, { { 2, 3 }, { 3 } }, { { 2, 1 }, { 1, 3 } }, { { 4 }, {} },
  }

  for _, op in ipairs(ops) do
    it(op .. ' (function, method, broadcasting, 0-dim)', function()
      for _, s in ipairs(shapes) do
        local lo = (op == 'pow') and 0.5 or -2
        local a = leaf(s[1], lo, 2)
        local b = leaf(s[2], (op == 'div' or op == 'pow') and 0.5 or -2, 2)
        check(function(x, y) return usagi[op](x, y) end, { a, b })
        check(function(x, y) return x[op](x, y) end, { a, b })
      end
    end)

    it(op .. ' with a number on either side', function()
      local a = leaf({ 2, 3 }, 0.5, 2)
      check(function(x) return usagi[op](x, 1.5) end, { a })
      check(function(x) return usagi[op](1.5, x) end, { a })
    end)
  end

  it('operators, numbers on either side', function()
    local a, b = leaf({ 2, 3 }, 0.5, 2), leaf({ 3 }, 0.5, 2)
    check(function(x, y) return (x + y) * x - y / x end, { a, b })
    check(function(x, y) return x ^ y + (-x) end, { a, b })
    check(function(x) return 2 - x * 3 + 1 / x + 2 ^ x + x ^ 2 end, { a })
  end)

  it('a non-contiguous operand and gradient', function()
    local a, b = leaf({ 3, 2 }), leaf({ 2, 3 })
    check(function(x, y) return (x:t() * y):t() end, { a, b })
  end)

  it('gives the mul gradients by hand, accumulating over two backwards', function()
    local a = usagi.tensor({ 1, 2, 3 }, { dtype = 'f64' }):requires_grad(true)
    local b = usagi.tensor({ 4, 5, 6 }, { dtype = 'f64' }):requires_grad(true)
    backward_sum(a * b)
    values(a.grad, { 4, 5, 6 })
    values(b.grad, { 1, 2, 3 })
    backward_sum(a * b)
    values(a.grad, { 8, 10, 12 })
    assert.are.equal('mul', (a * b):grad_fn())
  end)

  it('splits the gradient of a tie of maximum / minimum half and half', function()
    local a = usagi.tensor({ 1, 2, 3 }, { dtype = 'f64' }):requires_grad(true)
    local b = usagi.tensor({ 3, 2, 1 }, { dtype = 'f64' }):requires_grad(true)
    backward_sum(usagi.maximum(a, b))
    values(a.grad, { 0, 0.5, 1 })
    values(b.grad, { 1, 0.5, 0 })
    a.grad, b.grad = nil, nil
    backward_sum(a:minimum(b))
    values(a.grad, { 1, 0.5, 0 })
    values(b.grad, { 0, 0.5, 1 })
  end)

  it('gives pow at a zero base 0, not NaN', function()
    local a = usagi.tensor({ 0, 0, 2 }, { dtype = 'f64' }):requires_grad(true)
    local b = usagi.tensor({ 0, 2, 3 }, { dtype = 'f64' }):requires_grad(true)
    backward_sum(a ^ b)
    values(a.grad, { 0, 0, 12 })
    values(b.grad, { 0, 0, 8 * math.log(2) })
  end)

  it('gives an f32 leaf an f32 gradient when the op computes in f64', function()
    local a = usagi.tensor({ 1, 2 }):requires_grad(true)
    local b = usagi.tensor({ { 0.5, 3 }, { 4, 5 } }, { dtype = 'f64' })
    local y = a * b
    assert.are.equal('f64', y:dtype())
    backward_sum(y)
    assert.are.equal('f32', a.grad:dtype())
    values(a.grad, { 4.5, 8 })
    assert.is_nil(b.grad)
  end)

  it('records nothing for comparisons', function()
    local a, b = leaf({ 3 }), leaf({ 3 })
    for _, op in ipairs({ 'eq', 'ne', 'lt', 'le', 'gt', 'ge' }) do
      local y = a[op](a, b)
      assert.are.equal('i32', y:dtype())
      assert.is_false(y:requires_grad())
      assert.is_false(a[op](a, 0.5):requires_grad())
    end
  end)
end)

describe('autograd through unary ops and clamp', function()
  local domains = {
    neg = { -2, 2 }, abs = { 0.1, 2 }, exp = { -2, 2 }, log = { 0.1, 3 }, sqrt = { 0.1, 3 },
    tanh = { -2, 2 }, sigmoid = { -3, 3 }, relu = { 0.1, 2 }, log1p = { -0.5, 3 },
    sin = { -3, 3 }, cos = { -3, 3 }, square = { -2, 2 }, reciprocal = { 0.2, 2 },
  }
  for op, d in pairs(domains) do
    it(op, function()
      local a = leaf({ 2, 3 }, d[1], d[2])
      check(function(x) return x[op](x) end, { a })
      check(function(x) return usagi[op](x:t()) end, { a })
      assert.are.equal(op, a[op](a):grad_fn())
    end)
  end

  it('relu and abs on both sides of 0', function()
    local a = usagi.tensor({ -1, 0, 2 }, { dtype = 'f64' }):requires_grad(true)
    backward_sum(a:relu())
    values(a.grad, { 0, 0, 1 })
    a.grad = nil
    backward_sum(a:abs())
    values(a.grad, { -1, 0, 1 })
  end)

  it('records nothing for sign, floor, ceil and round (zero gradient)', function()
    local a = leaf({ 3 })
    for _, op in ipairs({ 'sign', 'floor', 'ceil', 'round' }) do
      assert.is_false(a[op](a):requires_grad())
    end
  end)

  it('clamp with both bounds, one, or none', function()
    local a = leaf({ 3, 4 })
    check(function(x) return x:clamp(-0.5, 0.7) end, { a })
    check(function(x) return x:clamp(-0.5) end, { a })
    check(function(x) return x:clamp(nil, 0.7) end, { a })
    check(function(x) return usagi.clamp(x) end, { a })
  end)

  it('clamp passes the gradient at its bounds', function()
    local a = usagi.tensor({ -1, 0, 0.5, 1, 2 }, { dtype = 'f64' }):requires_grad(true)
    backward_sum(a:clamp(0, 1))
    values(a.grad, { 0, 1, 1, 1, 0 })
  end)
end)

describe('autograd through where', function()
  it('sends g to a where cond holds and to b elsewhere, summing broadcasts', function()
    local cond = usagi.tensor({ { 1 }, { 0 } }, { dtype = 'i32' })
    local a, b = leaf({ 3 }), leaf({})
    check(function(x, y) return usagi.where(cond, x, y) end, { a, b })
    local c = leaf({ 2, 3 })
    check(function(x) return usagi.where(cond, x, 0) end, { c })
    check(function(x) return usagi.where(cond, 1.5, x) end, { c })
    backward_sum(usagi.where(cond, a, b))
    values(a.grad, { 1, 1, 1 })
    values(b.grad, { 3 })
  end)
end)

describe('autograd through matrix products', function()
  it('mm, with transposed operands', function()
    local a, b = leaf({ 3, 4 }), leaf({ 4, 2 })
    check(function(x, y) return x:mm(y) end, { a, b })
    check(function(x, y) return usagi.mm(x:t():t(), y:t():contiguous():t()) end, { a, b })
  end)

  it('bmm', function()
    local a, b = leaf({ 2, 3, 4 }), leaf({ 2, 4, 2 })
    check(function(x, y) return x:bmm(y) end, { a, b })
    check(function(x, y) return usagi.bmm(x, y:transpose(2, 3):contiguous():transpose(2, 3)) end,
          { a, b })
  end)

  it('matmul in every shape case', function()
    local cases = {
      { { 3 }, { 3 } }, { { 3 }, { 3, 4 } }, { { 2, 3 }, { 3 } }, { { 2, 3 }, { 3, 4 } },
      { { 2, 2, 3 }, { 3, 4 } }, { { 2, 3 }, { 2, 3, 4 } }, { { 2, 1, 2, 3 }, { 3, 3, 4 } },
      { { 3 }, { 2, 3, 4 } }, { { 2, 2, 3 }, { 3 } },
    }
    for _, c in ipairs(cases) do
      check(function(x, y) return usagi.matmul(x, y) end, { leaf(c[1]), leaf(c[2]) })
    end
  end)

  it('addmm with beta and alpha, c broadcast', function()
    local a, b = leaf({ 2, 3 }), leaf({ 3, 4 })
    for _, c in ipairs({ leaf({ 2, 4 }), leaf({ 4 }), leaf({}) }) do
      check(function(z, x, y) return usagi.addmm(z, x, y) end, { c, a, b })
      check(function(z, x, y) return usagi.addmm(z, x, y, { beta = 0.5, alpha = -2 }) end,
            { c, a, b })
    end
  end)

  it('mm by hand: da = g b^T, db = a^T g', function()
    local a = usagi.tensor({ { 1, 2 } }):requires_grad(true)
    local b = usagi.tensor({ { 3 }, { 4 } }):requires_grad(true)
    backward_sum(a:mm(b))
    values(a.grad, { 3, 4 })
    values(b.grad, { 1, 2 })
  end)
end)

describe('autograd through views and copies', function()
  local x
  before_each(function() x = leaf({ 2, 3, 4 }) end)

  it('view and reshape, with -1, from non-contiguous tensors', function()
    check(function(t) return t:view(6, 4) end, { x })
    check(function(t) return t:view({ 4, -1, 3 }) end, { x })
    check(function(t) return t:reshape(24) end, { x })
    check(function(t) return t:transpose(1, 2):reshape(4, 6) end, { x })
    check(function(t) return usagi.reshape(t, -1) end, { x })
  end)

  it('transpose, t and permute', function()
    check(function(t) return t:transpose(1, 3) end, { x })
    check(function(t) return t:transpose(-1, 2) end, { x })
    check(function(t) return t:select(1, 1):t() end, { x })
    check(function(t) return t:permute(3, 1, 2) end, { x })
    check(function(t) return t:permute({ -1, 2, 1 }) end, { x })
  end)

  it('narrow and select on each dim', function()
    for d = 1, 3 do
      check(function(t) return t:narrow(d, 2, 1) end, { x })
      check(function(t) return t:select(d, 2) end, { x })
      check(function(t) return t:select(d, -1) end, { x })
    end
  end)

  it('indexing: t[i], t[{i, j}], t[{{a, b}}]', function()
    check(function(t) return t[2] end, { x })
    check(function(t) return t[-1] end, { x })
    check(function(t) return t[{ 2, 3 }] end, { x })
    check(function(t) return t[{ {}, { 2, 3 } }] end, { x })
    check(function(t) return t[{ { 1, 1 }, 2, { 2, 4 } }] end, { x })
    local w = usagi.tensor({ 1, 2, 3 }):requires_grad(true)
    local y = w[2] * 3       -- one element is a number, so go through a 1-element range
    assert.are.equal('number', type(y))
    backward_sum(w[{ { 2, 2 } }] * 3)
    values(w.grad, { 0, 3, 0 })
  end)

  it('unsqueeze, squeeze, expand and expand_as', function()
    check(function(t) return t:unsqueeze(1) end, { x })
    check(function(t) return t:unsqueeze(-1) end, { x })
    local s = leaf({ 3, 1, 4 })
    check(function(t) return t:squeeze(2) end, { s })
    check(function(t) return t:squeeze() end, { s })
    check(function(t) return t:expand(3, 5, 4) end, { s })
    check(function(t) return t:expand(2, 3, 5, 4) end, { s })
    check(function(t) return t:expand_as(usagi.zeros(3, 2, 4)) end, { s })
  end)

  it('contiguous, clone and dtype conversion', function()
    check(function(t) return t:transpose(1, 2):contiguous() end, { x })
    check(function(t) return t:clone() end, { x })
    check(function(t) return t:float():double() * 1 end, { x }, { eps = 1e-2, atol = 1e-4 })
    check(function(t) return t:to('f32'):to('f64') end, { x }, { eps = 1e-2, atol = 1e-4 })
    -- same dtype: the tensor itself
    assert.are.equal(x, x:double())
    assert.is_true(x:contiguous():is_leaf())
    -- to i32: no gradient can flow
    assert.is_false(x:int():requires_grad())
  end)

  it('names the op that made a view', function()
    assert.are.equal('view', x:view(24):grad_fn())
    assert.are.equal('transpose', x:transpose(1, 2):grad_fn())
    assert.are.equal('select', x[1]:grad_fn())
    assert.are.equal('narrow', x[{ { 1, 1 } }]:grad_fn())
  end)
end)

describe('no_grad', function()
  it('records nothing inside', function()
    local w = leaf({ 2, 2 })
    local y = usagi.no_grad(function() return (w * 2):mm(w):t()[1] end)
    assert.is_false(y:requires_grad())
    assert.is_true((w * 2):requires_grad())
  end)
end)

describe('in-place ops on tensors that require grad', function()
  local function refused(f, name)
    raises(f, name, 'requires grad')
  end

  it('refuses to write into a leaf', function()
    local w = usagi.ones(3):requires_grad(true)
    refused(function() w:add_(1) end, 'add_')
    refused(function() w:mul_(w) end, 'mul_')
    refused(function() w:exp_() end, 'exp_')
    refused(function() w:clamp_(0, 1) end, 'clamp_')
    refused(function() w:fill_(0) end, 'fill_')
    refused(function() w:zero_() end, 'zero_')
    refused(function() w:copy_(usagi.zeros(3)) end, 'copy_')
    refused(function() w[1] = 0 end, 'index assignment')
    refused(function() w[{ { 1, 2 } }] = usagi.zeros(2) end, 'index assignment')
  end)

  it('refuses to write into a result in a graph, or a view of a leaf', function()
    local w = usagi.ones(2, 2):requires_grad(true)
    local y = w * 2
    raises(function() y:mul_(2) end, 'mul_', 'part of a graph')
    raises(function() w:t():fill_(0) end, 'fill_', 'part of a graph')
    raises(function() w[1]:add_(1) end, 'add_')
  end)

  it('allows it inside no_grad (how optimizers update parameters)', function()
    local w = usagi.ones(3):requires_grad(true)
    usagi.no_grad(function()
      w:sub_(usagi.tensor({ 1, 2, 3 }) * 0.5)
      w[1] = 7
    end)
    values(w, { 7, 0, -0.5 })
    assert.is_true(w:requires_grad())
  end)

  it('allows it on tensors that do not require grad', function()
    local t = usagi.ones(2)
    t:add_(1)
    t[1] = 5
    values(t, { 5, 2 })
  end)
end)

describe('bad calls still name their function', function()
  it('raises from the forward', function()
    local a = leaf({ 2, 3 })
    raises(function() return a:mm(a) end, 'mm')
    raises(function() return a + leaf({ 2 }) end, 'add')
    raises(function() return a:view(5) end, 'view')
    raises(function() return a:clamp(1, 0) end, 'clamp')
    raises(function() return usagi.matmul(a, leaf({ 2 })) end, 'matmul')
  end)
end)
