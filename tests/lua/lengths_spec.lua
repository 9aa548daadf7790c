-- Variable-length batches for every recurrent plugin (rnn, lstm with and
-- without peepholes, gru): a batch with lengths gives, sequence by
-- sequence, what the same net gives on that sequence alone (outputs, zero
-- past the length, final states at the sequence's own last step, and every
-- gradient); PyTorch's packed-sequence results (the lengths cases of the
-- fixtures); gradient checks; nn modules; and bad lengths.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local rnn, lstm, gru = require 'usagi.rnn', require 'usagi.lstm', require 'usagi.gru'
local h = dofile('tests/lua/helpers.lua')
local tensor_of, maxdiff = h.tensor_of, h.maxdiff

local I, H, L, T = 3, 4, 2, 5
local LENGTHS = { 5, 3, 1, 4 }
local B = #LENGTHS

-- Each family as (x, states, ws, lengths) -> out, finals (a list), with
-- its weights per layer.
local FAMILIES = {
  { name = 'rnn', states = 1, gates = 1, w = 4,
    run = function(x, s, ws, len)
      local out, hn = rnn.rnn(x, s[1], ws, { lengths = len })
      return out, { hn }
    end },
  { name = 'lstm', states = 2, gates = 4, w = 4,
    run = function(x, s, ws, len)
      local out, hn, cn = lstm.lstm(x, s[1], s[2], ws, { lengths = len })
      return out, { hn, cn }
    end },
  { name = 'lstm with peepholes', states = 2, gates = 4, w = 7,
    run = function(x, s, ws, len)
      local out, hn, cn = lstm.lstm(x, s[1], s[2], ws, { lengths = len })
      return out, { hn, cn }
    end },
  { name = 'gru', states = 1, gates = 3, w = 4,
    run = function(x, s, ws, len)
      local out, hn = gru.gru(x, s[1], ws, { lengths = len })
      return out, { hn }
    end },
}

local function make(fam)
  local o = { dtype = 'f64', std = 0.5 }
  local ws = {}
  for l = 1, L do
    local G = fam.gates * H
    local w = { usagi.randn(G, l == 1 and I or H, o), usagi.randn(G, H, o), usagi.randn(G, o), usagi.randn(G, o) }
    if fam.w == 7 then w[5], w[6], w[7] = usagi.randn(H, o), usagi.randn(H, o), usagi.randn(H, o) end
    for _, t in pairs(w) do t:requires_grad(true) end
    ws[l] = w
  end
  local x = usagi.randn(T, B, I, o):requires_grad(true)
  local s = {}
  for k = 1, fam.states do s[k] = usagi.randn(L, B, H, o):requires_grad(true) end
  return x, s, ws
end

