local usagi = require 'usagi'

-- nn_spec.lua -- the Lua face of the neural-net primitives (host/ops/nn.lua):
-- values against hand-computed numbers, 1-based ids and dims, options
-- tables, views, and errors that name the function.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local flat, fails = h.flat, h.fails

local T = usagi.tensor
local function ids(t) return T(t, 'i32') end

local function dims(t)
  local s, r = t:size(), {}
  for i = 1, #s do r[i] = s[i] end
  return r
end

-- t has the given shape and (flattened) values, within tol
local function near(t, shape, want, tol)
  tol = tol or 1e-6
  assert.is_true(usagi.is_tensor(t))
  assert.same(shape, dims(t))
  local got = t:dim() == 0 and { t:item() } or flat(t:totable())
  want = flat(want)
  assert.equal(#want, #got)
  for i = 1, #want do
    if want[i] ~= want[i] then
      assert.is_true(got[i] ~= got[i], 'element ' .. i .. ' should be nan')
    else
      assert.is_true(math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i])),
        ('element %d: got %.9g, want %.9g'):format(i, got[i], want[i]))
    end
  end
end

describe('linear', function()
  local x = T { { 1, 2, 3 }, { 4, 5, 6 } }
  local w = T { { 1, 0, -1 }, { .5, .5, .5 } }
  local b = T { .1, -.2 }

  it('computes x w^T + b', function()
    near(usagi.linear(x, w, b), { 2, 2 }, { -1.9, 2.8, -1.9, 7.3 })
    near(usagi.linear(x, w), { 2, 2 }, { -2, 3, -2, 7.5 })
    near(usagi.linear(x, w, nil), { 2, 2 }, { -2, 3, -2, 7.5 })
  end)

  it('keeps leading dims and takes views', function()
    near(usagi.linear(x:view(2, 1, 3), w, b), { 2, 1, 2 }, { -1.9, 2.8, -1.9, 7.3 })
    near(usagi.linear(T { { 1, 4 }, { 2, 5 }, { 3, 6 } }:t(), w, b), { 2, 2 }, { -1.9, 2.8, -1.9, 7.3 })
    near(usagi.linear(T { 4, 5, 6 }, w:double():float(), b), { 2 }, { -1.9, 7.3 })
  end)

  it('refuses bad shapes and dtypes', function()
    fails(function() usagi.linear(x, T { { 1, 2 } }) end, 'linear: w must be (out, in)')
    fails(function() usagi.linear(x, w, T { 1, 2, 3 }) end, 'linear: b must be (2,)')
    fails(function() usagi.linear(x, w:double()) end, "linear: w and b must have x's dtype")
    fails(function() usagi.linear(ids { 1, 2, 3 }, w) end, 'linear: x must be f32 or f64')
    fails(function() usagi.linear(x, 3) end, "bad argument #2 to 'linear'")
  end)
end)

describe('softmax', function()
  local sm = { 0.0900306, 0.2447285, 0.6652410 }
  local lsm = { -2.4076060, -1.4076060, -0.4076060 }

  it('gives the known values of [1, 2, 3]', function()
    near(usagi.softmax(T { 1, 2, 3 }, 1), { 3 }, sm)
    near(T { 1, 2, 3 }:softmax(), { 3 }, sm)
    near(T { 1001, 1002, 1003 }:softmax(-1), { 3 }, sm)
    near(usagi.log_softmax(T { 1, 2, 3 }, 1), { 3 }, lsm)
    near(T({ 1, 2, 3 }, 'f64'):log_softmax(1), { 3 }, lsm)
  end)

  it('works along any dim, also of a transposed view', function()
    local x = T { { 1, 2, 3 }, { 4, 6, 8 } }
    near(x:softmax(2), { 2, 3 }, { sm, { 0.0158762, 0.1173104, 0.8668133 } })
    near(x:softmax(1), { 2, 3 }, { { 0.0474259, 0.0179862, 0.0066929 },
                                   { 0.9525741, 0.9820138, 0.9933071 } })
    near(T { { 1, 4 }, { 2, 6 }, { 3, 8 } }:t():softmax(2), { 2, 3 },
         { sm, { 0.0158762, 0.1173104, 0.8668133 } })
    near(x:log_softmax(-2), { 2, 3 }, { { -3.0485874, -4.0181499, -5.0067153 },
                                        { -0.0485874, -0.0181499, -0.0067153 } })
  end)

  it('refuses integer tensors and bad dims', function()
    fails(function() ids { 1, 2 }:softmax(1) end, 'softmax: x must be f32 or f64, got i32')
    fails(function() usagi.log_softmax(ids { 1, 2 }) end, 'log_softmax: x must be f32 or f64')
    fails(function() T { 1, 2 }:softmax(2) end, "bad argument #1 to 'softmax' (dim 2 out of range")
    fails(function() usagi.softmax(T { 1, 2 }, 0) end, "bad argument #2 to 'softmax'")
    fails(function() usagi.softmax('x') end, "bad argument #1 to 'softmax'")
  end)
end)

