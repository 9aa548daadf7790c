-- batch_first = true for nn.RNN, nn.LSTM and nn.GRU, one- and two-way, as
-- PyTorch: x and out are (B, T, ...), the states stay (layers, B, H). Each
-- case runs the same weights time-major on the transposed input and must
-- give the same bits, forward and backward (lengths too); a gradcheck in
-- f64 checks the batch-first path by finite differences on its own.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local h = dofile('tests/lua/helpers.lua')

local function pair(class, opts)
  usagi.manual_seed(7)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local tm = nn[class](3, 4, o)
  o.batch_first = true
  local bf = nn[class](3, 4, o)
  bf:load_state_dict(tm:state_dict())
  return tm, bf
end

-- out and the final states, whatever the class returns
local function run(m, x, lengths)
  if m.__name == 'LSTM' then return m(x, nil, nil, lengths) end
  return m(x, nil, lengths)
end

describe('batch_first', function()
  for _, class in ipairs { 'RNN', 'LSTM', 'GRU' } do
    for _, bidirectional in ipairs { false, true } do
      for _, with_lengths in ipairs { false, true } do
        it(('%s%s%s: (B, T, I) in, (B, T, H) out, the bits of the time-major call, forward and backward')
          :format(class, bidirectional and ', bidirectional' or '', with_lengths and ', lengths' or ''), function()
          local tm, bf = pair(class, { num_layers = 2, bidirectional = bidirectional })
          local B, T = 3, 5
          local lengths = with_lengths and { 5, 2, 4 } or nil
          local xb = usagi.randn(B, T, 3):requires_grad(true)
          local xt = xb:detach():transpose(1, 2):contiguous():requires_grad(true)
          local ob = { run(bf, xb, lengths) }
          local ot = { run(tm, xt, lengths) }
          local H = bidirectional and 8 or 4
          assert.are.same({ B, T, H }, h.shape(ob[1]))
          assert.is_true(usagi.equal(ob[1], ot[1]:transpose(1, 2)))
          for k = 2, #ot do                      -- states: (layers, B, H) either way
            assert.are.same(h.shape(ot[k]), h.shape(ob[k]))
            assert.is_true(usagi.equal(ob[k], ot[k]))
          end
          local w = usagi.randn(B, T, H)
          ;(ob[1] * w):sum():add(ob[2]:sum()):backward()
          ;(ot[1] * w:transpose(1, 2)):sum():add(ot[2]:sum()):backward()
          assert.is_true(usagi.equal(xb.grad, xt.grad:transpose(1, 2)))
          local pt = tm:named_parameters()
          for i, np in ipairs(bf:named_parameters()) do
            assert.are.equal(pt[i][1], np[1])
            assert.is_true(usagi.equal(np[2].grad, pt[i][2].grad), np[1])
          end
        end)
      end
    end
  end

  it('passes a gradcheck in f64 (a bidirectional LSTM, lengths)', function()
    usagi.manual_seed(3)
    local m = nn.LSTM(3, 2, { bidirectional = true, batch_first = true, dtype = 'f64' })
    local x = usagi.randn(2, 4, 3, { dtype = 'f64' })
    assert.is_true(usagi.gradcheck(function(xx)
      return (m(xx, nil, nil, { 4, 3 }))
    end, { x }, { all = true, atol = 1e-6, rtol = 1e-5 }))
  end)

  it('names the shape it wants, and refuses a non-boolean', function()
    local m = nn.GRU(3, 4, { batch_first = true })
    local ok, err = pcall(m.forward, m, usagi.randn(5, 3))
    assert.is_false(ok)
    assert.truthy(tostring(err):find('GRU: input must be (B, T, 3) with batch_first, got (5, 3)', 1, true), err)
    ok, err = pcall(nn.LSTM, 3, 4, { batch_first = 'yes' })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('LSTM: batch_first must be true or false, got string', 1, true), err)
    assert.truthy(tostring(m):find('batch_first=true', 1, true), tostring(m))
  end)
end)
