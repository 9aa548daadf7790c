-- The RNN plugin (modules/rnn): the fused op rnn.rnn against the same RNN
-- composed of ops step by step and against PyTorch (a committed fixture, so
-- no Python at test time), gradient checks of every option, nn.RNN (PyTorch's
-- parameter names, init, dropout, carrying the state for truncated BPTT),
-- every bad call's message, and the vanishing / exploding gradient.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local rnn = require 'usagi.rnn'
local fixture = dofile('tests/reference/rnn_fixture.lua')

-- ==== helpers ==============================================================

local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff

-- the message of the error f(...) raises
local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, 'expected an error')
  return tostring(err)
end

local function assert_msg(msg, want)
  assert.truthy(msg:find(want, 1, true), ('message "%s" lacks "%s"'):format(msg, want))
end

-- weights { {w_ih, w_hh, b_ih, b_hh}, ... } drawn N(0, scale^2)
local function make_weights(I, H, L, dtype, bias, scale)
  local ws = {}
  for l = 1, L do
    local o = { dtype = dtype, std = scale or 0.5 }
    ws[l] = { usagi.randn(H, l == 1 and I or H, o), usagi.randn(H, H, o) }
    if bias ~= false then ws[l][3], ws[l][4] = usagi.randn(H, o), usagi.randn(H, o) end
  end
  return ws
end

local ACT = { tanh = 'tanh', relu = 'relu', sigmoid = 'sigmoid' }

-- The same RNN from the tensor ops, one step at a time:
-- z^t = f(x^t W_in^T + b_ih + z^{t-1} W^T + b_hh)
local function composed(x, h0, ws, act)
  local T, L = x:size(1), #ws
  local layer_in, finals = x, {}
  for l = 1, L do
    local w_ih, w_hh, b_ih, b_hh = table.unpack(ws[l], 1, 4)
    local z = h0 and h0[l] or nil
    local zs = {}
    for t = 1, T do
      local u = usagi.linear(layer_in[t], w_ih, b_ih)
      if z then u = u + usagi.linear(z, w_hh, b_hh)
      elseif b_hh then u = u + b_hh end
      z = u[ACT[act]](u)
      zs[t] = z
    end
    finals[l] = z
    layer_in = usagi.stack(zs, 1)
  end
  return layer_in, usagi.stack(finals, 1)
end

-- all float inputs of a call, flattened: x, h0, then the weights
local function flat_inputs(x, h0, ws) return h.flat_inputs(x, { h0 }, 1, ws) end

local function unflatten(list, has_h0, ws)
  local x, s, w = h.unflatten(list, { has_h0 }, ws)
  return x, s[1], w
end

local function grads_enabled()
  local a = usagi.ones(1):requires_grad(true)
  return (a * 2):requires_grad()
end

-- ==== the fused op =========================================================

