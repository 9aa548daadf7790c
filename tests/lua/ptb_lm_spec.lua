-- usagi.data (finding data files, the Penn Treebank, batches and windows)
-- and experiments/ptb_lm.lua, whose smoke config runs end to end through
-- the real executable. The tests that need the PTB files (`usagi data get
-- ptb`; ctest imports them from the shared data) are pending without them.
local usagi = require 'usagi'
local data = require 'usagi.data'
local h = dofile('tests/lua/helpers.lua')
local sys = usagi.sys
local exe = sys.exe()

local quote, tmpdir, rmrf = h.quote, h.tmpdir, h.rmrf

local function touch(path, text)
  sys.mkdir(path:match('^(.*)/[^/]*$'))
  local f = assert(io.open(path, 'wb'))
  f:write(text or 'x\n')
  f:close()
end

-- a shell command -> exit code, stdout and stderr together
local function sh(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local out = p:read('a')
  local _, _, code = p:close()
  return code, out
end

-- data.path(rel) in a child whose current directory is dir, without USAGI_DATA
local function path_from(dir, rel)
  return sh(('cd %s && env -u USAGI_DATA %s -e %s'):format(quote(dir), quote(exe),
    quote(('print(require("usagi.data").path(%q))'):format(rel))))
end

local PTB = { 'ptb/ptb.train.txt.gz', 'ptb/ptb.valid.txt', 'ptb/ptb.test.txt' }

-- nil when every PTB file is found, else why not
local function ptb_missing()
  for _, rel in ipairs(PTB) do
    local ok, err = pcall(data.path, rel)
    if not ok then return (tostring(err):match('[^\n]*')) end
  end
end

local function skip_without_ptb()
  local why = ptb_missing()
  if why then pending('the PTB files are missing (' .. why .. '): skipped') end
  return why
end

describe('usagi.data.path', function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmrf(dir) end)

  it('looks in the cache ($USAGI_DATA) first, then ./data, not ../shared/data', function()
    local env = { USAGI_DATA = dir .. '/env/' }
    touch(dir .. '/env/ptb/ptb.valid.txt')
    assert.are.equal(dir .. '/env/ptb/ptb.valid.txt', data.path('ptb/ptb.valid.txt', env))
    -- from the current directory, in a child: the cache, then ./data
    local cwd = dir .. '/work'
    touch(cwd .. '/data/t/a.txt')
    touch(dir .. '/shared/data/t/b.txt')
    local code, out = path_from(cwd, 't/a.txt')
    assert.are.equal(0, code, out)
    assert.are.equal('data/t/a.txt\n', out)
    code, out = path_from(cwd, 't/b.txt')
    assert.are_not.equal(0, code, out)
  end)

  it('without USAGI_DATA, the cache is under XDG_DATA_HOME, else ~/.local/share', function()
    local get = require 'usagi.data_get'
    assert.are.equal('/x/usagi/data', get.cache_dir(function(k) return ({ XDG_DATA_HOME = '/x' })[k] end))
    assert.are.equal('/h/.local/share/usagi/data', get.cache_dir(function(k) return ({ HOME = '/h' })[k] end))
    assert.are.equal('/d', get.cache_dir(function(k) return ({ USAGI_DATA = '/d/', HOME = '/h' })[k] end))
    touch(dir .. '/usagi/data/t/e.txt')
    assert.are.equal(dir .. '/usagi/data/t/e.txt', data.path('t/e.txt', { XDG_DATA_HOME = dir }))
  end)

  it('finds a file gzipped or not, whichever is there', function()
    local env = { USAGI_DATA = dir }
    touch(dir .. '/t/c.txt.gz')
    touch(dir .. '/t/d.txt')
    assert.are.equal(dir .. '/t/c.txt.gz', data.path('t/c.txt', env))
    assert.are.equal(dir .. '/t/d.txt', data.path('t/d.txt.gz', env))
  end)

  it('says the one command that gets a missing data set', function()
    local ok, err = pcall(data.path, 'ptb/ptb.test.txt', { USAGI_DATA = dir })
    assert.is_false(ok)
    assert.are.equal('data set ptb is not here (ptb/ptb.test.txt is missing); get it with:\n  usagi data get ptb',
      tostring(err))
    assert.are.equal('x: data set', ('x: ' .. err):sub(1, 11))
    h.raises(function() data.path('other/x.bin', { USAGI_DATA = dir }) end,
      'data.path: other/x.bin not found', 'no data set of `usagi data list`')
    h.raises(function() data.path(nil) end, 'data.path: rel must be')
  end)

  it('a run that misses its data set prints the command, not a traceback', function()
    local code, out = sh(('USAGI_DATA=%s %s run experiments/ptb_lm.lua --smoke --no-save'):format(
      quote(dir .. '/empty'), quote(exe)))
    assert.are_not.equal(0, code)
    assert.is_truthy(out:find('usagi data get ptb', 1, true), out)
    assert.is_falsy(out:find('traceback', 1, true), out)
  end)
end)

