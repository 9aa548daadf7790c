-- The LSTM plugin (modules/lstm): the fused op lstm.lstm against PyTorch
-- (tests/reference/lstm_fixture.lua, committed, so no Python at test time)
-- and against the same LSTM composed of tensor ops step by step (which also
-- covers the peepholes PyTorch lacks), gradient checks of every option,
-- nn.LSTM and nn.LSTMCell, and the messages of bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local lstm = require 'usagi.lstm'
local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff
local fixture = dofile('tests/reference/lstm_fixture.lua')

-- layers { {w_ih, w_hh, b_ih, b_hh [, p_i, p_f, p_o]}, ... } drawn N(0, 0.5²)
local function make_weights(I, H, L, dtype, opts)
  opts = opts or {}
  local ws, o = {}, { dtype = dtype, std = 0.5 }
  for l = 1, L do
    local w = { usagi.randn(4 * H, l == 1 and I or H, o), usagi.randn(4 * H, H, o) }
    if opts.bias ~= false then w[3], w[4] = usagi.randn(4 * H, o), usagi.randn(4 * H, o) end
    if opts.peephole then w[5], w[6], w[7] = usagi.randn(H, o), usagi.randn(H, o), usagi.randn(H, o) end
    ws[l] = w
  end
  return ws
end

