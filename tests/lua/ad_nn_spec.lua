local usagi = require 'usagi'

-- ad_nn_spec.lua -- gradients through the Lua binding of the reductions, the
-- nn primitives, the index ops and dropout (host/core/ad_reduce.c, ad_nn.c,
-- ad_index.c): usagi.gradcheck for every op and option, what gets recorded,
-- the Lua values the reductions give, and errors that name the function.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local flat, fails = h.flat, h.fails

local T = usagi.tensor
local function ids(t) return T(t, 'i32') end
local function randn(...) return usagi.randn(...):requires_grad(true) end
local function rand(lo, hi, ...)
  return usagi.rand({ ... }, { lo = lo, hi = hi }):requires_grad(true)
end

-- gradcheck raises on a mismatch; a true result is asserted too
local function gc(f, inputs, opts)
  assert.is_true(usagi.gradcheck(f, inputs, opts))
end

local function near(t, want, tol)
  tol = tol or 1e-6
  local got = t:dim() == 0 and { t:item() } or flat(t:totable())
  want = flat(want)
  assert.equal(#want, #got)
  for i = 1, #want do
    assert.is_true(math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i])),
      ('element %d: got %.9g, want %.9g'):format(i, got[i], want[i]))
  end
end

-- ==== Reductions ==========================================================

describe('reductions', function()
  local names = { 'sum', 'mean', 'prod', 'max', 'min', 'var', 'std', 'logsumexp', 'norm' }

  -- x:name(dim, keep); norm's first argument is p (2 here); max/min: the values
  local function reduce(x, name, dim, keep)
    if name == 'norm' then return x:norm(2, dim, keep) end
    if dim == nil then return (x[name](x)) end
    return (x[name](x, dim, keep))
  end

  -- Without a dim, the reduction of a tensor that does not require grad is a
  -- Lua number: so is that of x:t() in gradcheck's finite differences, which
  -- run under no_grad. As a tensor it counts the same in gradcheck's sum.
  local function as_tensor(v)
    return type(v) == 'number' and T({ v }, { dtype = 'f64' }) or v
  end

  it('match finite differences over every dim, keepdim and layout', function()
    for _, name in ipairs(names) do
      for _, dim in ipairs { false, 1, 2, -1 } do
        for _, keep in ipairs { false, true } do
          for _, trans in ipairs { false, true } do
            if dim or name ~= 'logsumexp' then           -- logsumexp needs a dim
              local f = function(x)
                if trans then x = x:t() end
                return as_tensor(reduce(x, name, dim or nil, keep))
              end
              gc(f, { randn(3, 4) })
            end
          end
        end
      end
    end
  end)

  it('reduce the middle dim of a 3-D tensor', function()
    for _, name in ipairs(names) do
      gc(function(x) return reduce(x, name, 2) end, { randn(2, 3, 4) })
      gc(function(x) return reduce(x, name, -2, true) end, { randn(2, 3, 4) })
    end
  end)

  it('var and std take the correction', function()
    for c = 0, 2 do
      gc(function(x) return x:var({ correction = c }) end, { randn(3, 4) })
      gc(function(x) return x:std(2, { correction = c }) end, { randn(3, 4) })
      gc(function(x) return x:std(1, true, { correction = c }) end, { randn(3, 4) })
    end
  end)

  it('norm takes any p, inf and fro', function()
    for _, p in ipairs { 1, 2, 3, 0.5, 1.5, math.huge, 'inf', 'fro' } do
      gc(function(x) return x:norm(p) end, { randn(3, 4) })
      gc(function(x) return as_tensor(x:t():norm(p)) end, { randn(3, 4) })
      gc(function(x) return x:t():norm(p, 1, true) end, { randn(3, 4) })
    end
  end)

  it('prod with zeros gives the products of the others', function()
    local x = T({ { 2, 0, 3 }, { 0, 5, 0 } }, { dtype = 'f64' }):requires_grad(true)
    x:prod(2):sum():backward()
    near(x.grad, { { 0, 6, 0 }, { 0, 0, 0 } })
    gc(function(a) return a:prod() end, { x })
    gc(function(a) return a:prod(1) end, { x })
  end)

  it('max and min send the gradient to the index they return', function()
    local x = T { { 1, 5, 5 }, { -2, -2, 0 } }:requires_grad(true)
    local v, i = x:max(2)
    assert.same({ 2, 3 }, i:totable())
    assert.is_false(i:requires_grad())
    v:sum():backward()
    near(x.grad, { { 0, 1, 0 }, { 0, 0, 1 } })
    x.grad = nil
    local m, k = x:min()
    assert.is_true(usagi.is_tensor(m))
    assert.equal(4, k)
    m:backward()
    near(x.grad, { { 0, 0, 0 }, { 1, 0, 0 } })
  end)

  it('max and min of two tensors are elementwise and differentiable', function()
    gc(function(a, b) return usagi.max(a, b) end, { randn(3, 4), randn(3, 4) })
    gc(function(a, b) return usagi.min(a, b) end, { randn(3, 4), randn(1, 4) })
  end)

  it('give a 0-dim tensor without a dim, recorded when the input requires grad', function()
    local x = T { 1, 2, 3 }
    assert.is_true(usagi.is_tensor(x:sum()))
    assert.equal(6, x:sum():item())
    assert.is_nil(x:sum():grad_fn())
    x:requires_grad(true)
    local s = x:sum()
    assert.is_true(usagi.is_tensor(s))
    assert.equal(0, s:dim())
    assert.equal('sum', s:grad_fn())
    -- the same kind of value inside no_grad, but no graph
    local n = usagi.no_grad(function() return x:mean() end)
    assert.is_true(usagi.is_tensor(n))
    assert.is_nil(n:grad_fn())
    s:backward()
    near(x.grad, { 1, 1, 1 })
    x:mean():backward()
    near(x.grad, { 4 / 3, 4 / 3, 4 / 3 })       -- accumulated
  end)

  it('record each op under its name, nothing without requires_grad', function()
    local x = randn(3, 4)
    for _, name in ipairs(names) do
      assert.equal(name, reduce(x, name, 1):grad_fn())
      assert.is_nil(reduce(x:detach(), name, 1):grad_fn())
      assert.is_nil(usagi.no_grad(function() return reduce(x, name, 1):grad_fn() end))
    end
    assert.is_nil(x:argmax(1):grad_fn())
  end)

  it('still raise errors that name the function', function()
    local x = randn(2, 3)
    fails(function() return x:sum(3) end, 'sum')
    fails(function() return x:norm(-1) end, 'norm: p must be > 0')
    fails(function() return x:var({ correction = -1 }) end, 'var')
    fails(function() return usagi.zeros(0, 2):requires_grad(true):max(1) end, 'max')
  end)
end)

