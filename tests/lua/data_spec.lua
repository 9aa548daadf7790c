-- usagi.data's readers beyond PTB (ptb_lm_spec has data.path and PTB): IDX
-- files (a synthetic one always; MNIST and Fashion-MNIST where they are),
-- scikit-learn's digits, the DLFS2 tasks, DailyDialog, and the vocabulary.
-- A data set that is missing skips its test with the reason printed.
local usagi = require 'usagi'
local data = require 'usagi.data'
local h = dofile('tests/lua/helpers.lua')

local have = h.have_data

describe('usagi.data', function()
  it('reads an IDX file of bytes into its shape, as i32 or scaled floats', function()
    local dir = h.tmpdir()
    local f = assert(io.open(dir .. '/x.idx', 'wb'))
    f:write(string.char(0, 0, 8, 3), string.pack('>I4>I4>I4', 2, 1, 3), string.char(0, 1, 2, 3, 4, 255))
    f:close()
    local got = data.idx(dir .. '/x.idx')
    assert.are.same({ { { 0, 1, 2 } }, { { 3, 4, 255 } } }, got:totable())
    local g = data.idx(dir .. '/x.idx', { dtype = 'f32', scale = 1 / 255 })
    assert.is_true(math.abs(g[2][1][3] - 1) < 1e-7)
    local bad = assert(io.open(dir .. '/bad.idx', 'wb'))
    bad:write('not idx')
    bad:close()
    h.raises(function() data.idx(dir .. '/bad.idx') end, 'is not an IDX file of unsigned bytes')
    h.rmrf(dir)
  end)

  it("reads MNIST's test images and labels", function()
    if not have('mnist/t10k-images-idx3-ubyte.gz', 'MNIST') then return end
    local m = data.mnist().test
    assert.are.same({ 10000, 784 }, h.shape(m.x))
    assert.are.equal(44434, m.y:sum():item())              -- the label counts of SOURCES.md
    assert.is_true(m.x:min():item() == 0 and m.x:max():item() == 1)
  end)

  it('reads Fashion-MNIST from the Debian package', function()
    if not have('fashion-mnist/train-images-idx3-ubyte.gz', 'Fashion-MNIST') then return end
    local f = data.fashion_mnist()
    assert.are.same({ 60000, 784 }, h.shape(f.train.x))
    assert.are.same({ 10000 }, h.shape(f.test.y))
    assert.are.equal(9, f.train.y:max():item())
  end)

  it("reads scikit-learn's digits", function()
    if not have('digits/digits.csv.gz', 'digits') then return end
    local d = data.digits()
    assert.are.same({ 1797, 64 }, h.shape(d.x))
    assert.are.same({ 0, 1, 2 }, { d.y[1], d.y[2], d.y[3] })
    assert.are.equal(1, d.x:max():item())
  end)

  it('splits the DLFS2 tasks 90/10 with a seed, the same every time', function()
    if not have('dlfs2/addition.txt', 'dlfs2') then return end
    local a, b = data.sequence_task('addition'), data.sequence_task('addition')
    assert.are.same({ 45000, 7 }, h.shape(a.train.x))
    assert.are.same({ 5000, 5 }, h.shape(a.test.y))
    assert.are.equal(0, (a.test.x - b.test.x):abs():sum():item())
    assert.are.equal('_', a.vocab[a.start])
    local s = data.sequence_task('addition', 1984, 300)
    assert.are.same({ 300, 7 }, h.shape(s.train.x))
    assert.are.same({ 30, 7 }, h.shape(s.test.x))
    h.raises(function() data.sequence_task('subtraction') end, "data.sequence_task: name must be 'addition' or 'date'")
  end)

  it('reads DailyDialog as dialogues of lower-cased words', function()
    if not have('dailydialog/dialogues_test.txt.gz', 'DailyDialog') then return end
    local d = data.dailydialog('test')
    assert.are.equal(1000, #d)
    for _, w in ipairs(d[1][1]) do assert.are.equal(w:lower(), w) end
    h.raises(function() data.dailydialog('dev') end, "data.dailydialog: split must be 'train', 'validation' or 'test'")
  end)

  it('builds a vocabulary of the specials and the most frequent words, ties by first appearance', function()
    local v = data.Vocab.from_tokens({ { { 'b', 'a' }, { 'a', 'c' } }, { { 'c', 'd' } } },
      { order = 'frequency', max_size = 6, specials = { '<pad>', '<unk>', '<s>', '</s>' } })
    assert.are.same({ '<pad>', '<unk>', '<s>', '</s>', 'a', 'c' }, { table.unpack(v) })
    assert.are.equal(6, v:id('c'))
  end)
end)