describe('nll_loss and cross_entropy', function()
  -- logp rows; targets 4, 1, 2 (1-based) pick 4, .5, .2
  local logp = T { { -1, -2, -3, -4 }, { -.5, -1.5, -2.5, -3.5 }, { -.1, -.2, -.3, -.4 } }
  local y = ids { 4, 1, 2 }

  it('returns 0-dim tensors with every reduction', function()
    local l = usagi.nll_loss(logp, y)
    assert.equal(0, l:dim())
    near(l, {}, 4.7 / 3)
    near(usagi.nll_loss(logp, y, { reduction = 'sum' }), {}, 4.7)
    near(usagi.nll_loss(logp, y, { reduction = 'none' }), { 3 }, { 4, .5, .2 })
    near(usagi.nll_loss(logp, y, { reduction = 'mean' }), {}, 4.7 / 3)
  end)

  it('drops ignore_index and masked items from sum and mean', function()
    local pad = ids { 4, 0, 2 }                      -- 0 is padding in 1-based ids
    near(usagi.nll_loss(logp, pad, { ignore_index = 0 }), {}, 2.1)
    near(usagi.nll_loss(logp, pad, { ignore_index = 0, reduction = 'none' }), { 3 }, { 4, 0, .2 })
    near(usagi.nll_loss(logp, pad, { mask = pad:ne(0) }), {}, 2.1)
    near(usagi.nll_loss(logp, y, { mask = T { 1, 1, 0 }, reduction = 'sum' }), {}, 4.5)
    near(usagi.nll_loss(logp, y, { ignore_index = 1, mask = T { 1, 1, 0 } }), {}, 4)
    near(usagi.nll_loss(logp, y, { mask = T { 0, 0, 0 } }), {}, 0 / 0)
  end)

  it('gives the cross-entropy of known logits', function()
    local x = T { { 1, 2, 3 }, { 1, 1, 1 }, { 0, 0, 10 } }
    local t = ids { 3, 1, 3 }
    local l = { 0.40760596, 1.09861229, 9.0796e-5 }
    near(usagi.cross_entropy(x, t, { reduction = 'none' }), { 3 }, l)
    near(usagi.cross_entropy(x, t), {}, (l[1] + l[2] + l[3]) / 3)
    near(usagi.cross_entropy(x, t, { reduction = 'sum' }), {}, l[1] + l[2] + l[3])
    near(usagi.cross_entropy(x, t, { ignore_index = 1 }), {}, (l[1] + l[3]) / 2)
    -- equal to nll_loss of log_softmax, on a transposed view
    local xt = T { { 1000, -5, .5 }, { 1001, 2, -1 }, { 999, 7, 2 } }:t()
    near(usagi.cross_entropy(xt, t), {}, usagi.nll_loss(xt:log_softmax(2), t):item(), 1e-5)
  end)

  it('refuses bad targets and options', function()
    fails(function() usagi.cross_entropy(T { { 1, 2, 3 } }, ids { 4 }) end,
          'cross_entropy: target[1] must be a class in [1, 3], got 4')
    fails(function() usagi.nll_loss(logp, ids { 4, 0, 2 }) end,
          'nll_loss: target[2] must be a class in [1, 4], got 0')
    fails(function() usagi.nll_loss(logp, T { 4, 1, 2 }) end, 'nll_loss: target must be i32, got f32')
    fails(function() usagi.nll_loss(logp, ids { 4, 1 }) end, 'nll_loss: target must be (3,)')
    fails(function() usagi.nll_loss(logp, y, { mask = T { 1, 1 } }) end,
          "nll_loss: mask must have target's shape")
    fails(function() usagi.nll_loss(logp, y, { reduction = 'avg' }) end,
          "nll_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'")
    fails(function() usagi.nll_loss(logp, y, { reduce = 'sum' }) end, "unknown option 'reduce'")
    fails(function() usagi.cross_entropy(logp, y, { mask = 1 }) end,
          "cross_entropy: option 'mask' must be a tensor, got number")
    fails(function() usagi.cross_entropy(logp, y, { ignore_index = 1.5 }) end,
          "cross_entropy: option 'ignore_index' must be an integer, got 1.5")
    fails(function() usagi.cross_entropy(logp, y, 'sum') end, "bad argument #3 to 'cross_entropy'")
  end)
end)