describe('rnn.rnn', function()
  before_each(function() usagi.manual_seed(7) end)

  it('returns the last layer\'s states (T, B, H) and every layer\'s final state (L, B, H)', function()
    local x, ws = usagi.randn(6, 3, 4), make_weights(4, 5, 2, 'f32')
    local out, h_n = rnn.rnn(x, nil, ws)
    assert.are.equal('(6, 3, 5)', tostring(out:size()))
    assert.are.equal('(2, 3, 5)', tostring(h_n:size()))
    assert.are.equal(0, maxdiff(h_n[2], out[6]))
    local out1 = rnn.rnn(x, nil, { ws[1] })                -- layer 1 alone
    assert.are.equal(0, maxdiff(h_n[1], out1[6]))
    assert.are.equal('f32', out:dtype())
  end)

  it('matches the RNN composed of ops step by step, every option (f64)', function()
    for _, act in ipairs { 'tanh', 'relu', 'sigmoid' } do
      for L = 1, 2 do
        for _, with_h0 in ipairs { false, true } do
          for _, bias in ipairs { true, false } do
            local x = usagi.randn(5, 3, 4, { dtype = 'f64' })
            local h0 = with_h0 and usagi.randn(L, 3, 6, { dtype = 'f64' }) or nil
            local ws = make_weights(4, 6, L, 'f64', bias)
            local out, h_n = rnn.rnn(x, h0, ws, { nonlinearity = act })
            local out2, h_n2 = composed(x, h0, ws, act)
            assert.is_true(maxdiff(out, out2) < 1e-12, act)
            assert.is_true(maxdiff(h_n, h_n2) < 1e-12, act)
          end
        end
      end
    end
  end)

  it('has the gradients of the composed RNN (f64, 1e-10)', function()
    assert.is_true(grads_enabled(), 'the binding records ops for autograd')
    for _, act in ipairs { 'tanh', 'relu', 'sigmoid' } do
      local x = usagi.randn(5, 2, 3, { dtype = 'f64' })
      local h0 = usagi.randn(2, 2, 4, { dtype = 'f64' })
      local ws = make_weights(3, 4, 2, 'f64')
      local r1, r2 = usagi.randn(5, 2, 4, { dtype = 'f64' }), usagi.randn(2, 2, 4, { dtype = 'f64' })
      local grads = {}
      for pass, f in ipairs { rnn.rnn, composed } do
        local list = {}
        for i, t in ipairs(flat_inputs(x, h0, ws)) do list[i] = t:clone():requires_grad(true) end
        local xx, hh, ww = unflatten(list, true, ws)
        local out, h_n = f(xx, hh, ww, f == rnn.rnn and { nonlinearity = act } or act)
        local loss = (out * r1):sum() + (h_n * r2):sum()
        loss:backward()
        grads[pass] = list
      end
      for i = 1, #grads[1] do
        assert.is_true(maxdiff(grads[1][i].grad, grads[2][i].grad) < 1e-10, act .. ' input ' .. i)
      end
    end
  end)

  it('records one node per layer', function()
    local x = usagi.randn(4, 2, 3)
    local ws = make_weights(3, 4, 1, 'f32')
    ws[1][1]:requires_grad(true)
    local out, h_n = rnn.rnn(x, nil, ws)
    assert.are.equal('rnn', out:grad_fn())
    usagi.no_grad(function()
      local o = rnn.rnn(x, nil, ws)
      assert.is_nil(o:grad_fn())
      assert.is_false(o:requires_grad())
    end)
    assert.is_not_nil(h_n:grad_fn())
  end)

  describe('against PyTorch (tests/reference/rnn_fixture.lua)', function()
    for _, case in ipairs(fixture) do
      for _, dtype in ipairs(case.bidirectional and {} or { 'f64', 'f32' }) do   -- (birnn_spec)
        local tol = dtype == 'f64' and 1e-12 or 1e-5
        it(('torch.nn.RNN %s, %d layers, in %s'):format(case.nonlinearity, case.num_layers, dtype), function()
          h.check_fixture(case, dtype, tol, function(x, s0)
            local ws, weight = h.fixture_weights(case, dtype)
            local out, h_n = rnn.rnn(x, s0[1], ws, { nonlinearity = case.nonlinearity })
            return out, { h_n }, weight
          end)
        end)
      end
    end
  end)

  describe('gradcheck', function()
    for _, act in ipairs { 'tanh', 'relu', 'sigmoid' } do
      for L = 1, 2 do
        for _, with_h0 in ipairs { false, true } do
          for _, on in ipairs { 'out', 'h_n', 'both' } do
            it(('%s, %d layer(s), h0 %s, gradient on %s'):format(act, L, tostring(with_h0), on), function()
              local x = usagi.randn(4, 2, 3, { dtype = 'f64' })
              local h0 = with_h0 and usagi.randn(L, 2, 4, { dtype = 'f64', std = 0.5 }) or nil
              local ws = make_weights(3, 4, L, 'f64')
              local inputs = flat_inputs(x, h0, ws)
              assert.is_true(usagi.gradcheck(function(...)
                local xx, hh, ww = unflatten({ ... }, with_h0, ws)
                local out, h_n = rnn.rnn(xx, hh, ww, { nonlinearity = act })
                if on == 'out' then return out elseif on == 'h_n' then return h_n end
                return { out, h_n }
              end, inputs, { all = true, atol = 1e-6, rtol = 1e-5 }))
            end)
          end
        end
      end
    end

    it('without biases, and through dropout between layers (a fixed mask)', function()
      local x = usagi.randn(4, 2, 3, { dtype = 'f64' })
      local ws = make_weights(3, 4, 2, 'f64', false)
      assert.is_true(usagi.gradcheck(function(...)
        local xx, _, ww = unflatten({ ... }, false, ws)
        usagi.manual_seed(3)                   -- the same mask at every call
        local out, h_n = rnn.rnn(xx, nil, ww, { dropout = 0.4 })
        return { out, h_n }
      end, flat_inputs(x, nil, ws), { all = true, atol = 1e-6, rtol = 1e-5 }))
    end)
  end)

  describe('bad calls', function()
    local x, ws = usagi.randn(5, 3, 8), make_weights(8, 16, 2, 'f32')

    it('names the expected and the actual input shape', function()
      assert_msg(error_of(rnn.rnn, usagi.randn(5, 3, 7), nil, ws), 'rnn: input must be (T, B, 8), got (5, 3, 7)')
      assert_msg(error_of(rnn.rnn, usagi.randn(5, 3), nil, ws), 'rnn: input must be 3-D (T, B, I), time-major, got (5, 3)')
      assert_msg(error_of(rnn.rnn, usagi.zeros(0, 3, 8), nil, ws), 'rnn: input must have T >= 1 steps')
      assert_msg(error_of(rnn.rnn, usagi.zeros(5, 3, 8, { dtype = 'i32' }), nil, ws),
        'rnn: input must be f32 or f64, got i32')
      assert_msg(error_of(rnn.rnn, x:double(), nil, ws), 'rnn: weight_ih_l0 must be f64 like the input, got f32')
    end)

    it('checks h0 and every weight', function()
      assert_msg(error_of(rnn.rnn, x, usagi.zeros(1, 3, 16), ws),
        'rnn: h0 must be (2, 3, 16) (num_layers, B, H), got (1, 3, 16)')
      local bad = { ws[1], { usagi.randn(16, 8), ws[2][2] } }
      assert_msg(error_of(rnn.rnn, x, nil, bad),
        "rnn: weight_ih_l1 must be (16, 16) (it reads layer 0's 16 outputs), got (16, 8)")
      bad = { { ws[1][1], usagi.randn(16, 15), ws[1][3], ws[1][4] } }
      assert_msg(error_of(rnn.rnn, x, nil, bad), 'rnn: weight_hh_l0 must be (16, 16), got (16, 15)')
      bad = { { ws[1][1], ws[1][2], usagi.randn(15), ws[1][4] } }
      assert_msg(error_of(rnn.rnn, x, nil, bad), 'rnn: bias_ih_l0 must be (16,), got (15,)')
    end)

    it('checks the weights list and the options', function()
      assert_msg(error_of(rnn.rnn, x, nil, 'w'), "bad argument #3 to 'usagi.rnn.rnn' (table expected, got string)")
      assert_msg(error_of(rnn.rnn, x, nil, {}), 'weights must list 1 to 64 layers')
      assert_msg(error_of(rnn.rnn, x, nil, { { ws[1][1] } }), 'weight_hh of layer 1 must be a tensor, got nil')
      assert_msg(error_of(rnn.rnn, x, nil, { 5 }), 'layer 1 must be a table')
      assert_msg(error_of(rnn.rnn, x, nil, ws, { nonlinearity = 'gelu' }),
        "nonlinearity must be 'tanh', 'relu' or 'sigmoid', got 'gelu'")
      assert_msg(error_of(rnn.rnn, x, nil, ws, { dropout = 1 }), 'rnn: dropout must be in [0, 1), got 1')
      assert_msg(error_of(rnn.rnn, 'x', nil, ws), "bad argument #1 to 'usagi.rnn.rnn' (usagi.Tensor expected, got string)")
    end)
  end)
end)

