-- The GRU plugin (modules/gru): the fused op gru.gru against PyTorch
-- (tests/reference/gru_fixture.lua) and against the same GRU composed of
-- tensor ops step by step, gradient checks, nn.GRU and nn.GRUCell, and the
-- messages of bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local gru = require 'usagi.gru'
local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff
local fixture = dofile('tests/reference/gru_fixture.lua')

-- layers { {w_ih, w_hh [, b_ih, b_hh]}, ... } drawn N(0, 0.5²)
local function make_weights(I, H, L, dtype, bias)
  local ws, o = {}, { dtype = dtype, std = 0.5 }
  for l = 1, L do
    ws[l] = { usagi.randn(3 * H, l == 1 and I or H, o), usagi.randn(3 * H, H, o) }
    if bias ~= false then ws[l][3], ws[l][4] = usagi.randn(3 * H, o), usagi.randn(3 * H, o) end
  end
  return ws
end

-- The same GRU from tensor ops, one step at a time (gru.h's equations).
local function composed(x, h0, ws)
  local T, layer_in, finals = x:size(1), x, {}
  for l, w in ipairs(ws) do
    local w_ih, w_hh, b_ih, b_hh = table.unpack(w, 1, 4)
    local H = w_hh:size(2)
    local hp = h0 and h0[l] or usagi.zeros(x:size(2), H, { dtype = x:dtype() })
    local outs = {}
    for t = 1, T do
      local a, r_ = usagi.linear(layer_in[t], w_ih, b_ih), usagi.linear(hp, w_hh, b_hh)
      local function part(m, k) return m:narrow(2, k * H + 1, H) end
      local r = (part(a, 0) + part(r_, 0)):sigmoid()
      local z = (part(a, 1) + part(r_, 1)):sigmoid()
      local n = (part(a, 2) + r * part(r_, 2)):tanh()
      hp = (1 - z) * n + z * hp
      outs[t] = hp
    end
    finals[l] = hp
    layer_in = usagi.stack(outs, 1)
  end
  return layer_in, usagi.stack(finals, 1)
end

local function flat_inputs(x, h0, ws) return h.flat_inputs(x, { h0 }, 1, ws) end

local function unflatten(list, has_h0, ws)
  local x, s, w = h.unflatten(list, { has_h0 }, ws)
  return x, s[1], w
end

describe('gru.gru', function()
  before_each(function() usagi.manual_seed(5) end)

  it('returns out (T, B, H) and every layer\'s final state (L, B, H)', function()
    local out, h_n = gru.gru(usagi.randn(5, 3, 4), nil, make_weights(4, 6, 2, 'f32'))
    assert.are.same({ 5, 3, 6 }, h.shape(out))
    assert.are.same({ 2, 3, 6 }, h.shape(h_n))
    assert.is_true(maxdiff(out[5], h_n[2]) == 0)
  end)

  describe('against PyTorch (tests/reference/gru_fixture.lua)', function()
    for _, case in ipairs(fixture) do
      if not case.lengths and not case.bidirectional then      -- (lengths_spec, birnn_spec)
        for _, dtype in ipairs { 'f64', 'f32' } do
          local tol = dtype == 'f64' and 1e-12 or 1e-5
          it(('torch.nn.GRU, %d layer(s), in %s'):format(case.num_layers, dtype), function()
            h.check_fixture(case, dtype, tol, function(x, s0)
              local ws, weight = h.fixture_weights(case, dtype)
              local out, h_n = gru.gru(x, s0[1], ws)
              return out, { h_n }, weight
            end)
          end)
        end
      end
    end
  end)

  it('matches the GRU composed of ops step by step, with and without biases (f64)', function()
    for _, bias in ipairs { true, false } do
      local x = usagi.randn(6, 3, 4, { dtype = 'f64' }):requires_grad(true)
      local h0 = usagi.randn(2, 3, 5, { dtype = 'f64' }):requires_grad(true)
      local ws = make_weights(4, 5, 2, 'f64', bias)
      for _, w in ipairs(ws) do for k = 1, 4 do if w[k] then w[k]:requires_grad(true) end end end
      local inputs = flat_inputs(x, h0, ws)
      local r = { usagi.randn(6, 3, 5, { dtype = 'f64' }), usagi.randn(2, 3, 5, { dtype = 'f64' }) }
      local function grads(f)
        for _, t in ipairs(inputs) do t.grad = nil end
        local out, h_n = f(x, h0, ws)
        local loss = (out * r[1]):sum() + (h_n * r[2]):sum()
        loss:backward()
        local g = { out, h_n }
        for _, t in ipairs(inputs) do g[#g + 1] = t.grad end
        return g
      end
      local fused, slow = grads(gru.gru), grads(composed)
      assert.are.equal(#slow, #fused)
      for k = 1, #slow do assert.is_true(maxdiff(fused[k], slow[k]) < 1e-10, 'item ' .. k) end
    end
  end)

  describe('gradcheck', function()
    for L = 1, 2 do
      for _, with_h0 in ipairs { false, true } do
        for _, on in ipairs { 'out', 'h_n', 'both' } do
          it(('%d layer(s), h0 %s, gradient on %s'):format(L, tostring(with_h0), on), function()
            local x = usagi.randn(4, 2, 3, { dtype = 'f64' })
            local h0 = with_h0 and usagi.randn(L, 2, 4, { dtype = 'f64', std = 0.5 }) or nil
            local ws = make_weights(3, 4, L, 'f64')
            assert.is_true(usagi.gradcheck(function(...)
              local xx, hh, ww = unflatten({ ... }, with_h0, ws)
              local out, h_n = gru.gru(xx, hh, ww)
              if on == 'out' then return out elseif on == 'h_n' then return h_n end
              return { out, h_n }
            end, flat_inputs(x, h0, ws), { all = true, atol = 1e-6, rtol = 1e-5 }))
          end)
        end
      end
    end

    it('without biases, and through dropout between layers (a fixed mask)', function()
      local x = usagi.randn(4, 2, 3, { dtype = 'f64' })
      local ws = make_weights(3, 4, 2, 'f64', false)
      assert.is_true(usagi.gradcheck(function(...)
        local xx, _, ww = unflatten({ ... }, false, ws)
        usagi.manual_seed(3)
        local out, h_n = gru.gru(xx, nil, ww, { dropout = 0.4 })
        return { out, h_n }
      end, flat_inputs(x, nil, ws), { all = true, atol = 1e-6, rtol = 1e-5 }))
    end)
  end)

  it('names the argument, what was expected and what came, in bad calls', function()
    local x, ws = usagi.randn(5, 3, 8), make_weights(8, 16, 2, 'f32')
    h.fails(function() gru.gru(usagi.randn(5, 3, 7), nil, ws) end, 'gru: input must be (T, B, 8), got (5, 3, 7)')
    h.fails(function() gru.gru(x:double(), nil, ws) end, 'gru: weight_ih_l0 must be f64 like the input, got f32')
    h.fails(function() gru.gru(x, usagi.zeros(1, 3, 16), ws) end,
      'gru: h0 must be (2, 3, 16) (num_layers, B, H), got (1, 3, 16)')
    h.fails(function() gru.gru(x, nil, { { usagi.randn(16, 8), usagi.randn(16, 5) } }) end,
      'gru: weight_ih_l0 must be (3H, I) with H, I >= 1, got (16, 8)')
    h.fails(function() gru.gru(x, nil, { ws[1], { usagi.randn(48, 8), ws[2][2] } }) end,
      "gru: weight_ih_l1 must be (48, 16) (it reads layer 0's 16 outputs), got (48, 8)")
    h.fails(function() gru.gru(x, nil, { { ws[1][1], ws[1][2], usagi.randn(47) } }) end,
      'gru: bias_ih_l0 must be (48,), got (47,)')
    h.fails(function() gru.gru(x, nil, {}) end, 'weights must list 1 to 64 layers, each {weight_ih, weight_hh [, bias_ih, bias_hh]}')
    h.fails(function() gru.gru(x, nil, ws, { dropout = -0.1 }) end, 'gru: dropout must be in [0, 1), got -0.1')
  end)
end)

describe('nn.GRU and nn.GRUCell', function()
  before_each(function() usagi.manual_seed(11) end)

  it('have PyTorch\'s parameters and outputs, and the cell is one step of the GRU', function()
    assert.are.equal(gru.GRU, nn.GRU)
    local case = fixture[2]
    local m = nn.GRU(case.input_size, case.hidden_size, { num_layers = case.num_layers, dtype = 'f64' })
    local names = {}
    for i, p in ipairs(m:named_parameters()) do names[i] = p[1] .. tostring(p[2]:size()) end
    assert.are.same({ 'weight_ih_l0(18, 4)', 'weight_hh_l0(18, 6)', 'bias_ih_l0(18,)', 'bias_hh_l0(18,)',
                      'weight_ih_l1(18, 6)', 'weight_hh_l1(18, 6)', 'bias_ih_l1(18,)', 'bias_hh_l1(18,)' }, names)
    local sd = {}
    for name, spec in pairs(case.weights) do sd[name] = tensor_of(spec) end
    m:load_state_dict(sd)
    local out, h_n = m(tensor_of(case.x), tensor_of(case.h0))
    assert.is_true(maxdiff(out, tensor_of(case.out)) < 1e-12)
    assert.is_true(maxdiff(h_n, tensor_of(case.h_n)) < 1e-12)

    local cell = nn.GRUCell(4, 6, { dtype = 'f64' })
    usagi.no_grad(function()
      for _, n in ipairs { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh' } do cell[n]:copy_(m[n .. '_l0']) end
    end)
    local one = nn.GRU(4, 6, { dtype = 'f64' })
    one:load_state_dict { weight_ih_l0 = m.weight_ih_l0, weight_hh_l0 = m.weight_hh_l0,
                          bias_ih_l0 = m.bias_ih_l0, bias_hh_l0 = m.bias_hh_l0 }
    local x = tensor_of(case.x)
    local seq = one(x)
    local hh
    for t = 1, x:size(1) do
      hh = cell(x[t], hh)
      assert.is_true(maxdiff(hh, seq[t]) < 1e-14, 'step ' .. t)
    end
    assert.are.equal('GRUCell(4, 6)  -- 216 params', tostring(cell))
    h.fails(function() cell(x) end, 'GRUCell: input must be (B, 4), got (5, 3, 4)')
  end)

  it('carries its state with carry = true, drops out only in training, and checks options', function()
    local m = nn.GRU(3, 4, { num_layers = 2, dropout = 0.5, carry = true })
    local x = usagi.randn(5, 2, 3)
    m:eval()
    local a = m(x)
    local b = m(x)
    assert.is_true(maxdiff(a, b) > 0, 'the second call starts from the carried state')
    m:reset()
    assert.is_true(maxdiff(m(x), a) == 0)
    h.fails(function() m(usagi.randn(5, 3, 3)) end, 'GRU: the carried state is for batches of 2')
    h.fails(function() nn.GRU(3, 4, { dropout = 2 }) end, 'GRU: dropout must be a number in [0, 1), got 2')
    h.fails(function() nn.GRU(3, 4, { nonlinearity = 'relu' }) end, "GRU: unknown option 'nonlinearity'")
    assert.are.equal('GRU(3, 4, num_layers=2, dropout=0.5, carry=true)  -- 228 params', tostring(m))
  end)
end)