describe('mse, bce and bce_with_logits', function()
  it('compute the known values', function()
    local a, b = T { 1, 2, 3 }, T { 1.5, 2, 1 }
    near(usagi.mse_loss(a, b), {}, 4.25 / 3)
    near(usagi.mse_loss(a, b, { reduction = 'sum' }), {}, 4.25)
    near(usagi.mse_loss(a, b, { reduction = 'none' }), { 3 }, { .25, 0, 4 })
    local p, y = T { .2, .9, 0, 1 }, T { 0, 1, 1, 0 }
    near(usagi.bce_loss(p, y, { reduction = 'none' }), { 4 }, { 0.22314355, 0.10536052, 100, 100 })
    near(usagi.bce_loss(p, y), {}, (0.22314355 + 0.10536052 + 200) / 4)
    local x, t = T { 0, 2, -3, 100, -1000 }, T { 1, 0, 1, .5, 0 }
    local l = { 0.69314718, 2.12692801, 3.04858735, 50, 0 }
    near(usagi.bce_with_logits(x, t, { reduction = 'none' }), { 5 }, l)
    near(usagi.bce_with_logits(x, t, { reduction = 'sum' }), {}, l[1] + l[2] + l[3] + 50)
  end)

  it('refuses mismatched shapes, bad p and unknown options', function()
    fails(function() usagi.mse_loss(T { 1, 2 }, T { { 1, 2 } }) end, "mse_loss: b must have a's shape")
    fails(function() usagi.bce_loss(T { .5, 1.5 }, T { 0, 1 }) end, 'bce_loss: p must be in [0, 1], got 1.5')
    fails(function() usagi.bce_with_logits(ids { 1 }, T { 1 }) end, 'bce_with_logits: x must be f32 or f64')
    fails(function() usagi.mse_loss(T { 1 }, T { 1 }, { ignore_index = 1 }) end,
          "unknown option 'ignore_index' (expected reduction)")
  end)
end)

