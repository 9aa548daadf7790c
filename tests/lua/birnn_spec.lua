-- The bidirectional plugin (modules/birnn): the per-sequence reversal op,
-- and nn.RNN, nn.LSTM and nn.GRU with bidirectional = true against PyTorch's
-- bidirectional nets (the fixtures' bidirectional cases, some with lengths),
-- the 'sum' merge, and bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local birnn = require 'usagi.birnn'
require 'usagi.rnn'
require 'usagi.lstm'
require 'usagi.gru'
local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff

describe('birnn.reverse', function()
  it('reverses each sequence within its length and leaves the padding in place', function()
    local x = usagi.arange(1, 13):view(4, 3, 1)          -- x[t, b] = 3 (t - 1) + b
    local y = birnn.reverse(x, usagi.tensor({ 4, 2, 1 }, { dtype = 'i32' }))
    assert.are.same({ { { 10 }, { 5 }, { 3 } }, { { 7 }, { 2 }, { 6 } }, { { 4 }, { 8 }, { 9 } },
                      { { 1 }, { 11 }, { 12 } } }, y:totable())
    assert.are.same(x:totable(), birnn.reverse(birnn.reverse(x)):totable())
    assert.are.same({ { { 10 }, { 11 }, { 12 } } }, birnn.reverse(x):narrow(1, 1, 1):totable())
  end)

  it('passes gradcheck, with and without lengths', function()
    local x = usagi.randn(5, 3, 2, { dtype = 'f64' })
    for _, len in ipairs { false, usagi.tensor({ 5, 2, 3 }, { dtype = 'i32' }) } do
      assert.is_true(usagi.gradcheck(function(a) return birnn.reverse(a, len or nil) * a end, { x }, { all = true }))
    end
  end)

  it('names what it expected and what came', function()
    h.fails(function() birnn.reverse(usagi.randn(3, 2)) end, 'birnn.reverse: input must be 3-D (T, B, n), got (3, 2)')
    h.fails(function() birnn.reverse(usagi.randn(3, 2, 1), usagi.tensor({ 4, 1 }, { dtype = 'i32' })) end,
      "birnn.reverse: lengths must be in 1..3 (the input's T), got 4 for sequence 1")
  end)
end)

-- The fixture's bidirectional cases through the nn modules.
local CLASSES = { rnn = nn.RNN, lstm = nn.LSTM, gru = nn.GRU }

describe('bidirectional nets against PyTorch', function()
  for _, family in ipairs { 'rnn', 'lstm', 'gru' } do
    for _, case in ipairs(dofile(('tests/reference/%s_fixture.lua'):format(family))) do
      if case.bidirectional then
        for _, dtype in ipairs { 'f64', 'f32' } do
          local tol = dtype == 'f64' and 1e-12 or 1e-5
          local what = ('torch.nn.%s, %d layer(s), bidirectional%s, in %s'):format(family:upper(), case.num_layers,
            case.lengths and ', lengths {' .. table.concat(case.lengths, ', ') .. '}' or '', dtype)
          it(what, function()
            local m = CLASSES[family](case.input_size, case.hidden_size, { num_layers = case.num_layers,
              bidirectional = true, nonlinearity = case.nonlinearity, dtype = dtype })
            local sd = {}
            for name, spec in pairs(case.weights) do sd[name] = tensor_of(spec, dtype) end
            m:load_state_dict(sd)
            h.check_fixture(case, dtype, tol, function(x, s0)
              local out, h_n, c_n
              if s0[2] then out, h_n, c_n = m(x, s0[1], s0[2], case.lengths)
              else out, h_n = m(x, s0[1], case.lengths) end
              return out, { h_n, c_n }, function(name) return m[name] end
            end)
          end)
        end
      end
    end
  end
end)

describe('bidirectional options', function()
  it("merge = 'sum' adds the two directions that 'concat' puts side by side", function()
    usagi.manual_seed(4)
    local cat = nn.GRU(3, 4, { bidirectional = true, dtype = 'f64' })
    local sum = nn.GRU(3, 4, { bidirectional = true, merge = 'sum', dtype = 'f64' })
    sum:load_state_dict(cat:state_dict())
    local x = usagi.randn(6, 2, 3, { dtype = 'f64' })
    local a, b = cat(x, nil, { 6, 4 }), sum(x, nil, { 6, 4 })
    assert.is_true(maxdiff(a:narrow(3, 1, 4) + a:narrow(3, 5, 4), b) < 1e-15)
    local two = nn.LSTM(3, 4, { bidirectional = true, merge = 'sum', num_layers = 2 })
    assert.are.same({ 16, 4 }, h.shape(two.weight_ih_l1_reverse))  -- layer 1 reads H, not 2H
    assert.are.equal("LSTM(3, 4, num_layers=2, bidirectional=true, merge='sum')  -- 608 params", tostring(two))
  end)

  it('checks the initial states and the options', function()
    local m = nn.LSTM(3, 4, { bidirectional = true, num_layers = 2 })
    h.fails(function() m(usagi.randn(5, 2, 3), usagi.zeros(2, 2, 4)) end,
      'LSTM: h0 must be (2 * num_layers, B, H) = (4, B, 4) for a bidirectional net, got (2, 2, 4)')
    h.fails(function() nn.RNN(3, 4, { bidirectional = true, merge = 'max' }) end, "RNN: merge must be 'concat' or 'sum', got 'max'")
    h.fails(function() nn.GRU(3, 4, { bidirectional = true, carry = true }) end, 'GRU: carry does not go with bidirectional')
  end)
end)
