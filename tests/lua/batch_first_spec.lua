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

-- PyTorch's batch_first is its time-major net on the transposed input,
-- with the output transposed back; so every case of the PyTorch fixtures
-- (tests/reference/*_fixture.lua, time-major) is fed here as (B, T, I) to
-- a batch_first module, whose output, states and every gradient must match.
describe('batch_first against the PyTorch fixtures', function()
  local CLASSES = { rnn = nn.RNN, lstm = nn.LSTM, gru = nn.GRU }
  for _, family in ipairs { 'rnn', 'lstm', 'gru' } do
    for i, case in ipairs(dofile(('tests/reference/%s_fixture.lua'):format(family))) do
      it(('torch.nn.%s case %d%s%s, in f64'):format(family:upper(), i, case.bidirectional and ', bidirectional' or '',
        case.lengths and ', lengths' or ''), function()
        local m = CLASSES[family](case.input_size, case.hidden_size, { num_layers = case.num_layers,
          bidirectional = case.bidirectional, nonlinearity = case.nonlinearity, dtype = 'f64',
          batch_first = true })
        local sd = {}
        for name, spec in pairs(case.weights) do sd[name] = h.tensor_of(spec, 'f64') end
        m:load_state_dict(sd)
        h.check_fixture(case, 'f64', 1e-12, function(x, s0)
          local xb = x:transpose(1, 2)                -- (B, T, I), as a batch_first user holds it
          local out, h_n, c_n
          if s0[2] then out, h_n, c_n = m(xb, s0[1], s0[2], case.lengths)
          else out, h_n = m(xb, s0[1], case.lengths) end
          assert.are.equal(x:size(2), out:size(1))    -- (B, T, H)
          return out:transpose(1, 2), { h_n, c_n }, function(name) return m[name] end
        end)
      end)
    end
  end
end)

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

describe('run:batches along a chosen dim', function()
  local E = require 'usagi.experiment'
  local function batches_of(tensors, opts)
    local got = {}
    E.run_experiment(usagi.experiment { name = 'dims', config = { n = 1 }, run = function(run)
      for a, b in run:batches(tensors, 4, opts) do got[#got + 1] = { a:clone(), b:clone() } end
    end }, { quiet = true, seed = 5 })
    return got
  end

  it('cuts (T, N, F) sequences along dim 2 as it cuts their transpose along dim 1', function()
    local T, N, F = 3, 10, 2
    local x = usagi.arange(1, T * N * F + 1):view(T, N, F)
    local y = usagi.arange(1, N + 1)
    local by2 = batches_of({ x, y }, { dim = { 2, 1 } })
    local by1 = batches_of({ x:transpose(1, 2):contiguous(), y })
    assert.are.equal(3, #by2)
    local seen = 0
    for i, b in ipairs(by2) do
      local xb, yb = b[1], b[2]
      assert.are.equal(T, xb:size(1)); assert.are.equal(F, xb:size(3))
      assert.are.equal(yb:numel(), xb:size(2))
      assert.is_true(usagi.equal(xb:transpose(1, 2), by1[i][1]))
      assert.is_true(usagi.equal(yb, by1[i][2]))
      for j = 1, yb:numel() do      -- column j of xb is sample yb[j]
        assert.are.equal((yb[j] - 1) * F + 1, xb[{ 1, j, 1 }])
      end
      seen = seen + yb:numel()
    end
    assert.are.equal(N, seen)
  end)

  it('names a bad dim and samples that differ', function()
    local run_err = function(tensors, opts)
      local ok, err = pcall(batches_of, tensors, opts)
      assert.is_false(ok)
      return tostring(err)
    end
    local err = run_err({ usagi.zeros(3, 4) }, { dim = 3 })
    assert.truthy(err:find('run:batches: dim for tensor 1 must be an integer in 1..2', 1, true), err)
    err = run_err({ usagi.zeros(3, 4), usagi.zeros(3) }, { dim = { 2, 1 } })
    assert.truthy(err:find('run:batches: tensor 2 has 3 samples, the first 4 (dims 1 and 2)', 1, true), err)
  end)
end)
