-- The seq2seq plugin (modules/seq2seq): top-k, the teacher-forced decoder
-- against the same decoder a step at a time (every variant: cells,
-- bidirectional encoder, attention, peeky, reversal, lengths), the masked
-- loss, scheduled sampling, greedy / sampled / beam decoding, and bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local S = require 'usagi.seq2seq'
local h = dofile('tests/lua/helpers.lua')
local maxdiff = h.maxdiff

describe('seq2seq.topk', function()
  it('gives the k largest of each row, best first, ties by lower index, NaN last', function()
    local v, i = S.topk(usagi.tensor { { 1, 5, 3, 5, 0 / 0, 2 }, { -1, -2, -3, -4, -5, -6 } }, 3)
    assert.are.same({ { 5, 5, 3 }, { -1, -2, -3 } }, v:totable())
    assert.are.same({ { 2, 4, 3 }, { 1, 2, 3 } }, i:totable())
    local v2, i2 = S.topk(usagi.tensor { { 0 / 0, 1 } }, 2)
    assert.are.equal(1, v2[1][1])
    assert.are.same({ { 2, 1 } }, i2:totable())
  end)

  it('names what it expected and what came', function()
    h.fails(function() S.topk(usagi.tensor { 1, 2 }, 1) end, 'topk: x must be a 2-D f32 or f64 tensor (N, C), got f32 (2,)')
    h.fails(function() S.topk(usagi.zeros(2, 3), 4) end, 'topk: k must be in [1, 3] (the row length, at most 4096), got 4')
  end)
end)

local V = 7

local function ids(B, T, seed)
  usagi.manual_seed(seed)
  return (usagi.rand(B, T) * (V - 1)):floor():int() + 2                 -- 2..V (1 is left for pad)
end

local VARIANTS = {
  { cell = 'lstm' },
  { cell = 'gru', attention = 'general' },
  { cell = 'rnn', peeky = true },
  { cell = 'lstm', bidirectional = true, attention = 'additive', peeky = true, reverse_input = true },
  { cell = 'gru', bidirectional = true, attention = 'dot', layers = 2 },
}

local function model_of(o)
  usagi.manual_seed(11)
  local opts = { src_vocab = V, tgt_vocab = V, embed = 5, hidden = 6, dtype = 'f64', pad = 1 }
  for k, v in pairs(o) do opts[k] = v end
  return nn.Seq2Seq(opts)
end

