-- The word2vec experiments run their smoke configs (skipped, with the
-- reason, where the data is missing): the fast CBOW and the autograd CBOW
-- on a slice of PTB, and skip-gram on a slice of the English text with its
-- evaluation.
local usagi = require 'usagi'
local experiment = require 'usagi.experiment'
local h = dofile('tests/lua/helpers.lua')

local function load(name) return dofile('experiments/' .. name .. '.lua') end

describe('word2vec_ptb', function()
  it('trains CBOW both ways, answers the queries and draws the picture (smoke config)', function()
    if not h.have_data('ptb/ptb.train.txt.gz', 'word2vec_ptb') then return end
    local dir = h.tmpdir()
    local run, r = experiment.run_experiment(load('word2vec_ptb'), { smoke = true, quiet = true, seed = 1, out = dir })
    local m, nb = r.model, r.neighbours
    assert.is_true(m:size() > 1000)
    assert.are.equal(5, #nb.you)
    assert.are.equal('file', usagi.sys.kind(run.dir .. '/words.png'))
    assert.are.equal('file', usagi.sys.kind(run.dir .. '/vectors.h5'))
    -- the same seed with one thread: the same vectors
    local _, r2 = experiment.run_experiment(load('word2vec_ptb'), { smoke = true, quiet = true, seed = 1, out = dir })
    assert.is_true(usagi.equal(m.W, r2.model.W))
    local arun, ar = experiment.run_experiment(load('word2vec_ptb'),
      { smoke = true, quiet = true, seed = 1, out = dir, set = { trainer = 'autograd' } })
    local am, anb = ar.model, ar.neighbours
    local loss = arun:history('loss')
    assert.is_true(#loss >= 20)
    assert.is_true(loss[#loss] < loss[1], ('loss %g -> %g'):format(loss[1], loss[#loss]))
    assert.are.equal(5, #anb.year)
    assert.are.equal(100, am:dim())
    h.rmrf(dir)
  end)
end)

describe('word2vec_text', function()
  it('trains skip-gram on a slice of the English text and evaluates it (smoke config)', function()
    if not h.have_data('english_text/gutenberg.zip', 'word2vec_text') then return end
    if not h.have_data('word2vec_eval/questions-words.txt', 'word2vec_text') then return end
    if not os.execute('command -v unzip >/dev/null 2>&1') then
      pending('unzip is missing (apt-get install unzip): skipped')
      return
    end
    local run, r = experiment.run_experiment(load('word2vec_text'), { smoke = true, quiet = true, seed = 1, out = false })
    local m, res = r.model, r.scores
    assert.is_true(m:size() > 500)
    for _, k in ipairs { 'wordsim353', 'simlex999' } do
      assert.is_true(res[k] >= -1 and res[k] <= 1, k)
    end
    assert.is_true(res.analogy_add >= 0 and res.analogy_add <= 1)
    assert.are.equal(1, #run:history('wordsim353'))
  end)
end)