describe('usagi.data.ptb', function()
  it('has the known token counts and a 10,000-word vocabulary', function()
    if skip_without_ptb() then return end
    local ptb = data.ptb()
    assert.are.equal(929589, ptb.train:size(1))
    assert.are.equal(73760, ptb.valid:size(1))
    assert.are.equal(82430, ptb.test:size(1))
    assert.are.equal('i32', ptb.train:dtype())
    assert.are.equal(10000, #ptb.vocab)
    local eos, unk = ptb.ids['<eos>'], ptb.ids['<unk>']
    assert.is_truthy(eos and unk)
    assert.are.equal('<eos>', ptb.vocab[eos])
    for id, w in ipairs(ptb.vocab) do
      if ptb.ids[w] ~= id then error(('ids[%q] = %s, vocab says %d'):format(w, tostring(ptb.ids[w]), id)) end
    end
    -- ids in order of first appearance: the first train id is 1
    assert.are.equal(1, ptb.train[1])
    assert.are.equal(1, ptb.train:min():item())
    for _, split in ipairs { ptb.train, ptb.valid, ptb.test } do
      assert.is_true(split:min():item() >= 1 and split:max():item() <= 10000)
    end
    assert.are.equal(42068, ptb.train:eq(eos):sum():item())   -- one <eos> a line
  end)
end)

describe('usagi.data.batchify and windows', function()
  local ids = usagi.arange(1, 24):int()                 -- 1..23

  it('cuts the stream into B contiguous columns, dropping the rest', function()
    local b = data.batchify(ids, 4)                     -- N = 23 // 4 = 5
    assert.are.same({ 5, 4 }, h.shape(b))
    assert.are.equal('i32', b:dtype())
    for col = 1, 4 do
      for row = 1, 5 do assert.are.equal((col - 1) * 5 + row, b[{ row, col }]) end
    end
    h.fails(function() data.batchify(ids, 0) end, 'B must be a positive integer')
    h.fails(function() data.batchify(ids:view(1, 23), 2) end, 'ids must be a 1-D tensor')
    h.fails(function() data.batchify(ids, 20) end, 'fewer than 2 rows')
  end)

  it('gives the full (T, B) windows with targets one step on', function()
    local b = data.batchify(ids, 2)                     -- (11, 2)
    assert.are.equal(3, data.nwindows(b, 3))            -- (11 - 1) // 3
    local n = 0
    for x, y, i in data.windows(b, 3) do
      n = n + 1
      assert.are.equal(n, i)
      assert.are.same({ 3, 2 }, h.shape(x))
      assert.are.same({ 3, 2 }, h.shape(y))
      for t = 1, 3 do
        for col = 1, 2 do
          assert.are.equal(b[{ (i - 1) * 3 + t, col }], x[{ t, col }])
          assert.are.equal(x[{ t, col }] + 1, y[{ t, col }])   -- the next id of the stream
        end
      end
    end
    assert.are.equal(3, n)
    for _ in data.windows(b, 10) do n = n + 1 end       -- (11 - 1) // 10 = 1
    assert.are.equal(4, n)
    h.fails(function() data.windows(b, 0) end, 'T must be a positive integer')
  end)
end)

describe('experiments/ptb_lm.lua', function()
  local script = 'experiments/ptb_lm.lua'
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  -- (--no-save runs keep nothing, so they take no --out)
  local function run(...)
    local parts, save = { quote(exe), 'run', script }, true
    for _, a in ipairs { ... } do parts[#parts + 1] = quote(a); save = save and a ~= '--no-save' end
    if save then parts[#parts + 1] = '--out ' .. quote(out) end
    return sh(table.concat(parts, ' '))
  end

  it('runs its smoke config: valid perplexity falls, test perplexity is there', function()
    if skip_without_ptb() then return end
    local code, text = run('--smoke', '--name', 's')
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('test ppl', 1, true), text)
    local f <close> = usagi.h5.open(out .. '/ptb_lm/s/results.h5', 'r')
    assert.are.equal('ok', f:attrs('/').status)
    local valid = f:read('/metrics/valid_ppl')
    assert.are.equal(2, valid:numel())
    for j = 1, 2 do assert.is_true(valid[j] > 1 and valid[j] < 1e4, tostring(valid[j])) end
    assert.is_true(valid[2] < valid[1], ('valid ppl %g -> %g'):format(valid[1], valid[2]))
    local train = f:read('/metrics/train_ppl')
    assert.is_true(train[2] < train[1], ('train ppl %g -> %g'):format(train[1], train[2]))
    local test = f:read('/metrics/test_ppl')
    assert.are.equal(1, test:numel())
    assert.is_true(test[1] > 1 and test[1] < 1e4, tostring(test[1]))
    for _, k in ipairs { 'lr', 'tokens_per_s' } do assert.are.equal(2, f:read('/metrics/' .. k):numel()) end
    assert.are.equal('file', sys.kind(out .. '/ptb_lm/s/checkpoints/best.h5'))
  end)

  it('takes the medium preset where a key keeps its default', function()
    if skip_without_ptb() then return end
    local code, text = run('--smoke', '--no-save', '--set', 'preset=medium', '--set', 'hidden=24',
      '--set', 'limit=200', '--set', 'epochs=1')
    assert.are.equal(0, code, text)
    for _, s in ipairs { 'medium, 2 layers x 24, T 10, B 8, dropout 0.5, init 0.05',
                         'x0.8 from epoch 7', '1 epochs' } do
      assert.is_truthy(text:find(s, 1, true), ('"%s" lacks "%s"'):format(text, s))
    end
    code, text = run('--no-save', '--set', 'preset=huge')
    assert.are.equal(1, code, text)
    assert.is_truthy(text:find('preset must be small, medium or large', 1, true), text)
  end)
end)
