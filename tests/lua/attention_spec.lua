-- The attention plugin (modules/attention): the fused op against the same
-- attention composed of autograd ops and by gradcheck, every mask, rows
-- whose keys are all masked, nn.Attention (dot, scaled_dot, general,
-- additive) and nn.MultiheadAttention against PyTorch fixtures
-- (tests/reference/attention_fixture.lua), and bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local A = require 'usagi.attention'
local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff

local function randn(...)
  local shape = { ... }
  shape[#shape + 1] = { dtype = 'f64' }
  return usagi.randn(table.unpack(shape))
end

-- The same attention out of autograd ops: scores, mask, softmax, product.
local function composed(q, k, v, opts)
  local e = usagi.bmm(q, k:transpose(2, 3)) * (opts.scale or 1)
  if opts.mask then e = e + opts.mask end
  if opts.causal then
    local Lq, Lk = q:size(2), k:size(2)
    local rows = {}
    for i = 1, Lq do
      rows[i] = {}
      for j = 1, Lk do rows[i][j] = j > i and -math.huge or 0 end
    end
    e = e + usagi.tensor(rows, { dtype = q:dtype() })
  end
  local w = usagi.softmax(e, 3)
  return usagi.bmm(w, v), w
end

describe('attention.attend', function()
  usagi.manual_seed(3)
  local q, k, v = randn(2, 3, 5), randn(2, 4, 5), randn(2, 4, 6)

  it('equals the attention composed of autograd ops, values and gradients', function()
    local mask = A.mask('t', { key_padding_mask = { { 0, 0, 1, 0 }, { 0, 0, 0, 1 } } }, 2, 3, 4, 'f64')
    for _, o in ipairs { {}, { scale = 0.4 }, { mask = mask }, { causal = true, scale = 2 } } do
      local leaves = {}
      for i, t in ipairs { q, k, v } do leaves[i] = t:detach():requires_grad(true) end
      local c, w = A.attend(leaves[1], leaves[2], leaves[3], o)
      local gc, gw = randn(2, 3, 6), randn(2, 3, 4)
      ;((c * gc):sum() + (w * gw):sum()):backward()
      local want = {}
      for i, t in ipairs { q, k, v } do want[i] = t:detach():requires_grad(true) end
      local c2, w2 = composed(want[1], want[2], want[3], o)
      ;((c2 * gc):sum() + (w2 * gw):sum()):backward()
      assert.is_true(maxdiff(c, c2) < 1e-12 and maxdiff(w, w2) < 1e-12)
      for i = 1, 3 do assert.is_true(maxdiff(leaves[i].grad, want[i].grad) < 1e-12) end
    end
  end)

  it('passes gradcheck for the dot and the additive score, each mask, and each output alone', function()
    local u = randn(5)
    local mask = A.mask('t', { lengths = { 4, 2 } }, 2, 3, 4, 'f64')
    local cases = {
      function(a, b, c) local x, w = A.attend(a, b, c, { scale = 0.7, mask = mask }); return (x * x):sum() + (w * w):sum() end,
      function(a, b, c) local x = A.attend(a, b, c, { causal = true }); return x end,
      function(a, b, c) local _, w = A.attend(a, b, c, {}); return w end,
      function(a, b, c, d) local x, w = A.attend(a, b, c, { u = d, mask = mask, scale = 1.3 }); return (x * x):sum() + w:sum() end,
      function(a, b, c, d) local x = A.attend(a, b, c, { u = d, causal = true }); return x end,
    }
    for i, f in ipairs(cases) do
      local args = i <= 3 and { q, k, v } or { q, k, v, u }
      assert.is_true(usagi.gradcheck(f, args, { all = true }), 'case ' .. i)
    end
  end)

  it('gives a row whose keys are all masked zero weights, zero context and zero gradients', function()
    local mask = A.mask('t', { key_padding_mask = { { 1, 1, 1, 1 }, { 0, 1, 0, 1 } } }, 2, 3, 4, 'f64')
    local a = q:detach():requires_grad(true)
    local c, w = A.attend(a, k, v, { mask = mask })
    assert.are.equal(0, w:select(1, 1):abs():sum():item())
    assert.are.equal(0, c:select(1, 1):abs():sum():item())
    assert.is_true(math.abs(w:select(1, 2):sum():item() - 3) < 1e-12)
    ;(c:sum() + w:sum()):backward()
    assert.are.equal(0, a.grad:select(1, 1):abs():sum():item())
    assert.are.equal(0, a.grad:ne(a.grad):sum():item())   -- no NaN
  end)

  it('runs in f32 within 1e-5 of f64', function()
    local u = randn(5)
    for _, o in ipairs { { scale = 0.5, causal = true }, { u = u } } do
      local o32 = { scale = o.scale, causal = o.causal, u = o.u and o.u:float() }
      local c, w = A.attend(q, k, v, o)
      local c32, w32 = A.attend(q:float(), k:float(), v:float(), o32)
      assert.are.equal('f32', c32:dtype())
      assert.is_true(maxdiff(c, c32) < 1e-5 and maxdiff(w, w32) < 1e-5)
    end
  end)

  it('names what it expected and what came', function()
    h.fails(function() A.attend(randn(3, 5), k, v) end, 'attention: q must be 3-D (B, Lq, D) with no empty dim, got (3, 5)')
    h.fails(function() A.attend(q, randn(2, 4, 3), v) end, "attention: k must be (B, Lk, D) with q's B and D, q (2, 3, 5), got k (2, 4, 3)")
    h.fails(function() A.attend(q, k, randn(2, 5, 6)) end, "attention: v must be (B, Lk, Dv) with k's B and Lk, k (2, 4, 5), got v (2, 5, 6)")
    h.fails(function() A.attend(q, k:float(), v) end, 'attention: k must be f64 like q, got f32')
    h.fails(function() A.attend(q, k, v, { u = randn(4) }) end, "attention: the additive score's weight u must be (5,), q's last size, got (4,)")
    h.fails(function() A.attend(q, k, v, { mask = randn(3, 3, 4) }) end, 'attention: mask must be (Bm, 1 or Lq, Lk) with Bm dividing B = 2, Lq = 3, Lk = 4, got (3, 3, 4)')
    h.fails(function() A.attend(q, k, v, { scale = 0 / 0 }) end, 'attention: scale must be a finite number, got')
    h.fails(function() A.attend(q, k, v, { dropout = 0.1 }) end, "attention: unknown option 'dropout'")
    h.fails(function() A.attention(q, k, v, { lengths = { 4, 5 } }) end, 'attention: lengths[2] must be an integer in [1, 4], got 5')
    h.fails(function() A.attention(q, k, v, { key_padding_mask = { { 0, 1 } } }) end, 'attention: key_padding_mask must be (B, Lk) = (2, 4)')
    h.fails(function() A.attention(q, k, v, { attn_mask = randn(4, 4) }) end, 'attention: attn_mask must be (Lq, Lk) = (3, 4)')
  end)
end)

describe('nn.Attention', function()
  it('takes one decoder step as a 2-D query and equals the sequence form', function()
    for _, kind in ipairs { 'dot', 'scaled_dot', 'general', 'additive' } do
      local att = nn.Attention(kind, 5, 5, { dtype = 'f64' })
      local query, keys = randn(2, 5), randn(2, 4, 5)
      local c, w = att(query, keys, nil, { lengths = { 3, 4 } })
      assert.are.same({ 2, 5 }, h.shape(c))
      assert.are.same({ 2, 4 }, h.shape(w))
      local c3, w3 = att(query:unsqueeze(2), keys, nil, { lengths = { 3, 4 } })
      assert.is_true(maxdiff(c, c3:squeeze(2)) < 1e-14 and maxdiff(w, w3:squeeze(2)) < 1e-14)
      assert.are.equal(0, w[1][4])
    end
  end)

  it('refuses what it cannot do', function()
    h.fails(function() nn.Attention('cosine', 4, 4) end, "Attention: kind must be 'dot', 'scaled_dot', 'general' or 'additive', got cosine")
    h.fails(function() nn.Attention('dot', 4, 5) end, "Attention: a 'dot' score needs query_size = key_size, got 4 and 5")
    h.fails(function() nn.Attention('general', 0, 5) end, 'Attention: query_size must be a positive integer, got 0')
  end)
end)

describe('nn.MultiheadAttention', function()
  it('gives batch_first the same answer as the time-major layout', function()
    usagi.manual_seed(5)
    local m = nn.MultiheadAttention(8, 2, { dtype = 'f64' })
    local m2 = nn.MultiheadAttention(8, 2, { dtype = 'f64', batch_first = true })
    m2:load_state_dict(m:state_dict())
    local x = randn(4, 3, 8)
    local o, w = m(x, x, x, { causal = true })
    local o2, w2 = m2(x:transpose(1, 2), x:transpose(1, 2), x:transpose(1, 2), { causal = true })
    assert.is_true(maxdiff(o, o2:transpose(1, 2)) < 1e-14 and maxdiff(w, w2) < 1e-14)
  end)

  it('drops attention weights when training with dropout, and not when evaluating', function()
    usagi.manual_seed(6)
    local m = nn.MultiheadAttention(8, 2, { dtype = 'f64', dropout = 0.5 })
    local x = randn(4, 3, 8)
    m:train()
    local o1, w1 = m(x, x, x, { average_attn_weights = false })
    local zeros = w1:eq(0):sum():item()
    assert.is_true(zeros > 0 and zeros < w1:numel())             -- some dropped, not all
    m:eval()
    local o2 = m(x, x, x)
    local o3 = m(x, x, x)
    assert.are.equal(0, maxdiff(o2, o3))
    assert.is_true(maxdiff(o1, o2) > 1e-3)
  end)

  it('refuses what it cannot do', function()
    h.fails(function() nn.MultiheadAttention(8, 3) end, 'MultiheadAttention: num_heads must be a positive integer dividing embed_dim = 8, got 3')
    local m = nn.MultiheadAttention(8, 2)
    h.fails(function() m(usagi.randn(4, 3, 6), usagi.randn(4, 3, 8), usagi.randn(4, 3, 8)) end,
      'MultiheadAttention: expected query (L, N, 8), key (S, N, 8), value (S, N, 8), got (4, 3, 6), (4, 3, 8), (4, 3, 8)')
    h.fails(function() m(usagi.randn(4, 3, 8), nil, nil, { bogus = 1 }) end, "MultiheadAttention: unknown option 'bogus'")
  end)
end)

-- ==== Against PyTorch ======================================================
-- tests/reference/attention_fixture.lua (tests/reference/attention_reference.py):
-- each case's module with PyTorch's parameters loaded by name, run on the
-- case's inputs with its masks; context, weights and, after the fixture's
-- loss L = sum(context * r_ctx) + sum(weights * r_w), the gradient of every
-- input and parameter must agree (f64 to 1e-10, f32 to 1e-5 relative).
local FIXTURE = dofile('tests/reference/attention_fixture.lua')
local SIZES = { dot = true, scaled_dot = true, general = true, additive = true }

local function close(got, want, tol, what)
  local scale = math.max(1, want:abs():max():item())
  local d = maxdiff(got, want)
  assert(d <= tol * scale, ('%s: off by %.3g (tolerance %.3g)'):format(what, d, tol * scale))
end

local function run_case(case, dtype, tol)
  local inputs, module = {}, nil
  local names = case.kind == 'mha' and (case.x and { 'x' } or { 'query', 'key', 'value' }) or { 'q', 'k', 'v' }
  for _, n in ipairs(names) do inputs[n] = tensor_of(case[n], dtype):requires_grad(true) end
  local opts = { key_padding_mask = case.key_padding_mask, lengths = case.lengths,
                 attn_mask = case.attn_mask and tensor_of(case.attn_mask, dtype), causal = case.causal }
  if SIZES[case.kind] then
    local q, k = inputs.q, inputs.k
    module = nn.Attention(case.kind, q:size(3), k:size(3),
      { dtype = dtype, attention_size = case['Wa.weight'] and case['Wa.weight'].shape[1] })
  else
    module = nn.MultiheadAttention(case.embed_dim, case.num_heads,
      { dtype = dtype, kdim = case.kdim, vdim = case.vdim })
    opts.average_attn_weights = case.average_attn_weights
    opts.lengths = nil
  end
  local sd = {}
  for name in pairs(module:state_dict()) do
    assert(case[name], case.name .. ': the fixture lacks ' .. name)
    sd[name] = tensor_of(case[name], dtype)
  end
  module:load_state_dict(sd)
  local c, w
  if case.kind == 'mha' then
    local x = inputs.x
    c, w = module(x or inputs.query, x or inputs.key, x or inputs.value, opts)
  else
    c, w = module(inputs.q, inputs.k, inputs.v, opts)
  end
  close(c, tensor_of(case.context), tol, case.name .. ' context')
  close(w, tensor_of(case.weights), tol, case.name .. ' weights')
  local loss = (c * tensor_of(case.r_ctx, dtype)):sum() + (w * tensor_of(case.r_w, dtype)):sum()
  assert.is_true(math.abs(loss:item() - case.loss) <= tol * math.max(1, math.abs(case.loss)))
  loss:backward()
  for _, n in ipairs(names) do close(inputs[n].grad, tensor_of(case.grad[n]), tol, case.name .. ' grad ' .. n) end
  for _, np in ipairs(module:named_parameters()) do
    local name, p = np[1], np[2]
    local want = tensor_of(case.grad[name])
    -- Va.bias: a shift of every score, which softmax ignores: no gradient
    -- here, about 1e-16 in PyTorch
    if p.grad then close(p.grad, want, tol, case.name .. ' grad ' .. name)
    else assert(want:abs():max():item() < 1e-12, case.name .. ': no gradient for ' .. name) end
  end
end

describe('attention against PyTorch', function()
  for _, case in ipairs(FIXTURE) do
    it(case.name .. ' (f64 and f32)', function()
      run_case(case, 'f64', 1e-10)
      run_case(case, 'f32', 1e-5)
    end)
  end
end)
