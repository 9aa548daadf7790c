-- A run as a model in use: every experiment that declares model and infer
-- runs its smoke config, then usagi.runs.load builds the trained model
-- again from the run directory (or a checkpoint) and answers inputs of
-- its kind; the answers have the right form and repeat; bad runs, inputs
-- and options are clear errors. The `usagi infer` command itself is
-- tests/cli/infer.sh.
local usagi = require 'usagi'
local experiment = require 'usagi.experiment'
local runs = require 'usagi.runs'
local h = dofile('tests/lua/helpers.lua')

local function load(name) return dofile('experiments/' .. name .. '.lua') end

-- A smoke run of experiment name in a new directory, made smaller still by
-- set where the test needs only the form of the answers: run, dir.
local function smoke(name, set)
  local dir = h.tmpdir()
  local run = experiment.run_experiment(load(name), { smoke = true, quiet = true, seed = 1, out = dir, set = set })
  return run, dir
end

-- The parameters of two models are the same to the bit.
local function same_params(a, b)
  local sa, sb = a:state_dict(), b:state_dict()
  for k, t in pairs(sa) do
    assert.is_truthy(sb[k], 'no ' .. k)
    assert.are.equal(0, (t:double() - sb[k]:double()):abs():max():item(), k)
  end
end

local function dlfs2(name) return h.have_data('dlfs2/' .. name .. '.txt', name) end

