-- The word2vec plugin from Lua: training on tiny synthetic corpora with a
-- known structure (every mode learns it), determinism from the run's seed,
-- gzip and options, queries, evaluation on sets with a known answer, the
-- three file formats (round trips, bad input) and interop with gensim.
local usagi = require 'usagi'
local word2vec = require 'usagi.word2vec'
local h = dofile('tests/lua/helpers.lua')

local dir = h.tmpdir()
local function path(name) return dir .. '/' .. name end
local function write(name, text)
  local f = assert(io.open(path(name), 'w'))
  f:write(text)
  f:close()
  return path(name)
end

-- Two topics that never share a sentence: a1..a6 and b1..b6, 1500
-- sentences of 8 words each (12,000 words), from a fixed Lua seed.
local function topics_corpus()
  math.randomseed(7)
  local lines = {}
  for s = 1, 1500 do
    local t = s % 2 == 0 and 'a' or 'b'
    local ws = {}
    for k = 1, 8 do ws[k] = t .. math.random(1, 6) end
    lines[s] = table.concat(ws, ' ')
  end
  return write('topics.txt', table.concat(lines, '\n') .. '\n')
end
local corpus = topics_corpus()

local function base(over)
  local o = { train = corpus, size = 16, window = 2, min_count = 1, iter = 3, sample = 0, threads = 1, quiet = true }
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

local function same_topic(m, word, k)
  local n = 0
  for _, p in ipairs(m:most_similar(word, k)) do
    if p[1]:sub(1, 1) == word:sub(1, 1) then n = n + 1 end
  end
  return n
end

describe('word2vec training', function()
  for _, mode in ipairs {
    { name = 'skip-gram NS (shared negatives)', cbow = 0 },
    { name = "skip-gram NS (Mikolov's loop)", cbow = 0, shared = 0 },
    { name = 'skip-gram HS', cbow = 0, hs = 1, negative = 0 },
    { name = 'CBOW NS', cbow = 1 },
    { name = 'CBOW HS', cbow = 1, hs = 1, negative = 0 },
  } do
    it(mode.name .. ' puts each topic\'s words nearest each other', function()
      usagi.manual_seed(1)
      local over = { name = nil }
      for k, v in pairs(mode) do if k ~= 'name' then over[k] = v end end
      local m = word2vec.train(base(over))
      assert.are.equal(12, m:size())
      for _, w in ipairs { 'a1', 'a4', 'b2', 'b6' } do
        assert.are.equal(5, same_topic(m, w, 5), w)
      end
      assert.is_true(m:similarity('a1', 'a2') > m:similarity('a1', 'b2'))
    end)
  end

  it('repeats bit for bit from the same seed with one thread, and differs with another', function()
    for _, over in ipairs { {}, { cbow = 1, hs = 1 }, { shared = 0 } } do
      usagi.manual_seed(3)
      local m1 = word2vec.train(base(over))
      usagi.manual_seed(3)
      local m2 = word2vec.train(base(over))
      usagi.manual_seed(4)
      local m3 = word2vec.train(base(over))
      assert.is_true(usagi.equal(m1.W, m2.W))
      assert.is_false(usagi.equal(m1.W, m3.W))
    end
  end)

  it('trains with Hogwild threads', function()
    usagi.manual_seed(1)
    local m = word2vec.train(base { threads = 2 })
    assert.are.equal(5, same_topic(m, 'a3', 5))
  end)

  it('reads gzip, several files, lower-cases, cuts by min_count and max_vocab', function()
    os.execute(('gzip -c %s > %s'):format(h.quote(corpus), h.quote(path('topics.txt.gz'))))
    local plain = word2vec.vocab { train = corpus, min_count = 1 }
    local gz = word2vec.vocab { train = path('topics.txt.gz'), min_count = 1 }
    assert.are.same(plain:words(), gz:words())
    assert.are.same(plain:counts(), gz:counts())
    assert.are.equal(12000, plain:total())
    local two = word2vec.vocab { train = { corpus, path('topics.txt.gz') }, min_count = 1 }
    assert.are.equal(24000, two:total())
    local mixed = write('mixed.txt', 'The the THE cat Cat dog\n')
    assert.are.equal(6, word2vec.vocab({ train = mixed, min_count = 1 }):size())
    local low = word2vec.vocab { train = mixed, min_count = 1, lower = true }
    assert.are.same({ 'the', 'cat', 'dog' }, low:words())
    assert.are.same({ 3, 2, 1 }, low:counts())
    assert.are.same({ 'the', 'cat' }, word2vec.vocab({ train = mixed, min_count = 2, lower = true }):words())
    assert.are.same({ 'the' }, word2vec.vocab({ train = mixed, min_count = 1, lower = true, max_vocab = 1 }):words())
    assert.are.equal(2, low:find('cat'))
    assert.is_nil(low:find('horse'))
  end)

  it('reports progress up to every word of every epoch', function()
    usagi.manual_seed(1)
    local calls, last = 0, nil
    word2vec.train(base { iter = 2, progress = function(words, total, alpha, epoch, done)
      calls = calls + 1
      last = { words = words, total = total, alpha = alpha, epoch = epoch, done = done }
    end })
    assert.is_true(calls >= 1)
    assert.is_true(last.done)
    assert.are.equal(24000, last.words)
    assert.are.equal(24000, last.total)
    assert.are.equal(2, last.epoch)
    assert.is_true(last.alpha < 0.025 * 0.01)   -- decayed linearly to (almost) nothing
  end)

  it('stops the workers and raises when the progress callback fails', function()
    h.fails(function()
      word2vec.train(base { iter = 50, progress = function() error('stop here') end })
    end, 'stop here')
  end)

  it('refuses bad options with a message naming them', function()
    h.fails(function() word2vec.train(base { sise = 10 }) end, 'unknown option "sise"')
    h.fails(function() word2vec.train(base { hs = 0, negative = 0 }) end, 'hs = 0 and negative = 0')
    h.fails(function() word2vec.train(base { window = 0 }) end, 'window must be in 1..64, got 0')
    h.fails(function() word2vec.train(base { size = 2.5 }) end, 'size must be an integer')
    h.fails(function() word2vec.train(base { train = 42 }) end, 'train must be a path or a list of paths')
    h.fails(function() word2vec.train(base { train = path('missing.txt') }) end, "cannot open '" .. path('missing.txt'))
    h.fails(function() word2vec.train(base { min_count = 100000 }) end, 'no word occurs min_count=100000 times')
    h.fails(function() word2vec.train('corpus.txt') end, 'expects an options table')
  end)
end)