describe('nn.Seq2Seq', function()
  local src, y = ids(3, 5, 1), ids(3, 4, 2)
  local lengths = { 5, 3, 4 }

  it('decodes a step at a time exactly as the teacher-forced pass does, every variant', function()
    for n, o in ipairs(VARIANTS) do
      local m = model_of(o)
      local full = m(src, y, lengths)                                   -- (B, T, V)
      local enc = m:encode(src, lengths)
      local steps = m:unroll(enc, y, 1e-300)                            -- never feeds its own guess
      assert.is_true(maxdiff(full, steps) < 1e-12, 'variant ' .. n)
    end
  end)

  it('leaves padded targets out of the loss', function()
    local m = model_of { cell = 'lstm', attention = 'dot' }
    local yy = y:clone()
    yy[1][4], yy[2][3], yy[2][4] = 1, 1, 1                                -- pad the ends of two targets
    local logits = m(src, yy:narrow(2, 1, 3))
    local want = usagi.cross_entropy(logits:reshape(-1, V), yy:narrow(2, 2, 3):reshape(-1), { ignore_index = 1 })
    assert.is_true(math.abs(m:loss(src, yy):item() - want:item()) < 1e-12)
    local each = usagi.cross_entropy(logits:reshape(-1, V), yy:narrow(2, 2, 3):reshape(-1), { reduction = 'none' })
    local sum, n = 0, 0
    for k, t in ipairs(yy:narrow(2, 2, 3):reshape(-1):totable()) do
      if t ~= 1 then sum, n = sum + each[k], n + 1 end
    end
    assert.is_true(math.abs(want:item() - sum / n) < 1e-12)
  end)

  it('trains through scheduled sampling, feeding its own guesses', function()
    local m = model_of { cell = 'gru', attention = 'dot' }
    local tf = m:loss(src, y):item()
    usagi.manual_seed(3)
    local ss = m:loss(src, y, { sampling = 1 })
    ss:backward()
    for _, p in ipairs(m:parameters()) do assert.is_not_nil(p.grad) end
    assert.is_true(math.abs(ss:item() - tf) > 1e-9)                     -- other inputs after step 1
  end)

  it('passes gradcheck through the whole model (a small f64 one)', function()
    local m = model_of { cell = 'lstm', attention = 'additive', peeky = true, bidirectional = true }
    local install = h.installer(m)
    local ok = usagi.gradcheck(function(...)
      install(...)
      return m:loss(src, y, { lengths = lengths })
    end, m:parameters(), { eps = 1e-6, atol = 1e-5 })
    assert.is_true(ok)
  end)

  it('decodes by beam search with beam 1 as by greedy choice, and finds a likelier answer with more beams', function()
    for _, o in ipairs { { cell = 'lstm', attention = 'dot' }, { cell = 'gru', peeky = true } } do
      local m = model_of(o)
      local g = m:generate(src, { start = 2, max_len = 4 })
      local b1 = m:generate(src, { start = 2, max_len = 4, method = 'beam', beam = 1 })
      assert.are.same(g, b1)
      local b5 = m:generate(src, { start = 2, max_len = 4, method = 'beam', beam = 5 })
      -- log p(answer | src) of each, teacher-forced
      local function logp(seqs)
        local rows = {}
        for b, s in ipairs(seqs) do rows[b] = { 2, table.unpack(s) } end
        local yy = usagi.tensor(rows, 'i32')
        local lp = usagi.log_softmax(m(src, yy:narrow(2, 1, 4)), 3)
        local out = {}
        for b = 1, #seqs do
          out[b] = 0
          for t = 1, 4 do out[b] = out[b] + lp[b][t][rows[b][t + 1]] end
        end
        return out
      end
      local lg, lb = logp(g), logp(b5)
      for b = 1, #g do assert.is_true(lb[b] >= lg[b] - 1e-9, ('row %d: beam %g < greedy %g'):format(b, lb[b], lg[b])) end
    end
  end)

  it('stops each answer at the stop id, and samples with a temperature', function()
    local m = model_of { cell = 'lstm' }
    local g = m:generate(src, { start = 2, max_len = 6 })
    local stop = g[1][2]
    local cut = m:generate(src, { start = 2, max_len = 6, stop = stop })
    for b = 1, 3 do
      for _, t in ipairs(cut[b]) do assert.are_not.equal(stop, t) end
    end
    usagi.manual_seed(4)
    local s1 = m:generate(src, { start = 2, max_len = 6, method = 'sample', temperature = 0.7 })
    usagi.manual_seed(4)
    local s2 = m:generate(src, { start = 2, max_len = 6, method = 'sample', temperature = 0.7 })
    assert.are.same(s1, s2)
    assert.are.equal(6, #s1[1])
  end)

  it('names what it expected and what came', function()
    h.fails(function() nn.Seq2Seq { src_vocab = V, tgt_vocab = V, cell = 'tcn' } end, "Seq2Seq: cell must be 'lstm', 'gru' or 'rnn', got tcn")
    h.fails(function() nn.Seq2Seq { src_vocab = V, tgt_vocab = V, hiden = 3 } end, "Seq2Seq: unknown option 'hiden'")
    h.fails(function() nn.Seq2Seq { src_vocab = 0, tgt_vocab = V } end, 'Seq2Seq: src_vocab must be a positive integer (the vocabulary size), got 0')
    local m = model_of {}
    h.fails(function() m:loss(src, y:narrow(2, 1, 1)) end, 'Seq2Seq: y must be a (B, 1 + T) tensor of ids (the start id, then the target), got (3, 1)')
    h.fails(function() m:generate(src, { max_len = 3 }) end, 'Seq2Seq:generate: start must be a token id, got nil')
    h.fails(function() m:generate(src, { start = 2, max_len = 3, method = 'nucleus' }) end, "Seq2Seq:generate: method must be 'greedy', 'sample' or 'beam', got nucleus")
    h.fails(function() m:generate(src, { start = 2, max_len = 3, method = 'beam', beam = 9 }) end, 'Seq2Seq:generate: beam must be an integer in [1, 7], got 9')
  end)
end)

describe('nn.HRED', function()
  local examples = {
    { context = { { 5, 6, 7 } }, response = { 8, 9 } },
    { context = { { 5 }, { 6, 7 }, { 8, 9, 5, 6 }, { 7 } }, response = { 9 } },
  }
  local opts = { pad = 1, start = 2, stop = 3, context = 3 }

  it('batches contexts left-aligned with their lengths, and responses with start and stop', function()
    local b = S.dialogue_batch(examples, 1, 2, opts)
    assert.are.same({ 1, 3 }, b.turns)                                  -- example 2 keeps its last 3 turns
    assert.are.same({ 3, 1, 1, 2, 4, 1 }, b.ctx_len)
    assert.are.same({ 5, 6, 7, 1 }, b.ctx[1]:totable())
    assert.are.same({ 7, 1, 1, 1 }, b.ctx[6]:totable())
    assert.are.same({ { 2, 8, 9, 3 }, { 2, 9, 3, 1 } }, b.resp:totable())
    assert.are.same({ 2, 1 }, b.resp_len)
  end)

  it('passes gradcheck through HRED and VHRED (eps fixed by the seed)', function()
    local b = S.dialogue_batch(examples, 1, 2, opts)
    for _, latent in ipairs { 0, 3 } do
      usagi.manual_seed(4)
      local m = nn.HRED { vocab = 10, embed = 3, hidden = 4, context = 4, decoder = 5, latent = latent,
                          pad = 1, dtype = 'f64' }
      local install = h.installer(m)
      local ok = usagi.gradcheck(function(...)
        install(...)
        usagi.manual_seed(5)
        return (m:loss(b, { beta = 0.7 }))
      end, m:parameters(), { eps = 1e-6, atol = 1e-5 })
      assert.is_true(ok, 'latent ' .. latent)
    end
  end)

  it('reports the KL alone and answers from the prior', function()
    usagi.manual_seed(4)
    local m = nn.HRED { vocab = 10, embed = 3, hidden = 4, context = 4, decoder = 5, latent = 3, pad = 1 }
    local loss, info = m:loss(S.dialogue_batch(examples, 1, 2, opts), { beta = 0 })
    assert.is_true(info.kl > 0)
    assert.is_true(math.abs(loss:item() - info.nll) < 1e-5)             -- beta 0: the NLL alone
    local out = m:generate(S.dialogue_batch(examples, 1, 2, opts), { start = 2, stop = 3, max_len = 4, method = 'beam', beam = 3 })
    assert.are.equal(2, #out)
  end)
end)