describe('usagi.runs.load and infer', function()
  it('translates a date with the attention model, draws its attention, from results.h5 and best.h5', function()
    if not dlfs2('date') then return end
    local run, dir = smoke('attention_dates', { limit = 300 })
    local m = runs.load(run.dir)
    assert.is_false(m.model.training)
    assert.are.equal(59, #m.vocab)
    assert.are.equal('attention_dates', m.experiment)
    same_params(run.tracked.model, m.model)
    local pics = dir .. '/pics'
    local a = m:infer('september 27, 1994', { out = pics, quiet = true })
    assert.are.same({ 'attention weights: ' .. pics .. '/attention.png' }, m.notes)
    assert.are.equal('string', type(a))
    assert.is_true(#a >= 1 and #a <= 10, a)
    assert.are.equal(a, m:infer('september 27, 1994', { out = pics, quiet = true }))
    assert.are.equal('file', usagi.sys.kind(pics .. '/attention.png'))
    -- best.h5 (the best accuracy, here after the one epoch) gives the same model
    local b = runs.load(run.dir .. '/checkpoints/best.h5')
    same_params(m.model, b.model)
    assert.is_truthy(b.source:find('best.h5', 1, true))
    same_params(m.model, runs.load(run.dir, { best = true }).model)
    -- a run without its final parameters loads from its newest checkpoint
    local f = usagi.h5.open(run.dir .. '/results.h5', 'a')
    f:remove('/params')
    f:close()
    local c = runs.load(run.dir)
    assert.is_truthy(c.source:find('step%-%d+%.h5$'))
    same_params(m.model, c.model)
    -- a run made before its experiment kept /infer
    f = usagi.h5.open(run.dir .. '/results.h5', 'a')
    f:remove('/infer')
    f:close()
    h.raises(function() runs.load(run.dir) end, 'keeps nothing for inference (results.h5 has no /infer',
      'run the experiment again')
    -- bad input
    h.raises(function() m:infer(nil) end, 'attention_dates: give a date to translate')
    h.raises(function() m:infer(('x'):rep(40)) end, 'at most 29 characters', 'got 40')
    h.raises(function() m:infer('march 3, 1999 ~') end, 'Vocab.encode: the character "~"')
    h.raises(function() m:infer('march 3', { options = { picture = 'maybe' } }) end,
      'attention_dates infer: picture must be true or false, got "maybe"')
    h.raises(function() m:infer('march 3', { options = { beam = 3 } }) end,
      'attention_dates infer: unknown option beam (it has: picture)')
    h.rmrf(dir)
  end)

  it('adds with the seq2seq model, and draws the attention of the attention variant', function()
    if not dlfs2('addition') then return end
    local run, dir = smoke('seq2seq_addition', { limit = 500, epochs = 1 })
    local m = runs.load(run.dir)
    local a = m:infer('16+75')
    assert.is_truthy(a:match('^[%d+_ ]*$'), a)
    assert.are.equal(a, m:infer(' 16 + 75 '))
    h.raises(function() m:infer('16-75') end, "seq2seq_addition: give a sum such as '16+75', got \"16-75\"")
    h.raises(function() m:infer('1234+5678') end, 'at most 7 characters')
    h.rmrf(dir)
    -- with attention: the picture of the sum asked
    run, dir = smoke('seq2seq_addition', { variant = 'attention', limit = 500, epochs = 1 })
    m = runs.load(run.dir)
    assert.is_truthy(m:infer('16+75', { out = dir .. '/pics', quiet = true }):match('^[%d+_ ]*$'))
    assert.are.equal('file', usagi.sys.kind(dir .. '/pics/attention.png'))
    h.rmrf(dir)
  end)

  it('samples from a prompt with char_rnn, the same text for the same seed', function()
    if not h.have_data('tinyshakespeare/input.txt', 'char_rnn') then return end
    local run, dir = smoke('char_rnn', { iterations = 10, eval_every = 10 })
    local m = runs.load(run.dir)
    local opts = { seed = 7, options = { n = 30 } }
    local a = m:infer('ROMEO:', opts)
    assert.are.equal(36, #a)
    assert.are.equal('ROMEO:', a:sub(1, 6))
    assert.are.equal(a, m:infer('ROMEO:', opts))
    assert.are.equal(7 + 30, #m:infer(nil, opts))          -- the config's prompt, 'JULIET:'
    h.raises(function() m:infer('ROMEO:', { options = { temperature = 0 } }) end, 'temperature must be above 0')
    h.raises(function() m:infer('ROMEO:', { options = { n = 'many' } }) end, 'n must be an integer, got "many"')
    h.raises(function() m:infer('€') end, 'Vocab.encode', 'outside ASCII')
    h.rmrf(dir)
  end)

  it('scores and continues a sentence with the PTB language model', function()
    if not h.have_data('ptb/ptb.valid.txt', 'ptb_lm') then return end
    local run, dir = smoke('ptb_lm', { epochs = 1 })
    local m = runs.load(run.dir)
    assert.are.equal(10000, #m.vocab)
    local a = m:infer('the company said it expects 15 % growth', { seed = 1, options = { n = 5 } })
    local ppl = tonumber(a[1]:match('^perplexity ([%d.]+) over 8 words'))
    assert.is_truthy(ppl and ppl > 1, a[1])
    assert.are.equal('the company said it expects N %(<unk>) growth |', a[2]:match('^(.-|)'))
    local _, words = a[2]:match('| (.*)$'):gsub('%S+', '')
    assert.are.equal(5, words)
    assert.are.same(a, m:infer('the company said it expects 15 % growth', { seed = 1, options = { n = 5 } }))
    h.raises(function() m:infer('   ') end, 'ptb_lm: give a sentence')
    h.rmrf(dir)
  end)

  it('gives neighbours and analogies of word2vec vectors, both trainers', function()
    if not h.have_data('ptb/ptb.train.txt.gz', 'word2vec_ptb') then return end
    for _, trainer in ipairs { 'fast', 'autograd' } do
      local run, dir = smoke('word2vec_ptb', { trainer = trainer })
      local m = runs.load(run.dir)
      local a = m:infer('the', { options = { k = 3 } })
      assert.are.equal(3, #a)
      assert.is_truthy(a[1]:match('^%S+%s+%-?[%d.]+$'), a[1])
      assert.are.equal(2, #m:infer('a : the :: of', { options = { k = 2 } }))
      h.raises(function() m:infer('the of') end, 'word2vec.query: give one word', 'got 2 words')
      h.raises(function() m:infer('zzyzx') end, '"zzyzx" is not in the vocabulary')
      h.rmrf(dir)
    end
  end)

  it('answers a conversation with HRED', function()
    if not h.have_data('dailydialog/dialogues_train.txt.gz', 'dialogue') then return end
    local run, dir = smoke('dialogue', { limit = 200, test_limit = 20 })
    local m = runs.load(run.dir)
    local a = m:infer('can you do push-ups ? | of course i can .', { options = { beam = 2, max_len = 6 } })
    local _, words = a:gsub('%S+', '')
    assert.is_true(words >= 1 and words <= 6, a)
    assert.are.equal(a, m:infer('can you do push-ups ? | of course i can .', { options = { beam = 2, max_len = 6 } }))
    assert.are.equal('string', type(m:infer('hello', { options = { beam = 0, max_len = 3 } })))
    h.raises(function() m:infer(' | ') end, 'dialogue: give a conversation')
    h.rmrf(dir)
  end)

  it('encodes and decodes an image file with the VAE, and samples', function()
    if not h.have_data('digits/digits.csv.gz', 'vae_mnist') then return end
    local run, dir = smoke('vae_mnist')
    local m = runs.load(run.dir)
    -- a held-out digit as an 8 x 8 PGM
    local x = usagi.data.digits().x[1700]
    local bytes = {}
    for i, v in ipairs(x:totable()) do bytes[i] = string.char(math.floor(v * 255 + 0.5)) end
    local pgm = dir .. '/digit.pgm'
    local f = assert(io.open(pgm, 'wb'))
    f:write('P5\n# a digit\n8 8\n255\n', table.concat(bytes))
    f:close()
    local a = m:infer(pgm, { out = dir .. '/out', quiet = true })
    assert.is_truthy(a[1]:match('^z %(mu%) = %-?[%d.]+ %-?[%d.]+$'), a[1])     -- latent 2 in the smoke config
    assert.are.equal('file', usagi.sys.kind(dir .. '/out/reconstruction.png'))
    assert.are.same(a, m:infer(pgm, { out = dir .. '/out', quiet = true }))
    -- the same digit as a PNG (the same bytes) gives the same code
    usagi.image.save_png(dir .. '/digit.png', x:view(8, 8))
    assert.are.same(a, m:infer(dir .. '/digit.png', { out = dir .. '/out', quiet = true }))
    assert.is_truthy(m:infer('sample', { out = dir .. '/out', options = { n = 4 } }):find('4 samples'))
    assert.are.equal('file', usagi.sys.kind(dir .. '/out/samples.png'))
    f = assert(io.open(dir .. '/big.pgm', 'wb'))
    f:write('P2 3 2 255 0 0 0 0 0 0')
    f:close()
    h.raises(function() m:infer(dir .. '/big.pgm') end, 'is 3 x 2 pixels; this model reads 8 x 8 images')
    h.raises(function() m:infer(dir .. '/none.pgm') end, 'vae_mnist: no image file')
    h.raises(function() m:infer(run.dir .. '/results.h5') end, 'neither a PNG nor a PGM')
    h.rmrf(dir)
  end)

  it('refuses a missing run, a damaged one, and an experiment that declares no infer', function()
    h.raises(function() runs.load('no/such/run') end, 'usagi.runs.load: no run at no/such/run')
    h.raises(function() runs.load(nil) end, 'usagi.runs.load: path must be a run directory')
    local dir = h.tmpdir()
    h.raises(function() runs.load(dir) end, 'is not a run directory (it has no results.h5)')
    local run = experiment.run_experiment(load('binary_addition'),
      { smoke = true, quiet = true, seed = 1, out = dir, set = { iterations = 2 } })
    h.raises(function() runs.load(run.dir) end, 'the experiment binary_addition declares no model')
    local f = assert(io.open(run.dir .. '/results.h5', 'r+b'))
    f:write(('\0'):rep(64))
    f:close()
    h.raises(function() runs.load(run.dir) end, 'results.h5 cannot be read')
    h.rmrf(dir)
  end)

  it('keeps a tree of data, and loads a model whose experiment declares no infer', function()
    local nn = require 'usagi.nn'
    local spec = usagi.experiment { name = 'tiny', config = { n = 3 },
      model = function(cfg, d) return nn.Linear(d.inputs, cfg.n) end,
      run = function(run, cfg)
        local m = run:model { inputs = 2, list = { 5, 6 }, t = usagi.ones(2), flag = true, nested = { a = 'x' },
                              vocab = usagi.data.Vocab.from_text('ab') }
        run:track { model = m }
      end }
    local dir = h.tmpdir()
    local run = experiment.run_experiment(spec, { quiet = true, out = dir })
    local m = runs.load(run.dir, { spec = spec })
    assert.is_false(m.model.training)
    same_params(run.tracked.model, m.model)
    assert.are.equal(2, m.data.inputs)
    assert.are.same({ 5, 6 }, m.data.list)
    assert.are.same({ 1, 1 }, m.data.t:totable())
    assert.is_true(m.data.flag)
    assert.are.equal('x', m.data.nested.a)
    assert.are.equal('ab', m.vocab:decode({ 1, 2 }))
    h.raises(function() m:infer('x') end, 'tiny declares no infer')
    h.raises(function() runs.load(run.dir) end, 'cannot find the script of experiment tiny')
    h.raises(function() usagi.experiment { name = 'y', config = {}, run = print, infer = print } end,
      'usagi.experiment: y declares infer without model')
    h.raises(function() usagi.experiment { name = 'y', config = {}, run = print, model = 1 } end,
      'usagi.experiment: model of y must be a function, got number')
    h.rmrf(dir)
  end)

  it('refuses to keep what results.h5 cannot hold', function()
    local run = require('usagi.run').open({ name = 'x', config = {} }, {}, { out = false, quiet = true })
    h.raises(function() run:keep_data { f = print } end, 'run:keep_data: data.f is a function')
    h.raises(function() run:keep_data { m = setmetatable({}, {}) } end, 'run:keep_data: data.m is an object')
    h.raises(function() run:keep_data { ['a/b'] = 1 } end, 'run:keep_data: keys must be names')
    h.raises(function() run:model {} end, 'run:model: the experiment x declares no model')
  end)
end)