-- ==== nn.RNN ===============================================================

describe('nn.RNN', function()
  before_each(function() usagi.manual_seed(11) end)

  it('is registered in nn and has PyTorch\'s parameters, names and init', function()
    assert.are.equal(rnn.RNN, nn.RNN)
    local m = nn.RNN(8, 16, { num_layers = 2 })
    assert.is_true(nn.is_module(m))
    local names = {}
    for i, p in ipairs(m:named_parameters()) do names[i] = p[1] .. tostring(p[2]:size()) end
    assert.are.same({ 'weight_ih_l0(16, 8)', 'weight_hh_l0(16, 16)', 'bias_ih_l0(16,)', 'bias_hh_l0(16,)',
                      'weight_ih_l1(16, 16)', 'weight_hh_l1(16, 16)', 'bias_ih_l1(16,)', 'bias_hh_l1(16,)' },
      names)
    local k = 1 / math.sqrt(16)
    for _, p in ipairs(m:parameters()) do
      assert.is_true(p:requires_grad())
      assert.is_true(p:abs():max():item() <= k)
      assert.is_true(p:abs():max():item() > 0.5 * k)
    end
    assert.are.equal(4, #nn.RNN(3, 5, { bias = false, num_layers = 2 }):parameters())
    assert.are.equal('f64', nn.RNN(3, 5, { dtype = 'f64' }).weight_hh_l0:dtype())
    assert.are.equal("RNN(8, 16, num_layers=2)  -- 960 params", tostring(m))
    assert.truthy(tostring(nn.RNN(2, 3, { nonlinearity = 'relu', dropout = 0.5 })):find("nonlinearity='relu', dropout=0.5", 1, true))
  end)

  it('loads a PyTorch state_dict and gives PyTorch\'s outputs', function()
    local case = fixture[1]
    local m = nn.RNN(case.input_size, case.hidden_size, { num_layers = case.num_layers, dtype = 'f64' })
    local sd = {}
    for name, spec in pairs(case.weights) do sd[name] = tensor_of(spec) end
    m:load_state_dict(sd)
    local out, h_n = m(tensor_of(case.x), tensor_of(case.h0))
    assert.is_true(maxdiff(out, tensor_of(case.out)) < 1e-12)
    assert.is_true(maxdiff(h_n, tensor_of(case.h_n)) < 1e-12)
  end)

  it('drops out between layers only in training mode', function()
    local m = nn.RNN(3, 8, { num_layers = 2, dropout = 0.5 })
    local x = usagi.randn(4, 2, 3)
    local plain = usagi.no_grad(function() return rnn.rnn(x, nil, m:layer_weights()) end)
    m:eval()
    assert.are.equal(0, maxdiff(m(x), plain))
    m:train()
    assert.is_true(maxdiff(m(x), plain) > 1e-3)
  end)

  it('carries the final state, detached, with carry = true; reset() forgets it', function()
    local m = nn.RNN(3, 5, { num_layers = 2, carry = true })
    local x1, x2 = usagi.randn(4, 2, 3), usagi.randn(4, 2, 3)
    local _, h1 = m(x1)
    assert.is_not_nil(m.h)
    assert.is_nil(m.h:grad_fn())
    assert.is_false(m.h:requires_grad())
    local out2 = m(x2)
    local want = rnn.rnn(x2, h1, m:layer_weights())
    assert.are.equal(0, maxdiff(out2, want))
    m:reset()
    assert.are.equal(0, maxdiff(m(x2), rnn.rnn(x2, nil, m:layer_weights())))
    -- an explicit h0 wins over the carried state
    local h0 = usagi.randn(2, 2, 5)
    assert.are.equal(0, maxdiff(m(x1, h0), rnn.rnn(x1, h0, m:layer_weights())))
    local msg = error_of(function() local o = m(usagi.randn(4, 3, 3)); return o end)
    assert_msg(msg, 'RNN: the carried state is for batches of 2, this input (4, 3, 3) has 3; call :reset() first')
  end)

  it('stops the backward at a detached state (truncated BPTT by hand)', function()
    local m = nn.RNN(3, 4)
    local x1 = usagi.randn(5, 2, 3):requires_grad(true)
    local x2 = usagi.randn(5, 2, 3):requires_grad(true)
    local _, h = m(x1)
    h = h:detach()
    local out2 = m(x2, h)
    out2:backward(usagi.ones(5, 2, 4))
    assert.is_nil(x1.grad)
    assert.is_not_nil(x2.grad)
    assert.is_not_nil(m.weight_hh_l0.grad)
    -- without the detach the gradient reaches the first chunk
    local _, h_live = m(x1)
    m(x2, h_live):backward(usagi.ones(5, 2, 4))
    assert.is_not_nil(x1.grad)
  end)

  it('raises clear errors for bad options and inputs, at the caller', function()
    assert_msg(error_of(nn.RNN, 0, 4), 'RNN: input_size must be a positive integer, got 0')
    assert_msg(error_of(nn.RNN, 4, 2.5), 'RNN: hidden_size must be a positive integer, got 2.5')
    assert_msg(error_of(nn.RNN, 4, 4, { nonlinearity = 'gelu' }), "RNN: nonlinearity must be 'tanh', 'relu' or 'sigmoid', got 'gelu'")
    assert_msg(error_of(nn.RNN, 4, 4, { dropout = 1 }), 'RNN: dropout must be a number in [0, 1), got 1')
    assert_msg(error_of(nn.RNN, 4, 4, { batch_first = 1 }), 'RNN: batch_first must be true or false, got number')
    assert_msg(error_of(nn.RNN, 4, 4, { foo = 1 }), "RNN: unknown option 'foo'")
    assert_msg(error_of(nn.RNN, 4, 4, { num_layers = 0 }), 'RNN: num_layers must be a positive integer, got 0')
    local m = nn.RNN(8, 16)
    local msg = error_of(function() local out = m(usagi.randn(5, 3, 7)); return out end)
    assert_msg(msg, 'rnn: input must be (T, B, 8), got (5, 3, 7)')
    assert_msg(msg, 'rnn_spec.lua:')                -- the position is the caller's line
  end)
end)

-- ==== vanishing and exploding gradients ====================================
-- dL/dz^t = (W^T diag f'(u^{t+1})) ... (W^T diag f'(u^T)) dL/dz^T: a product
-- of T - t Jacobians (Bengio et al. 1994; Pascanu et al. 2013). With small
-- inputs tanh stays near its linear range (f' ~ 1), so with W = s Q (Q
-- orthogonal) each step back scales the gradient's norm by about s: it vanishes
-- for s < 1 and explodes for s > 1.

describe('the gradient through time', function()
  -- ||dL/dz^t|| for t = 0..T of L = r . z^T: z^t (from a forward without
  -- recording) is made the initial state of the rest of the sequence, whose
  -- h0.grad is then exactly dL/dz^t.
  local function grad_norms(scale, T, H)
    usagi.manual_seed(5)
    local x = usagi.randn(T, 1, H, { dtype = 'f64', std = 1e-7 })
    local w_hh = nn.init.orthogonal_(usagi.zeros(H, H, { dtype = 'f64' }), scale)
    local ws = { { nn.init.orthogonal_(usagi.zeros(H, H, { dtype = 'f64' })), w_hh } }
    local r = usagi.randn(1, 1, H, { dtype = 'f64' })
    local z = usagi.no_grad(function() return rnn.rnn(x, nil, ws) end)
    local norms = {}
    for t = 0, T - 1 do
      local h0 = (t == 0 and usagi.zeros(1, 1, H, { dtype = 'f64' }) or z[t]:clone():view(1, 1, H))
        :requires_grad(true)
      local _, h_n = rnn.rnn(x:narrow(1, t + 1, T - t), h0, ws)
      h_n:backward(r)
      norms[t] = h0.grad:norm():item()
    end
    norms[T] = r:norm():item()
    return norms
  end

  it('vanishes towards early t for small recurrent weights (0.5 Q)', function()
    local T = 50
    local n = grad_norms(0.5, T, 16)
    for t = 0, T - 1 do assert.is_true(n[t] < n[t + 1], 'step ' .. t) end
    assert.is_true(n[0] / n[T] < 1e-14)            -- about 0.5^50 = 8.9e-16
    assert.is_true(n[T - 10] / n[T] < 0.5 ^ 10 * 1.01)
  end)

  it('explodes towards early t for large recurrent weights (1.25 Q)', function()
    local T = 50
    local n = grad_norms(1.25, T, 16)
    for t = 0, T - 1 do assert.is_true(n[t] > n[t + 1], 'step ' .. t) end
    assert.is_true(n[0] / n[T] > 1e4)              -- 1.25^50 = 7.0e4 in the linear range
    assert.is_true(n[T - 10] / n[T] > 1.25 ^ 10 * 0.9)
  end)
end)
