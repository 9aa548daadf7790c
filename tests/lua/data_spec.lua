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
    local m = data.mnist('test').test
    assert.are.same({ 10000, 784 }, h.shape(m.x))
    assert.are.equal(44434, m.y:sum():item())              -- the label counts of SOURCES.md
    assert.is_true(m.x:min():item() == 0 and m.x:max():item() == 1)
  end)

  it("splits MNIST as usual: 'mnist' trains on the train files, 'mnist-t10k' on the test images", function()
    -- a cache of tiny IDX files in MNIST's names: 6 training images of 1s, 4 test images of 0s
    local dir = h.tmpdir()
    local function idx(name, magic, dims, byte)
      local n = 1
      for _, d in ipairs(dims) do n = n * d end
      local f = assert(io.open(dir .. '/mnist/' .. name, 'wb'))
      f:write(string.pack('>I4', magic))
      for _, d in ipairs(dims) do f:write(string.pack('>I4', d)) end
      f:write(string.rep(string.char(byte), n))
      f:close()
    end
    usagi.sys.mkdir(dir .. '/mnist')
    idx('t10k-images-idx3-ubyte', 0x803, { 4, 28, 28 }, 0)
    idx('t10k-labels-idx1-ubyte', 0x801, { 4 }, 3)
    local env = { USAGI_DATA = dir }
    local real = data.path
    finally(function() data.path = real end)
    data.path = function(rel) return real(rel, env) end
    local ok, err = pcall(data.image_set, 'mnist')
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find('usagi data get mnist', 1, true), tostring(err))
    assert.is_truthy(tostring(err):find('data=mnist-t10k', 1, true), tostring(err))
    idx('train-images-idx3-ubyte', 0x803, { 6, 28, 28 }, 255)
    idx('train-labels-idx1-ubyte', 0x801, { 6 }, 7)
    local train, test, side = data.image_set('mnist')
    data.path = real
    assert.are.same({ 6, 784 }, h.shape(train.x))
    assert.are.same({ 4, 784 }, h.shape(test.x))
    assert.are.equal(1, train.x:min():item())
    assert.are.equal(0, test.x:max():item())
    assert.are.equal(28, side)
    h.rmrf(dir)
    h.raises(function() data.image_set('mnist-60k') end, "'mnist', 'mnist-t10k' or 'digits'")
  end)

  it('trains vae_mnist on the t10k split (--set data=mnist-t10k), 9,000 / 1,000', function()
    if not have('mnist/t10k-images-idx3-ubyte.gz', 'MNIST') then return end
    local experiment = require 'usagi.experiment'
    local spec = dofile('experiments/vae_mnist.lua')
    local run = experiment.run_experiment(spec, { smoke = true, quiet = true, seed = 1,
      set = { data = 'mnist-t10k', epochs = 1, pictures = false, iw_k = 5, iw_count = 10 } })
    local e = run:history('test_elbo')
    assert.are.equal(1, #e)
    assert.is_true(e[1] < 0, 'held-out ELBO ' .. e[1])
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