-- ==== linear, softmax ======================================================

describe('linear', function()
  it('matches finite differences for x, w and b', function()
    gc(function(x, w, b) return usagi.linear(x, w, b) end, { randn(4, 3), randn(2, 3), randn(2) })
    gc(function(x, w) return usagi.linear(x, w) end, { randn(4, 3), randn(2, 3) })
    gc(function(x, w, b) return usagi.linear(x, w, b) end, { randn(2, 3, 3), randn(2, 3), randn(2) })
    -- transposed views of x and w
    gc(function(x, w, b) return usagi.linear(x:t(), w:t(), b) end,
       { randn(3, 4), randn(3, 2), randn(2) })
  end)

  it('gives gradients only to the inputs that require them', function()
    -- gradcheck makes the checked inputs f64; the others must be f64 already
    local f64 = { dtype = 'f64' }
    local x, w, b = randn(4, 3, f64), usagi.randn(2, 3, f64), usagi.randn(2, f64)
    gc(function(x_, w_, b_) return usagi.linear(x_, w_, b_) end, { x, w, b })
    local y = usagi.linear(x, w, b)
    assert.equal('linear', y:grad_fn())
    y:sum():backward()
    assert.is_nil(w.grad)
    assert.is_nil(b.grad)
    local ws = w:sum(1):totable()                -- dL/dx[m] = sum_o W[o]
    near(x.grad, { ws, ws, ws, ws })
  end)
end)

describe('softmax and log_softmax', function()
  it('match finite differences along every dim', function()
    for _, name in ipairs { 'softmax', 'log_softmax' } do
      for _, dim in ipairs { 1, 2, -1 } do
        gc(function(x) return x[name](x, dim) end, { randn(3, 4) })
        gc(function(x) return x:t()[name](x:t(), dim) end, { randn(3, 4) })
      end
      gc(function(x) return x[name](x) end, { randn(2, 3, 4) })
      gc(function(x) return x[name](x, 2) end, { randn(2, 3, 4) })
      gc(function(x) return usagi[name](x) end, { randn(5) })
    end
  end)
end)

-- ==== Losses ===============================================================