describe('word2vec queries', function()
  -- dims: male, female, royal, fruit
  local words = { 'man', 'woman', 'king', 'queen', 'apple', 'pear', 'rare' }
  local W = usagi.tensor {
    { 1, 0, 0, 0.1 }, { 0, 1, 0, 0.1 }, { 1, 0, 1, 0.1 }, { 0, 1, 1, 0.1 },
    { 0, 0, 0, 1 }, { 0.1, 0, 0, 1 }, { 0, 1, 1, 0.2 } }
  local m = word2vec.from_vectors(words, W)

  it('answers most_similar, similarity, analogy (3CosAdd and 3CosMul) and lookups', function()
    local top = m:most_similar('apple', 2)
    assert.are.equal('pear', top[1][1])
    assert.is_true(math.abs(top[1][2] - 1 / math.sqrt(1.01)) < 1e-6)
    local both = m:most_similar({ 'apple', 'king' }, 1)
    assert.are.equal('pear', both[1][1][1])
    assert.is_true(math.abs(m:similarity('man', 'king') - 1 / math.sqrt(2.01 / 1.01) / math.sqrt(1.01) * 1.01 / math.sqrt(1.01)) < 1e-5
      or math.abs(m:similarity('man', 'king') - (1.01 / math.sqrt(1.01 * 2.01))) < 1e-6)
    assert.are.equal('queen', (m:analogy('man', 'king', 'woman')))
    assert.are.equal('queen', (m:analogy('man', 'king', 'woman', 1, { method = 'mul' })))
    local three = m:analogy('man', 'king', 'woman', 3)
    assert.are.equal(3, #three)
    assert.are.equal(3, m:id('king'))
    assert.are.equal('queen', m:word(4))
    assert.is_nil(m:id('horse'))
    assert.is_true(usagi.equal(m:vector('pear'), W[6]))
  end)

  it('names the word and the function when a word is unknown', function()
    h.fails(function() m:most_similar('horse') end, 'word2vec.most_similar: "horse" is not in the vocabulary')
    h.fails(function() m:similarity('man', 'horse') end, 'word2vec.similarity: "horse"')
    h.fails(function() m:analogy('man', 'king', 'horse') end, 'word2vec.analogy: "horse"')
    h.fails(function() m:analogy('man', 'king', 'woman', 1, { method = 'sub' }) end, "method must be 'add' or 'mul'")
    h.fails(function() word2vec.from_vectors({ 'a', 'a' }, usagi.zeros(2, 3)) end, 'appears twice')
    h.fails(function() word2vec.from_vectors({ 'a' }, usagi.zeros(2, 3)) end, 'vectors must be a (1, D) tensor')
  end)

  it('initialises an nn.Embedding', function()
    local e = m:embedding()
    assert.is_true(usagi.equal(e.weight, W))
    local out = e(usagi.tensor({ 3, 5 }, 'i32'))
    assert.is_true(usagi.equal(out[1], W[3]))
  end)

  it('computes Spearman rho with ties', function()
    assert.is_true(math.abs(word2vec.spearman({ 1, 2, 3, 4 }, { 1, 3, 2, 4 }) - 0.8) < 1e-12)
    assert.is_true(math.abs(word2vec.spearman({ 1, 2, 3 }, { 3, 2, 1 }) + 1) < 1e-12)
    -- ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): r = 4.5 / sqrt(4.5 * 5)
    assert.is_true(math.abs(word2vec.spearman({ 1, 2, 2, 3 }, { 1, 2, 3, 4 }) - 4.5 / math.sqrt(4.5 * 5)) < 1e-12)
  end)

  it('evaluates similarity sets and analogies with a known answer', function()
    -- human scores in the order of the cosines: rho = 1 (and -1 reversed)
    local pairs_ = { { 'man', 'king' }, { 'apple', 'pear' }, { 'man', 'apple' }, { 'queen', 'woman' }, { 'king', 'pear' } }
    local up, down = { '# a comment', '# another' }, { '# reversed' }
    for _, p in ipairs(pairs_) do
      local c = m:similarity(p[1], p[2])
      up[#up + 1] = ('%s\t%s\t%.6f'):format(p[1], p[2], 10 * c)
      down[#down + 1] = ('%s\t%s\t%.6f'):format(p[1]:upper(), p[2], -c)
    end
    up[#up + 1] = 'man\thorse\t5.0'
    local r = m:evaluate_similarity(write('sim.tsv', table.concat(up, '\n')))
    assert.are.equal(1, r.rho)
    assert.are.equal(5, r.pairs)
    assert.are.equal(1, r.oov)
    assert.is_true(math.abs(m:evaluate_similarity(write('sim2.tsv', table.concat(down, '\n'))).rho + 1) < 1e-12)
    local q = write('q.txt', table.concat({
      ': family', 'man king woman queen', 'MAN WOMAN KING QUEEN', 'man king horse queen',
      ': wrong', 'man king woman apple', 'man king woman rare' }, '\n'))
    local a = m:evaluate_analogy(q)
    assert.are.same({ 'family', 'wrong' }, { a.sections[1].name, a.sections[2].name })
    assert.are.same({ 2, 2 }, { a.sections[1].correct, a.sections[1].total })
    assert.are.same({ 0, 2 }, { a.sections[2].correct, a.sections[2].total })
    assert.are.same({ 2, 4, 1 }, { a.correct, a.total, a.skipped })
    assert.are.equal(0.5, a.accuracy)
    -- restricted to the 6 most frequent rows, the question with 'rare' is skipped
    local r6 = m:evaluate_analogy(q, { restrict = 6 })
    assert.are.same({ 2, 3, 2 }, { r6.correct, r6.total, r6.skipped })
    h.fails(function() m:evaluate_analogy(write('bad.txt', 'man king\n')) end, 'expected "a b c d"')
    h.fails(function() m:evaluate_similarity(path('nope.tsv')) end, 'cannot read')
  end)
end)

describe('word2vec files', function()
  usagi.manual_seed(2)
  local m = word2vec.train(base { iter = 1 })

  it('round-trips Mikolov text and binary, and HDF5 with counts and config', function()
    for _, name in ipairs { 'v.txt', 'v.bin', 'v.h5' } do
      m:save(path(name))
      local back = word2vec.load(path(name))
      assert.are.same(m.words, back.words)
      assert.is_true(usagi.equal(m.W, back.W), name)
    end
    local back = word2vec.load(path('v.h5'))
    assert.are.same(m.counts, back.counts)
    assert.are.equal(16, back.config.size)
    assert.are.equal(1, back.config.cbow)           -- Mikolov's default
    assert.is_true(usagi.equal(m.C, back.C))
    -- the HDF5 file's layout, as other tools see it
    local f <close> = usagi.h5.open(path('v.h5'))
    assert.are.same({ 12, 16 }, { f:shape('/vectors')[1], f:shape('/vectors')[2] })
    assert.are.equal('string', f:dtype('/vocab'))
    assert.are.equal('i32', f:dtype('/counts'))
    -- the format can be given
    m:save(path('v.vec'), { format = 'binary' })
    assert.is_true(usagi.equal(word2vec.load(path('v.vec'), { format = 'binary' }).W, m.W))
  end)

  it('refuses missing, malformed and truncated files with a message', function()
    h.fails(function() word2vec.load(path('none.bin')) end, "cannot open '" .. path('none.bin'))
    h.fails(function() word2vec.load(write('h.txt', 'abc\n')) end, 'expected a header "V D"')
    h.fails(function() word2vec.load(write('t.txt', '2 3\na 1 2 3\nb 1 x 3\n')) end, "word 2 ('b') needs 3 numbers; number 2 is not a number")
    h.fails(function() word2vec.load(write('s.txt', '3 2\na 1 2\nb 1 2\n')) end, 'the file ends (or a word is too long) at word 3 of 3')
    h.fails(function() word2vec.load(write('d.txt', '2 1\na 1\na 2\n')) end, 'appears twice')
    m:save(path('full.bin'))
    local f = assert(io.open(path('full.bin'), 'rb'))
    local bytes = f:read('a')
    f:close()
    h.fails(function() word2vec.load(write('cut.bin', bytes:sub(1, #bytes - 30))) end, 'the file ends inside the vector of word 12')
    local g <close> = usagi.h5.open(path('empty.h5'), 'w')
    g:write('/x', usagi.zeros(2))
    g:close()
    h.fails(function() word2vec.load(path('empty.h5')) end, 'has no /vectors; not a word2vec file')
    h.fails(function() m:save(path('x.txt'), { format = 'csv' }) end, "format must be 'h5', 'text' or 'binary'")
    h.fails(function() word2vec.from_vectors({ 'a b' }, usagi.zeros(1, 2)):save(path('sp.txt')) end,
      'must be a non-empty string without whitespace')
  end)

  it('writes files gensim reads with the same vectors, and reads what gensim writes', function()
    local probe = io.popen('/usr/bin/python3 -c "import gensim" 2>&1; echo rc=$?'):read('a')
    if not probe:find('rc=0', 1, true) then
      pending('/usr/bin/python3 cannot import gensim (apt-get install python3-gensim): skipped')
      return
    end
    m:save(path('u.txt'))
    m:save(path('u.bin'))
    local script = write('interop.py', [[
import sys
import numpy as np
from gensim.models import KeyedVectors
d = sys.argv[1]
t = KeyedVectors.load_word2vec_format(d + '/u.txt', binary=False)
b = KeyedVectors.load_word2vec_format(d + '/u.bin', binary=True)
assert t.index_to_key == b.index_to_key, 'vocabularies differ'
assert np.array_equal(t.vectors, b.vectors), 'text and binary vectors differ'
b.save_word2vec_format(d + '/g.bin', binary=True)
b.save_word2vec_format(d + '/g.txt', binary=False)
print('ok', len(b.index_to_key), b.vector_size, ' '.join(b.index_to_key))
]])
    local out = io.popen(('/usr/bin/python3 %s %s 2>&1'):format(h.quote(script), h.quote(dir))):read('a')
    assert.is_truthy(out:find('^ok 12 16 '), out)
    assert.are.equal(table.concat(m.words, ' '), out:match('^ok 12 16 ([^\n]*)'))
    for _, name in ipairs { 'g.bin', 'g.txt' } do
      local g = word2vec.load(path(name))
      assert.are.same(m.words, g.words)
      assert.is_true(usagi.equal(g.W, m.W), name)
    end
  end)
end)

describe('scripts/word2vec.lua', function()
  local exe = h.quote(usagi.sys.exe())
  it("takes Mikolov's command line and writes what it names", function()
    local cmd = ('%s scripts/word2vec.lua -train %s -output %s -binary 1 -size 12 -min-count 1 -iter 1 '
      .. '-threads 1 -cbow 0 -save-vocab %s 2>&1'):format(exe, h.quote(corpus), h.quote(path('cli.bin')), h.quote(path('cli.vocab')))
    local out = io.popen(cmd):read('a')
    assert.is_truthy(out:find('12 words, 12 dims', 1, true), out)
    local m = word2vec.load(path('cli.bin'))
    assert.are.same({ 12, 12 }, { m:size(), m:dim() })
    local first = io.open(path('cli.vocab')):read('l')
    assert.is_truthy(first:match('^[ab]%d %d+$'), first)
  end)

  it('refuses what it does not support, with the reason', function()
    local out = io.popen(('%s scripts/word2vec.lua -train x -output y -classes 5 2>&1; echo rc=$?'):format(exe)):read('a')
    assert.is_truthy(out:find('-classes is not supported', 1, true), out)
    assert.is_truthy(out:find('rc=2', 1, true), out)
    out = io.popen(('%s scripts/word2vec.lua -train %s -output y 2>&1; echo rc=$?'):format(exe, h.quote(path('none.txt')))):read('a')
    assert.is_truthy(out:find('cannot open', 1, true), out)
    assert.is_truthy(out:find('rc=1', 1, true), out)
  end)
end)

teardown(function() h.rmrf(dir) end)