describe('embedding and one_hot', function()
  local w = T { { 0, 1 }, { 10, 11 }, { 20, 21 }, { 30, 31 } }

  it('look up 1-based ids of any shape', function()
    near(usagi.embedding(w, ids { { 1, 4, 2 }, { 3, 3, 1 } }), { 2, 3, 2 },
         { 0, 1, 30, 31, 10, 11, 20, 21, 20, 21, 0, 1 })
    near(usagi.embedding(w, ids { { 1, 3 }, { 4, 2 } }:t()), { 2, 2, 2 }, { 0, 1, 30, 31, 20, 21, 10, 11 })
    near(usagi.one_hot(ids { 1, 3 }, 3), { 2, 3 }, { 1, 0, 0, 0, 0, 1 })
    near(ids { 2 }:one_hot(2), { 1, 2 }, { 0, 1 })
  end)

  it('refuses ids out of range or not i32', function()
    fails(function() usagi.embedding(w, ids { { 1, 0 } }) end, 'embedding: ids[1, 2] must be in [1, 4], got 0')
    fails(function() usagi.embedding(w, ids { 5 }) end, 'embedding: ids[1] must be in [1, 4], got 5')
    fails(function() usagi.embedding(w, T { 1 }) end, 'embedding: ids must be i32, got f32')
    fails(function() usagi.one_hot(ids { 4 }, 3) end, 'one_hot: ids[1] must be in [1, 3], got 4')
    fails(function() usagi.one_hot(ids { 1 }) end, "bad argument #2 to 'one_hot'")
  end)
end)

describe('gather, index_select and scatter_add', function()
  local x = T { { 1, 2, 3 }, { 4, 5, 6 } }

  it('gather along a 1-based dim', function()
    near(x:gather(2, ids { { 3, 1 }, { 2, 2 } }), { 2, 2 }, { 3, 1, 5, 5 })
    near(usagi.gather(x, 1, ids { { 2, 1, 2 } }), { 1, 3 }, { 4, 2, 6 })
    near(x:gather(-1, ids { { 1 }, { 3 } }), { 2, 1 }, { 1, 6 })
  end)

  it('index_select rows and columns', function()
    near(x:index_select(2, ids { 3, 1 }), { 2, 2 }, { 3, 1, 6, 4 })
    near(usagi.index_select(x:t(), 1, ids { 3, 3 }), { 2, 2 }, { 3, 6, 3, 6 })
  end)

  it('scatter_add into a copy or in place', function()
    local d = usagi.zeros(3)
    local r = usagi.scatter_add(d, 1, ids { 1, 2, 1, 3, 1 }, T { 1, 2, 3, 4, 5 })
    near(r, { 3 }, { 9, 2, 4 })
    near(d, { 3 }, { 0, 0, 0 })
    local same = d:scatter_add_(1, ids { 3, 3 }, T { 1, 2 })
    assert.equal(d, same)
    near(d, { 3 }, { 0, 0, 3 })
    near(usagi.zeros(2, 3):scatter_add(2, ids { { 1, 2, 1 }, { 3, 3, 3 } }, x), { 2, 3 },
         { 4, 2, 0, 0, 0, 15 })
  end)

  it('refuses bad indices and leaves dst untouched', function()
    fails(function() x:gather(2, ids { { 4 } }) end, 'gather: index[1, 1] must be in [1, 3], got 4')
    fails(function() x:gather(2, T { { 1 } }) end, 'gather: index must be i32')
    fails(function() x:gather(2, ids { 1 }) end, "gather: index (1,) must have x's rank")
    fails(function() x:gather(3, ids { { 1 } }) end, "bad argument #1 to 'gather' (dim 3 out of range")
    fails(function() usagi.gather(x, 0, ids { { 1 } }) end, "bad argument #2 to 'gather'")
    fails(function() x:index_select(1, ids { 0 }) end, 'index_select: index[1] must be in [1, 2], got 0')
    local d = T { 1, 1, 1 }
    fails(function() d:scatter_add_(1, ids { 1, 9 }, T { 5, 5 }) end,
          'scatter_add: index[2] must be in [1, 3], got 9')
    near(d, { 3 }, { 1, 1, 1 })
    fails(function() d:scatter_add_(1, ids { 1 }, T({ 5 }, 'f64')) end, "scatter_add: src must have dst's dtype")
  end)
end)