describe('nll_loss and cross_entropy', function()
  local target = ids { 2, 1, 5, 3 }
  local mask = T { 1, 0, 1, 1 }

  it('match finite differences with every reduction, ignore_index and mask', function()
    for _, name in ipairs { 'nll_loss', 'cross_entropy' } do
      for _, red in ipairs { 'mean', 'sum', 'none' } do
        for _, extra in ipairs { {}, { ignore_index = 5 }, { mask = mask },
                                 { ignore_index = 2, mask = mask } } do
          local opts = { reduction = red }
          for k, v in pairs(extra) do opts[k] = v end
          gc(function(x) return usagi[name](x, target, opts) end, { randn(4, 5) })
          gc(function(x) return usagi[name](x:t(), target, opts) end, { randn(5, 4) })
        end
        -- one row of scores and a 0-dim target
        gc(function(x) return usagi[name](x, ids({ 3 }):select(1, 1), { reduction = red }) end,
           { randn(5) })
      end
    end
  end)

  it('give ignored and masked items no gradient', function()
    local x = randn(4, 5)
    usagi.cross_entropy(x, target, { ignore_index = 5, mask = mask }):backward()
    local g = x.grad:totable()
    for c = 1, 5 do
      assert.equal(0, g[2][c])       -- masked
      assert.equal(0, g[3][c])       -- ignored
    end
    assert.is_true(math.abs(g[1][1]) > 0)
    assert.equal('cross_entropy', usagi.cross_entropy(x, target):grad_fn())
    assert.equal('nll_loss', usagi.nll_loss(x, target):grad_fn())
  end)

  it('still raise errors that name the function', function()
    fails(function() return usagi.cross_entropy(randn(2, 3), ids { 1, 4 }) end, 'cross_entropy')
    fails(function() return usagi.nll_loss(randn(2, 3), ids { 1 }) end, 'nll_loss')
  end)
end)

describe('mse_loss, bce_loss and bce_with_logits', function()
  it('match finite differences for the prediction and the target', function()
    for _, red in ipairs { 'mean', 'sum', 'none' } do
      local o = { reduction = red }
      gc(function(a, b) return usagi.mse_loss(a, b, o) end, { randn(3, 4), randn(3, 4) })
      gc(function(p, y) return usagi.bce_loss(p, y, o) end,
         { rand(0.05, 0.95, 3, 4), rand(0, 1, 3, 4) })
      gc(function(x, y) return usagi.bce_with_logits(x, y, o) end, { randn(3, 4), rand(0, 1, 3, 4) })
      -- transposed views, and a target that does not require grad
      gc(function(a, b) return usagi.mse_loss(a:t(), b, o) end, { randn(4, 3), usagi.randn(3, 4) })
    end
  end)

  it('follow PyTorch at the clamp of bce', function()
    local p = T({ 0, 1, 0.5 }, { dtype = 'f64' }):requires_grad(true)
    local y = T({ 1, 0, 1 }, { dtype = 'f64' }):requires_grad(true)
    usagi.bce_loss(p, y, { reduction = 'sum' }):backward()
    near(p.grad, { -1e12, 1e12, -2 })
    near(y.grad, { 100, -100, 0 })
  end)
end)

-- ==== Index ops ============================================================

describe('embedding, gather and index_select', function()
  it('embedding adds the gradients of repeated ids', function()
    local w = randn(5, 2)
    usagi.embedding(w, ids { { 2, 5, 2 }, { 1, 2, 4 } }):sum():backward()
    near(w.grad, { { 1, 1 }, { 3, 3 }, { 0, 0 }, { 1, 1 }, { 1, 1 } })
    gc(function(w_) return usagi.embedding(w_, ids { { 2, 5, 2 }, { 1, 2, 4 } }) end, { randn(5, 3) })
    gc(function(w_) return usagi.embedding(w_:t(), ids { 3, 3, 1 }) end, { randn(3, 5) })
  end)

  it('gather and index_select along every dim', function()
    gc(function(x) return x:gather(1, ids { { 1, 3, 3, 2 }, { 3, 3, 1, 1 } }) end, { randn(3, 4) })
    gc(function(x) return x:gather(2, ids { { 4, 4 }, { 1, 2 }, { 3, 1 } }) end, { randn(3, 4) })
    gc(function(x) return x:t():gather(-1, ids { { 1, 1 }, { 2, 3 }, { 3, 1 }, { 2, 2 } }) end,
       { randn(3, 4) })
    for _, dim in ipairs { 1, 2, -1 } do
      gc(function(x) return x:index_select(dim, ids { 3, 1, 3, 3 }) end, { randn(3, 3) })
      gc(function(x) return x:t():index_select(dim, ids { 2, 2 }) end, { randn(3, 3) })
    end
    gc(function(x) return x:index_select(2, ids { 3, 1, 3 }) end, { randn(2, 3, 2) })
    assert.equal('gather', randn(2, 2):gather(1, ids { { 1, 2 } }):grad_fn())
    assert.equal('index_select', randn(2, 2):index_select(1, ids { 1 }):grad_fn())
  end)

  it('scatter_add_ refuses a tensor that requires grad', function()
    local x = randn(2, 3)
    fails(function() x:scatter_add_(1, ids { { 1, 2, 1 } }, usagi.ones(1, 3)) end, 'scatter_add_')
    usagi.no_grad(function() x:scatter_add_(1, ids { { 1, 2, 1 } }, usagi.ones(1, 3)) end)
  end)
end)