local function all_leaves(x, s, ws) return h.flat_inputs(x, s, #s, ws) end

local function clear(leaves) for _, t in ipairs(leaves) do t.grad = nil end end

for _, fam in ipairs(FAMILIES) do
  describe(fam.name .. ' with lengths', function()
    before_each(function() usagi.manual_seed(21) end)

    it('gives each sequence what it gives alone, values and gradients (f64)', function()
      local x, s, ws = make(fam)
      local leaves = all_leaves(x, s, ws)
      local r_out = usagi.randn(T, B, H, { dtype = 'f64' })
      local r_fin = {}
      for k = 1, fam.states do r_fin[k] = usagi.randn(L, B, H, { dtype = 'f64' }) end

      -- the batch
      local out, fin = fam.run(x, s, ws, usagi.tensor(LENGTHS, { dtype = 'i32' }))
      local loss = (out * r_out):sum()
      for k = 1, fam.states do loss = loss + (fin[k] * r_fin[k]):sum() end
      loss:backward()
      local batch = {}
      for i, t in ipairs(leaves) do batch[i] = t.grad:clone() end
      clear(leaves)

      -- sequence by sequence, on its own prefix, summed into the same loss
      local total = nil
      for b = 1, B do
        local n = LENGTHS[b]
        local xb = x:narrow(1, 1, n):narrow(2, b, 1)
        local sb = {}
        for k = 1, fam.states do sb[k] = s[k]:narrow(2, b, 1) end
        local ob, fb = fam.run(xb, sb, ws)
        assert.is_true(maxdiff(out:narrow(1, 1, n):narrow(2, b, 1), ob) < 1e-12, 'out of sequence ' .. b)
        if n < T then
          assert.are.equal(0, out:narrow(1, n + 1, T - n):narrow(2, b, 1):abs():max():item(), 'zero past the length')
        end
        local lb = (ob * r_out:narrow(1, 1, n):narrow(2, b, 1)):sum()
        for k = 1, fam.states do
          assert.is_true(maxdiff(fin[k]:narrow(2, b, 1), fb[k]) < 1e-12, 'final state ' .. k .. ' of ' .. b)
          lb = lb + (fb[k] * r_fin[k]:narrow(2, b, 1)):sum()
        end
        total = total and total + lb or lb
      end
      assert.is_true(math.abs(total:item() - loss:item()) < 1e-10)
      total:backward()
      for i, t in ipairs(leaves) do
        assert.is_true(maxdiff(batch[i], t.grad) < 1e-10, 'gradient of leaf ' .. i)
      end
      -- no gradient reaches the input past a sequence's length
      assert.are.equal(0, batch[1]:narrow(1, 2, 4):narrow(2, 3, 1):abs():max():item())
    end)

    it('passes gradcheck', function()
      local x, s, ws = make(fam)
      local leaves = all_leaves(x, s, ws)
      for _, t in ipairs(leaves) do t:requires_grad(false) end
      local len = usagi.tensor({ 2, 5, 1, 3 }, { dtype = 'i32' })
      local has = fam.states == 2 and { true, true } or { true }
      assert.is_true(usagi.gradcheck(function(...)
        local xx, ss, ww = h.unflatten({ ... }, has, ws)
        local out, fin = fam.run(xx, ss, ww, len)
        local outs = { out }
        for k = 1, fam.states do outs[#outs + 1] = fin[k] end
        return outs
      end, leaves, { all = true, atol = 1e-6, rtol = 1e-5 }))
    end)
  end)
end

describe('lengths against PyTorch (the fixtures\' lengths cases)', function()
  for _, spec in ipairs { { 'lstm', lstm.lstm, 2 }, { 'gru', gru.gru, 1 } } do
    local name, op, states = spec[1], spec[2], spec[3]
    for _, case in ipairs(dofile(('tests/reference/%s_fixture.lua'):format(name))) do
      if case.lengths and not case.bidirectional then        -- (birnn_spec)
        for _, dtype in ipairs { 'f64', 'f32' } do
          local tol = dtype == 'f64' and 1e-12 or 1e-5
          it(('torch.nn.%s, lengths {%s}, in %s'):format(name:upper(), table.concat(case.lengths, ', '), dtype), function()
            h.check_fixture(case, dtype, tol, function(x, s0)
              local ws, weight = h.fixture_weights(case, dtype)
              local len = usagi.tensor(case.lengths, { dtype = 'i32' })
              if states == 2 then
                local out, h_n, c_n = op(x, s0[1], s0[2], ws, { lengths = len })
                return out, { h_n, c_n }, weight
              end
              local out, h_n = op(x, s0[1], ws, { lengths = len })
              return out, { h_n }, weight
            end)
          end)
        end
      end
    end
  end
end)

describe('lengths in the nn modules, and bad lengths', function()
  it('nn.RNN, nn.LSTM and nn.GRU take lengths as a list or a tensor', function()
    usagi.manual_seed(3)
    local x = usagi.randn(5, 2, 3)
    for _, m in ipairs { nn.RNN(3, 4), nn.GRU(3, 4) } do
      local out, hn = m(x, nil, { 5, 2 })
      assert.is_true(maxdiff(hn[1][2], out[2][2]) == 0, tostring(m))
      assert.are.equal(0, out:narrow(1, 3, 3):narrow(2, 2, 1):abs():max():item())
    end
    local m = nn.LSTM(3, 4)
    local out, hn = m(x, nil, nil, usagi.tensor({ 5, 2 }, { dtype = 'i32' }))
    assert.is_true(maxdiff(hn[1][2], out[2][2]) == 0)
    local out2 = m(x, { nil, nil }, { 5, 2 })
    assert.is_true(maxdiff(out, out2) == 0)
  end)

  it('names the op, what was expected and what came', function()
    local x, ws = usagi.randn(5, 2, 3), { { usagi.randn(4, 3), usagi.randn(4, 4) } }
    h.fails(function() rnn.rnn(x, nil, ws, { lengths = usagi.tensor { 5, 2 } }) end,
      'rnn: lengths must be an i32 tensor of shape (2,) (one per sequence), got f32 (2,)')
    h.fails(function() rnn.rnn(x, nil, ws, { lengths = usagi.tensor({ 5, 2, 1 }, { dtype = 'i32' }) }) end,
      'rnn: lengths must be an i32 tensor of shape (2,) (one per sequence), got i32 (3,)')
    h.fails(function() rnn.rnn(x, nil, ws, { lengths = usagi.tensor({ 5, 0 }, { dtype = 'i32' }) }) end,
      'rnn: lengths must be in 1..5 (the input\'s T), got 0 for sequence 2')
    h.fails(function() gru.gru(x, nil, { { usagi.randn(12, 3), usagi.randn(12, 4) } },
      { lengths = usagi.tensor({ 6, 1 }, { dtype = 'i32' }) }) end, 'gru: lengths must be in 1..5 (the input\'s T), got 6 for sequence 1')
    h.fails(function() lstm.lstm(x, nil, nil, { { usagi.randn(16, 3), usagi.randn(16, 4) } }, { lengths = 'all' }) end,
      'lstm: lengths must be an i32 tensor (one length per sequence), got string')
    h.fails(function() lstm.lstm(x, nil, nil, { { usagi.randn(16, 3), usagi.randn(16, 4) } }, { lenghts = 2 }) end,
      "lstm: unknown option 'lenghts'")
  end)
end)