describe('cat and stack', function()
  local a, b = T { { 1, 2, 3 }, { 4, 5, 6 } }, T { { 7, 8, 9 } }

  it('cat along dim 1 by default, any dim when asked', function()
    near(usagi.cat({ a, b }), { 3, 3 }, { 1, 2, 3, 4, 5, 6, 7, 8, 9 })
    near(usagi.cat({ a, a:t():t() }, 2), { 2, 6 }, { 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6 })
    near(usagi.cat(a, b, 1), { 3, 3 }, { 1, 2, 3, 4, 5, 6, 7, 8, 9 })   -- Torch7 style
    near(usagi.cat({ ids { 1 }, ids { 2, 3 } }, -1), { 3 }, { 1, 2, 3 })
  end)

  it('stack adds a dim', function()
    near(usagi.stack({ T { 1, 2 }, T { 3, 4 } }), { 2, 2 }, { 1, 2, 3, 4 })
    near(usagi.stack({ T { 1, 2 }, T { 3, 4 } }, 2), { 2, 2 }, { 1, 3, 2, 4 })
    near(usagi.stack({ T { 1, 2 }, T { 3, 4 } }, -1), { 2, 2 }, { 1, 3, 2, 4 })
  end)

  it('refuses mismatched tensors', function()
    fails(function() usagi.cat({ a, T { { 1, 2 } } }) end,
          "cat: tensor #2 has shape (1, 2), which does not fit tensor #1's (2, 3)")
    fails(function() usagi.cat({ a, a:double() }) end, 'cat: tensor #2 is f64 but tensor #1 is f32')
    fails(function() usagi.cat({}) end, 'cat: needs at least one tensor')
    fails(function() usagi.cat({ a, 3 }) end, "bad argument #1 to 'cat' (element 2 is a number")
    fails(function() usagi.stack({ a, b }) end, 'stack needs equal shapes')
    fails(function() usagi.stack({ a }, 4) end, "bad argument #2 to 'stack'")
  end)
end)

describe('split and chunk', function()
  it('give tables of views that share memory', function()
    local x = usagi.arange(1, 8)                 -- 1 .. 7
    local parts = x:split(3)
    assert.equal(3, #parts)
    near(parts[1], { 3 }, { 1, 2, 3 })
    near(parts[3], { 1 }, { 7 })
    parts[2][1] = 40
    assert.equal(40, x[4])
    local c = usagi.chunk(x, 3)
    assert.equal(3, #c)
    assert.same({ 3 }, dims(c[1]))
    assert.same({ 1 }, dims(c[3]))
    assert.equal(3, #usagi.chunk(usagi.arange(1, 7), 4))   -- 6 in 4 gives 2, 2, 2
  end)

  it('work along any dim', function()
    local m = T { { 1, 2, 3, 4, 5 }, { 6, 7, 8, 9, 10 } }
    local p = m:split(2, 2)
    assert.equal(3, #p)
    near(p[2], { 2, 2 }, { 3, 4, 8, 9 })
    local q = m:chunk(2, -1)
    near(q[2], { 2, 2 }, { 4, 5, 9, 10 })
    assert.equal(1, #m:split(5, 1))
  end)

  it('refuse bad sizes and dims', function()
    fails(function() usagi.arange(1, 4):split(0) end, 'split: size must be >= 1, got 0')
    fails(function() usagi.arange(1, 4):chunk(0) end, 'chunk: chunks must be >= 1, got 0')
    fails(function() usagi.arange(1, 4):split(2, 2) end, "bad argument #2 to 'split' (dim 2 out of range")
    fails(function() usagi.split(usagi.arange(1, 4), 2, 2) end, "bad argument #3 to 'split'")
    fails(function() usagi.split(3, 1) end, "bad argument #1 to 'split'")
  end)

  it('keep the Lua heap flat over many calls', function()
    local x = usagi.zeros(64, 64)
    collectgarbage()
    local before = collectgarbage('count')
    for _ = 1, 2000 do
      local p = x:split(8)
      assert.equal(8, #p)
    end
    collectgarbage()
    assert.is_true(collectgarbage('count') < before + 256)
  end)
end)