describe('cat and stack', function()
  it('match finite differences along every dim', function()
    for _, dim in ipairs { 1, 2, -1 } do
      gc(function(a, b, c) return usagi.cat({ a, b, c }, dim) end,
         { randn(2, 3), randn(2, 3), randn(2, 3) })
      gc(function(a, b) return usagi.stack({ a, b }, dim) end, { randn(2, 3), randn(2, 3) })
    end
    gc(function(a, b) return usagi.stack({ a, b }, 3) end, { randn(2, 3), randn(2, 3) })
    gc(function(a, b) return usagi.cat({ a:t(), b }, 2) end, { randn(1, 3), randn(3, 2) })
    -- tensors as arguments, one not requiring grad
    gc(function(a, b) return usagi.cat(a, b, 1) end, { randn(1, 2), usagi.randn(3, 2, { dtype = 'f64' }) })
  end)

  it('take more tensors than one node records', function()
    local xs = {}
    for i = 1, 40 do xs[i] = randn(2) end
    gc(function(...) return usagi.cat({ ... }, 1) end, xs)
    gc(function(...) return usagi.stack({ ... }, 2) end, xs)
    local y = usagi.stack(xs, 1)
    y:sum():backward()
    for i = 1, 40 do near(xs[i].grad, { 1, 1 }) end
  end)
end)

describe('split and chunk', function()
  it('match finite differences, pieces left out getting nothing', function()
    gc(function(x) return x:split(2) end, { randn(7, 3) })
    gc(function(x) return x:chunk(3, 2) end, { randn(4, 7) })
    gc(function(x) return x:t():split(3, -1) end, { randn(7, 4) })
    gc(function(x) local p = x:split(2); return { p[1], p[3] } end, { randn(7, 3) })
    local x = randn(5)
    local p = x:split(2)
    assert.equal('split', p[1]:grad_fn())
    assert.equal('chunk', x:chunk(2)[1]:grad_fn())
    p[2]:sum():backward()
    near(x.grad, { 0, 0, 1, 1, 0 })
  end)

  it('make more pieces than one node records', function()
    gc(function(x) return x:split(1) end, { randn(20, 2) })
    gc(function(x) local p, q = x:chunk(70), {}
      for i = 1, #p, 3 do q[#q + 1] = p[i] end
      return q end, { randn(70) })
  end)
end)

-- ==== Dropout ==============================================================

describe('dropout', function()
  it('matches finite differences with a fixed mask', function()
    for _, p in ipairs { 0, 0.3, 0.7 } do
      gc(function(x) usagi.manual_seed(11); return (x:dropout(p)) end, { randn(6, 5) })
    end
    gc(function(x) return (x:dropout(0.5, false)) end, { randn(4) })
  end)

  it('scales the gradient by the mask it returns', function()
    local x = randn(200)
    usagi.manual_seed(3)
    local y, mask = x:dropout(0.25)
    assert.equal('dropout', y:grad_fn())
    y:sum():backward()
    local g, m = x.grad:totable(), mask:totable()
    local kept = 0
    for i = 1, 200 do
      assert.is_true(math.abs(g[i] - m[i] / 0.75) < 1e-6)
      kept = kept + m[i]
    end
    assert.is_true(kept > 100 and kept < 190)
    -- requires_grad changes neither the draws nor the mask
    usagi.manual_seed(3)
    local y2, mask2 = x:detach():dropout(0.25)
    assert.same(m, mask2:totable())
    assert.same(y:detach():totable(), y2:totable())
    assert.is_nil(y2:grad_fn())
  end)

  it('still refuses a bad p, naming dropout', function()
    fails(function() return randn(3):dropout(1) end, 'dropout: p must be in [0, 1)')
    fails(function() return randn(3):dropout(1, false) end, 'dropout')
  end)
end)