-- The same LSTM from tensor ops, one step at a time (lstm.h's equations).
local function composed(x, h0, c0, ws)
  local T, layer_in, hs, cs = x:size(1), x, {}, {}
  for l, w in ipairs(ws) do
    local w_ih, w_hh, b_ih, b_hh, p_i, p_f, p_o = table.unpack(w, 1, 7)
    local H = w_hh:size(2)
    local hp = h0 and h0[l] or usagi.zeros(x:size(2), H, { dtype = x:dtype() })
    local cp = c0 and c0[l] or usagi.zeros(x:size(2), H, { dtype = x:dtype() })
    local outs = {}
    for t = 1, T do
      local a = usagi.linear(layer_in[t], w_ih, b_ih) + usagi.linear(hp, w_hh, b_hh)
      local ai, af, ag, ao = a:narrow(2, 1, H), a:narrow(2, H + 1, H), a:narrow(2, 2 * H + 1, H),
        a:narrow(2, 3 * H + 1, H)
      if p_i then ai, af = ai + p_i * cp, af + p_f * cp end
      local i, f, g = ai:sigmoid(), af:sigmoid(), ag:tanh()
      local c = f * cp + i * g
      if p_o then ao = ao + p_o * c end
      hp, cp = ao:sigmoid() * c:tanh(), c
      outs[t] = hp
    end
    hs[l], cs[l] = hp, cp
    layer_in = usagi.stack(outs, 1)
  end
  return layer_in, usagi.stack(hs, 1), usagi.stack(cs, 1)
end

-- all float inputs flattened (x, h0, c0, then the weights), and back
local function flat_inputs(x, h0, c0, ws) return h.flat_inputs(x, { h0, c0 }, 2, ws) end

local function unflatten(list, has_h0, has_c0, ws)
  local x, s, w = h.unflatten(list, { has_h0, has_c0 }, ws)
  return x, s[1], s[2], w
end

-- ==== the fused op =========================================================

describe('lstm.lstm', function()
  before_each(function() usagi.manual_seed(5) end)

  it('returns out (T, B, H) and every layer\'s final h and c (L, B, H)', function()
    local out, h_n, c_n = lstm.lstm(usagi.randn(5, 3, 4), nil, nil, make_weights(4, 6, 2, 'f32'))
    assert.are.same({ 5, 3, 6 }, h.shape(out))
    assert.are.same({ 2, 3, 6 }, h.shape(h_n))
    assert.are.same({ 2, 3, 6 }, h.shape(c_n))
    assert.is_true(maxdiff(out[5], h_n[2]) == 0)
  end)

  describe('against PyTorch (tests/reference/lstm_fixture.lua)', function()
    for _, case in ipairs(fixture) do
      if not case.lengths and not case.bidirectional then      -- (lengths_spec, birnn_spec)
        for _, dtype in ipairs { 'f64', 'f32' } do
          local tol = dtype == 'f64' and 1e-12 or 1e-5
          it(('torch.nn.LSTM, %d layer(s), in %s'):format(case.num_layers, dtype), function()
            h.check_fixture(case, dtype, tol, function(x, s0)
              local ws, weight = h.fixture_weights(case, dtype)
              local out, h_n, c_n = lstm.lstm(x, s0[1], s0[2], ws)
              return out, { h_n, c_n }, weight
            end)
          end)
        end
      end
    end
  end)

  it('matches the LSTM composed of ops step by step, peepholes included (f64)', function()
    for _, opts in ipairs { {}, { peephole = true }, { bias = false, peephole = true } } do
      local x = usagi.randn(6, 3, 4, { dtype = 'f64' }):requires_grad(true)
      local h0 = usagi.randn(2, 3, 5, { dtype = 'f64' }):requires_grad(true)
      local c0 = usagi.randn(2, 3, 5, { dtype = 'f64' }):requires_grad(true)
      local ws = make_weights(4, 5, 2, 'f64', opts)
      for _, w in ipairs(ws) do for k = 1, 7 do if w[k] then w[k]:requires_grad(true) end end end
      local inputs = flat_inputs(x, h0, c0, ws)
      local r = { usagi.randn(6, 3, 5, { dtype = 'f64' }), usagi.randn(2, 3, 5, { dtype = 'f64' }),
                  usagi.randn(2, 3, 5, { dtype = 'f64' }) }
      local function grads(f)
        for _, t in ipairs(inputs) do t.grad = nil end
        local out, h_n, c_n = f(x, h0, c0, ws)
        local loss = (out * r[1]):sum() + (h_n * r[2]):sum() + (c_n * r[3]):sum()
        loss:backward()
        local g = { out, h_n, c_n }
        for _, t in ipairs(inputs) do g[#g + 1] = t.grad end
        return g
      end
      local fused, slow = grads(lstm.lstm), grads(composed)
      assert.are.equal(#slow, #fused)
      for k = 1, #slow do assert.is_true(maxdiff(fused[k], slow[k]) < 1e-10, 'item ' .. k) end
    end
  end)

  describe('gradcheck', function()
    for _, peephole in ipairs { false, true } do
      for L = 1, 2 do
        for _, with_state in ipairs { false, true } do
          local name = ('peephole %s, %d layer(s), h0 and c0 %s, gradient on out, h_n and c_n')
            :format(tostring(peephole), L, tostring(with_state))
          it(name, function()
            local x = usagi.randn(4, 2, 3, { dtype = 'f64' })
            local h0 = with_state and usagi.randn(L, 2, 4, { dtype = 'f64', std = 0.5 }) or nil
            local c0 = with_state and usagi.randn(L, 2, 4, { dtype = 'f64', std = 0.5 }) or nil
            local ws = make_weights(3, 4, L, 'f64', { peephole = peephole })
            assert.is_true(usagi.gradcheck(function(...)
              local xx, hh, cc, ww = unflatten({ ... }, with_state, with_state, ws)
              local out, h_n, c_n = lstm.lstm(xx, hh, cc, ww)
              return { out, h_n, c_n }
            end, flat_inputs(x, h0, c0, ws), { all = true, atol = 1e-6, rtol = 1e-5 }))
          end)
        end
      end
    end

    it('on one output at a time, and through dropout between layers (a fixed mask)', function()
      local x = usagi.randn(3, 2, 3, { dtype = 'f64' })
      local ws = make_weights(3, 4, 2, 'f64')
      for which = 1, 3 do
        assert.is_true(usagi.gradcheck(function(...)
          local xx, _, _, ww = unflatten({ ... }, false, false, ws)
          usagi.manual_seed(3)                   -- the same mask at every call
          return (select(which, lstm.lstm(xx, nil, nil, ww, { dropout = 0.4 })))
        end, flat_inputs(x, nil, nil, ws), { all = true, atol = 1e-6, rtol = 1e-5 }))
      end
    end)
  end)

  describe('bad calls', function()
    local x, ws = usagi.randn(5, 3, 8), make_weights(8, 16, 2, 'f32')

    it('names the argument, what was expected and what came', function()
      h.fails(function() lstm.lstm(usagi.randn(5, 3, 7), nil, nil, ws) end, 'lstm: input must be (T, B, 8), got (5, 3, 7)')
      h.fails(function() lstm.lstm(usagi.randn(5, 3), nil, nil, ws) end, 'lstm: input must be 3-D (T, B, I), time-major, got (5, 3)')
      h.fails(function() lstm.lstm(x:double(), nil, nil, ws) end, 'lstm: weight_ih_l0 must be f64 like the input, got f32')
      h.fails(function() lstm.lstm(x, usagi.zeros(1, 3, 16), nil, ws) end,
        'lstm: h0 must be (2, 3, 16) (num_layers, B, H), got (1, 3, 16)')
      h.fails(function() lstm.lstm(x, nil, usagi.zeros(2, 4, 16), ws) end,
        'lstm: c0 must be (2, 3, 16) (num_layers, B, H), got (2, 4, 16)')
      h.fails(function() lstm.lstm(x, nil, nil, { { usagi.randn(15, 8), usagi.randn(15, 4) } }) end,
        'lstm: weight_ih_l0 must be (4H, I) with H, I >= 1, got (15, 8)')
      h.fails(function() lstm.lstm(x, nil, nil, { ws[1], { usagi.randn(64, 8), ws[2][2] } }) end,
        "lstm: weight_ih_l1 must be (64, 16) (it reads layer 0's 16 outputs), got (64, 8)")
      h.fails(function() lstm.lstm(x, nil, nil, { { ws[1][1], usagi.randn(64, 15) } }) end,
        'lstm: weight_hh_l0 must be (64, 16), got (64, 15)')
      h.fails(function() lstm.lstm(x, nil, nil, { { ws[1][1], ws[1][2], nil, nil, usagi.randn(16) } }) end,
        'lstm: the peephole weights of layer 0 must be all three (weight_ci, weight_cf, weight_co) or none')
      h.fails(function() lstm.lstm(x, nil, nil, { { ws[1][1], ws[1][2], nil, nil, usagi.randn(16),
        usagi.randn(16), usagi.randn(15) } }) end, 'lstm: weight_co_l0 must be (16,), got (15,)')
      h.fails(function() lstm.lstm(x, nil, nil, {}) end, 'weights must list 1 to 64 layers')
      h.fails(function() lstm.lstm(x, nil, nil, { { ws[1][1] } }) end, 'weight_hh of layer 1 must be a tensor, got nil')
      h.fails(function() lstm.lstm(x, nil, nil, ws, { dropout = 1 }) end, 'lstm: dropout must be in [0, 1), got 1')
      h.fails(function() lstm.lstm(x, nil, nil, ws, { dropot = 0.1 }) end, "lstm: unknown option 'dropot'")
    end)
  end)
end)

-- ==== nn.LSTM and nn.LSTMCell ==============================================

describe('nn.LSTM', function()
  before_each(function() usagi.manual_seed(11) end)

  it('has PyTorch\'s parameters, names and init, and prints its options', function()
    assert.are.equal(lstm.LSTM, nn.LSTM)
    local m = nn.LSTM(8, 16, { num_layers = 2 })
    local names = {}
    for i, p in ipairs(m:named_parameters()) do names[i] = p[1] .. tostring(p[2]:size()) end
    assert.are.same({ 'weight_ih_l0(64, 8)', 'weight_hh_l0(64, 16)', 'bias_ih_l0(64,)', 'bias_hh_l0(64,)',
                      'weight_ih_l1(64, 16)', 'weight_hh_l1(64, 16)', 'bias_ih_l1(64,)', 'bias_hh_l1(64,)' }, names)
    for _, p in ipairs(m:parameters()) do assert.is_true(p:abs():max():item() <= 0.25) end
    assert.are.equal('LSTM(8, 16, num_layers=2)  -- 3,840 params', tostring(m))
    local p = nn.LSTM(3, 5, { peephole = true, forget_bias = 1 })
    assert.are.same({ 5 }, h.shape(p.weight_cf_l0))
    local b = p.bias_ih_l0 + p.bias_hh_l0
    assert.is_true(maxdiff(b:narrow(1, 6, 5), usagi.ones(5)) < 1e-7, 'forget gate bias')
    assert.truthy(tostring(p):find('peephole=true, forget_bias=1', 1, true))
    h.fails(function() nn.LSTM(3, 5, { bidirectional = true, carry = true }) end, 'LSTM: carry does not go with bidirectional')
    h.fails(function() nn.LSTM(3, 5, { peepholes = true }) end, "LSTM: unknown option 'peepholes'")
    h.fails(function() nn.LSTM(3, 0) end, 'LSTM: hidden_size must be a positive integer, got 0')
  end)

  it('loads a PyTorch state_dict and gives PyTorch\'s outputs', function()
    local case = fixture[2]
    local m = nn.LSTM(case.input_size, case.hidden_size, { num_layers = case.num_layers, dtype = 'f64' })
    local sd = {}
    for name, spec in pairs(case.weights) do sd[name] = tensor_of(spec) end
    m:load_state_dict(sd)
    local out, h_n, c_n = m(tensor_of(case.x), { tensor_of(case.h0), tensor_of(case.c0) })
    assert.is_true(maxdiff(out, tensor_of(case.out)) < 1e-12)
    assert.is_true(maxdiff(h_n, tensor_of(case.h_n)) < 1e-12)
    assert.is_true(maxdiff(c_n, tensor_of(case.c_n)) < 1e-12)
  end)

  it('drops out between layers only in training mode, and carries (h, c) with carry = true', function()
    local m = nn.LSTM(3, 4, { num_layers = 2, dropout = 0.5, carry = true })
    local x = usagi.randn(5, 2, 3)
    m:eval()
    local a = m(x)
    m:reset()
    local b = m(x)
    assert.is_true(maxdiff(a, b) == 0, 'eval is deterministic')
    local c = m(x)                               -- starts from the carried state
    assert.is_true(maxdiff(b, c) > 0)
    local _, h_n, c_n = m(x, m.h, m.c)
    assert.is_nil(m.h:grad_fn())
    assert.is_true(maxdiff(h_n, m.h) == 0 and maxdiff(c_n, m.c) == 0)
    m:reset():train()
    assert.is_true(maxdiff(m(x), a) > 0, 'dropout in training')
    h.fails(function() m(usagi.randn(5, 3, 3)) end, 'call :reset() first')
  end)
end)

describe('nn.LSTMCell', function()
  it('is one step of nn.LSTM with the same weights', function()
    usagi.manual_seed(2)
    local seq = nn.LSTM(3, 4, { peephole = true, dtype = 'f64' })
    local cell = nn.LSTMCell(3, 4, { peephole = true, dtype = 'f64' })
    usagi.no_grad(function()
      for _, n in ipairs { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh', 'weight_ci', 'weight_cf', 'weight_co' } do
        cell[n]:copy_(seq[n .. '_l0'])
      end
    end)
    local x = usagi.randn(6, 2, 3, { dtype = 'f64' })
    local out, h_n, c_n = seq(x)
    local hh, cc
    for t = 1, 6 do
      hh, cc = cell(x[t], hh, cc)
      assert.is_true(maxdiff(hh, out[t]) < 1e-14, 'step ' .. t)
    end
    assert.is_true(maxdiff(hh, h_n[1]) < 1e-14 and maxdiff(cc, c_n[1]) < 1e-14)
    assert.are.equal('LSTMCell(3, 4, peephole=true)  -- 156 params', tostring(cell))
    h.fails(function() cell(x) end, 'LSTMCell: input must be (B, 3), got (6, 2, 3)')
    h.fails(function() cell(x[1], usagi.zeros(4)) end, 'LSTMCell: h must be (B, 4), got (4,)')
  end)
end)
