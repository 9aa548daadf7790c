-- compare_spec.lua -- scripts/usagi/compare.lua on runs made up in memory
-- (the shape usagi.cli's load_run gives): which keys set runs apart, the
-- numeric order of labels, mean ± std over seeds with n, the experiment
-- column and the one mark of a value a run lacks. The commands themselves,
-- on real runs, are in run_spec.lua.
local usagi = require 'usagi'
local compare = require 'usagi.compare'

local function run(id, experiment, seed, config, metrics, status)
  local r = { id = id, attrs = { experiment = experiment, seed = seed, status = status or 'ok' },
    config = config, metrics = {}, names = {} }
  for k, v in pairs(metrics) do
    r.metrics[k] = { values = usagi.tensor(v, 'f64') }
    r.names[#r.names + 1] = k
  end
  table.sort(r.names)
  return r
end

-- The lines compare.print writes.
local function printed(runs, opts)
  local out, old = {}, _G.print
  _G.print = function(s) out[#out + 1] = s end
  local ok, err = pcall(compare.print, runs, opts)
  _G.print = old
  assert(ok, err)
  return out
end

-- The cells of a printed line.
local function cells(line)
  local out = {}
  for c in line:gsub(' ± ', '±'):gmatch('%S+') do out[#out + 1] = c end
  return out
end

describe('usagi.compare', function()
  it('orders labels with their numbers as numbers', function()
    local xs = { 'hidden=16', 'hidden=8', 'hidden=128', 'lr=0.01', 'lr=0.001', 'a', 'hidden=8 seed=10',
      'hidden=8 seed=9' }
    table.sort(xs, compare.less)
    assert.same({ 'a', 'hidden=8', 'hidden=8 seed=9', 'hidden=8 seed=10', 'hidden=16', 'hidden=128',
      'lr=0.001', 'lr=0.01' }, xs)
  end)

  it('gives mean and sample standard deviation', function()
    local m, s = compare.mean_std { 1, 2, 3, 4 }
    assert.equal(2.5, m)
    assert.is_true(math.abs(s - math.sqrt(5 / 3)) < 1e-12)
    m, s = compare.mean_std { 7 }
    assert.equal(7, m)
    assert.is_nil(s)
  end)

  it('lists the differing config keys, and the seed last', function()
    local runs = { run('a', 'e', 1, { h = 4, lr = 0.1 }, {}), run('b', 'e', 2, { h = 8, lr = 0.1 }, {}) }
    assert.same({ 'h', 'seed' }, compare.differing(runs))
    assert.same({ 'h' }, compare.differing(runs, false))
  end)

  it('folds runs that differ only in their seed into mean ± std, with n', function()
    local runs = {
      run('x_h=4,seed=1', 'e', 1, { h = 4 }, { loss = { 5, 1.0 }, size = { 7 } }),
      run('x_h=4,seed=2', 'e', 2, { h = 4 }, { loss = { 5, 2.0 }, size = { 7 } }),
      run('x_h=4,seed=3', 'e', 3, { h = 4 }, { loss = { 5, 3.0 }, size = { 7 } }),
      run('x_h=8,seed=1', 'e', 1, { h = 8 }, { loss = { 5, 0.5 } }),
      run('x_h=8,seed=2', 'e', 2, { h = 8 }, { loss = { 5, 9.0 } }, 'error'),
    }
    local out = printed(runs)
    assert.same({ 'experiment', 'h', 'n', 'seeds', 'loss', 'size', 'status' }, cells(out[1]))
    assert.equal(4, #out)
    -- h=4: the loss of the three seeds, 2 ± 1; a size the same in all, alone
    assert.same({ 'e', '4', '3', '1,2,3', '2±1', '7', '3', 'ok' }, cells(out[3]))
    -- h=8: the run that failed is counted in the status, not in the mean
    assert.same({ 'e', '8', '1', '1', '0.5', '-', '1', 'ok,', '1', 'error' }, cells(out[4]))
    -- the columns line up: ± is one character wide
    assert.equal(utf8.len(out[2]), #out[2])
    assert.equal(out[3]:find('2 ± 1', 1, true), out[1]:find('loss', 1, true))
  end)

  it('gives each run its row with --each, its seed as a column', function()
    local runs = { run('r1', 'e', 1, { h = 4 }, { loss = { 1 } }), run('r2', 'e', 2, { h = 4 }, { loss = { 3 } }) }
    local out = printed(runs, { each = true })
    assert.same({ 'run', 'experiment', 'seed', 'loss', 'status' }, cells(out[1]))
    assert.same({ 'r2', 'e', '2', '3', 'ok' }, cells(out[4]))
  end)

  it('tells runs of two experiments with one id apart, and marks what a run lacks with -', function()
    local runs = {
      run('same', 'ptb_lm', 0, { hidden = 200, steps = 35 }, { valid_ppl = { 120 } }),
      run('same', 'char_rnn', 0, { hidden = 200, temperature = 0.8 }, { valid_loss = { 1.5 } }),
    }
    local out = printed(runs)
    assert.same({ 'run', 'experiment', 'steps', 'temperature', 'valid_ppl', 'valid_loss', 'status' }, cells(out[1]))
    assert.same({ 'same', 'ptb_lm', '35', '-', '120', '-', 'ok' }, cells(out[3]))
    assert.same({ 'same', 'char_rnn', '-', '0.8', '-', '1.5', 'ok' }, cells(out[4]))
  end)

  it('keeps an unreadable run in a row of its own with its error', function()
    local bad = { id = 'broken', unreadable = true, attrs = { status = 'unreadable: not an HDF5 file' },
      config = {}, metrics = {}, names = {} }
    local runs = { run('a', 'e', 1, { h = 4 }, { loss = { 1 } }), run('b', 'e', 2, { h = 4 }, { loss = { 3 } }), bad }
    local out = printed(runs)
    assert.equal(4, #out)
    assert.truthy(out[4]:find('^broken .*unreadable: not an HDF5 file$'), out[4])
    assert.truthy(out[3]:find('2 ± 1.4', 1, true), out[3])
  end)
end)
