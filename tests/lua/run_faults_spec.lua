-- `usagi run`, show and compare under faults: a full disk at the end of a
-- run, two runs racing for one name, a diverged run's checkpoints, a killed
-- run, SIGTERM and SIGHUP, a corrupt newest checkpoint, unreadable runs and
-- malformed metrics. Each test injects the fault and checks what is on disk.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local sys = usagi.sys
local exe = sys.exe()
local script = 'experiments/binary_addition.lua'

local quote, tmpdir, rmrf = h.quote, h.tmpdir, h.rmrf
local usagi_cli, assert_same_datasets = h.usagi_cli, h.assert_same_datasets

local function has(text, needle)
  assert.is_truthy(text:find(needle, 1, true), ('"%s" lacks "%s"'):format(text, needle))
end

local function attrs(path)
  local f <close> = usagi.h5.open(path, 'r')
  return f:attrs('/')
end

local function spawn(out, ...)
  return sys.spawn({ exe, 'run', script, '--out', out, ... },
    { stdout = out .. '/child.out', stderr = out .. '/child.out' })
end

-- Waits until path exists (a run has started writing), at most 60 s.
local function await(path)
  local t0 = sys.monotonic()
  while not sys.kind(path) do
    assert.is_true(sys.monotonic() - t0 < 60, 'no ' .. path .. ' after 60 s')
    sys.sleep(0.02)
  end
end

describe('usagi run refuses', function()
  it('an empty --out, --no-save with --out or --resume, and --threads past 1024', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', '')
    assert.are.equal(2, code)
    has(text, '--out needs a directory, got an empty string')
    code, text = usagi_cli('run', script, '--smoke', '--no-save', '--out', 'somewhere')
    assert.are.equal(2, code)
    has(text, '--no-save keeps nothing on disk, so it cannot go with --out')
    code, text = usagi_cli('run', script, '--out', 'somewhere', '--no-save')
    assert.are.equal(2, code)
    code, text = usagi_cli('run', script, '--no-save', '--resume', 'somewhere')
    assert.are.equal(2, code)
    has(text, 'cannot go with --resume')
    code, text = usagi_cli('run', script, '--smoke', '--no-save', '--threads', '1025')
    assert.are.equal(2, code)
    has(text, '--threads needs an integer between 1 and 1024, got 1025')
    assert.is_falsy(text:find('.lua:', 1, true), text)
  end)
end)

describe('a run directory', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  it('goes to one of two runs racing for a name; the other says it exists', function()
    for round = 1, 3 do
      local name = 'race' .. round
      local a = sys.spawn({ exe, 'run', script, '--smoke', '--out', out, '--name', name },
        { stdout = out .. '/a.out', stderr = out .. '/a.out' })
      local b = sys.spawn({ exe, 'run', script, '--smoke', '--out', out, '--name', name },
        { stdout = out .. '/b.out', stderr = out .. '/b.out' })
      local _, _, ca = sys.wait(a)
      local _, _, cb = sys.wait(b)
      local texts = { sys.read(out .. '/a.out'), sys.read(out .. '/b.out') }
      assert.are.same({ 0, 1 }, ca < cb and { ca, cb } or { cb, ca }, texts[1] .. texts[2])
      has(texts[ca == 1 and 1 or 2], ('run %s already exists'):format(name))
      assert.are.equal('ok', attrs(('%s/binary_addition/%s/results.h5'):format(out, name)).status)
    end
  end)

  it('of a finished run is never written again by a fresh run', function()
    assert.are.equal(0, (usagi_cli('run', script, '--smoke', '--out', out, '--name', 'done')))
    local path = out .. '/binary_addition/done/results.h5'
    local before = sys.read(path)
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'done', '--seed', '2')
    assert.are.equal(1, code)
    has(text, 'run done already exists')
    assert.is_true(before == sys.read(path), 'results.h5 changed')
  end)
end)

describe('a full disk at the end of a run', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  -- A file-size limit fails writes as a full disk does (EFBIG for ENOSPC),
  -- without a mount: the live results.h5 (the metrics and their times) fits
  -- under 80 kB, the final one (112 kB), with 10,000 more floats of
  -- parameters, does not.
  it('fails the run with the reason, and keeps the metrics written so far', function()
    local how, code, text = h.usagi_limited(80, 'run', script, '--out', out, '--name', 'full', '--set',
      'hidden=100', '--set', 'iterations=600', '--set', 'log_every=1', '--set', 'samples=0',
      '--checkpoint-every', '0')
    assert.are.equal('exit', how, text)
    assert.are.equal(1, code, text)
    has(text, 'cannot write the final results')
    has(text, 'File too large')
    assert.is_falsy(text:find('traceback', 1, true), text)
    local dir = out .. '/binary_addition/full'
    assert.are.same({ 'checkpoints', 'results.h5', 'run.log' }, sys.listdir(dir))  -- no temporary left
    local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
    assert.are.equal('failed', f:attr('/', 'status'))
    assert.are.equal(600, f:shape('/metrics/loss')[1])
    assert.is_false(f:exists('/params'))
  end)

  -- The same on a real full file system, where the machine lets us mount a
  -- small tmpfs (as root); skipped with the reason otherwise.
  it('on a full tmpfs says "No space left on device" and never saves zeros', function()
    local mnt = out .. '/mnt'
    sys.mkdir(mnt)
    if not os.execute('mount -t tmpfs -o size=512k tmpfs ' .. quote(mnt) .. ' 2>/dev/null') then
      print('\n  skipped the tmpfs test: cannot mount a tmpfs here (not root?)')
      return
    end
    local ok, err = pcall(function()
      local code, text = usagi_cli('run', script, '--smoke', '--out', mnt, '--name', 'full',
        '--set', 'hidden=300')
      assert.are.equal(1, code, text)
      has(text, 'No space left on device')
      local a = attrs(mnt .. '/binary_addition/full/results.h5')
      assert.are_not.equal('ok', a.status)
    end)
    os.execute('umount ' .. quote(mnt))
    if not ok then error(err, 0) end
  end)
end)

describe('a diverged run', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  it('calls no checkpoint good that holds NaN or Inf, and --resume refuses them', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'nan',
      '--set', 'activation=relu', '--set', 'lr=1e9', '--checkpoint-every', '10')
    assert.are.equal(1, code, text)
    has(text, 'the run diverged')
    has(text, 'no checkpoint holds finite values')
    local dir = out .. '/binary_addition/nan'
    for _, name in ipairs(sys.listdir(dir .. '/checkpoints')) do
      if name:match('^step%-%d+%.h5$') then
        local ck = usagi.load(dir .. '/checkpoints/' .. name)
        assert.is_false(ck.finite, name)
      end
    end
    code, text = usagi_cli('run', script, '--resume', dir)
    assert.are.equal(1, code, text)
    has(text, 'its parameters are not finite')
    has(text, 'no checkpoint there is good')
  end)

  it('names its last good checkpoint, which holds finite values, and keeps it', function()
    -- at lr 1e9 step 1 leaves finite parameters, step 2 infinite ones, and
    -- the loss of step 3 is NaN; --keep 1 would prune step 1 but for that
    local code, text = usagi_cli('run', script, '--out', out, '--name', 'late', '--set', 'activation=relu',
      '--set', 'lr=1e9', '--set', 'log_every=1', '--checkpoint-every', '1', '--keep', '1')
    assert.are.equal(1, code, text)
    has(text, 'the last good checkpoint is ' .. out .. '/binary_addition/late/checkpoints/step-000000001.h5')
    local ck = usagi.load(out .. '/binary_addition/late/checkpoints/step-000000001.h5')
    assert.is_true(ck.finite)
    for _, t in pairs(ck.objects.model) do assert.is_true(t:abs():max():item() < math.huge) end
    assert.is_false(usagi.load(out .. '/binary_addition/late/checkpoints/step-000000002.h5').finite)
    code, text = usagi_cli('run', script, '--resume', out .. '/binary_addition/late')
    has(text, 'resuming from step-000000001.h5, the newest good checkpoint')
  end)
end)

describe('a run stopped from outside', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)
  local long = { '--set', 'iterations=100000', '--set', 'log_every=50', '--checkpoint-every', '200',
    '--threads', '1', '--seed', '3' }

  it('by SIGKILL shows as killed', function()
    local pid = spawn(out, '--name', 'k', table.unpack(long))
    local dir = out .. '/binary_addition/k'
    await(dir .. '/checkpoints/step-000000200.h5')
    local code, text = usagi_cli('show', dir)
    assert.are.equal(0, code, text)
    has(text, 'status running')
    sys.kill(pid, 'KILL')
    sys.wait(pid)
    code, text = usagi_cli('show', dir)
    assert.are.equal(0, code, text)
    has(text, 'status killed')
    code, text = usagi_cli('compare', dir)
    has(text, 'killed')
  end)

  for _, sig in ipairs { { 'TERM', 15, 143 }, { 'HUP', 1, 129 } } do
    it(('by SIG%s ends with a checkpoint and status interrupted, and resumes to the same bits')
      :format(sig[1]), function()
      local cfg = { '--set', 'iterations=3000', '--set', 'log_every=50', '--checkpoint-every', '500',
        '--threads', '1', '--seed', '3' }
      assert.are.equal(0, (usagi_cli('run', script, '--out', out, '--name', 'whole', table.unpack(cfg))))
      local pid = spawn(out, '--name', 'cut', table.unpack(cfg))
      local dir = out .. '/binary_addition/cut'
      await(dir .. '/checkpoints/step-000000500.h5')
      sys.kill(pid, sig[2])
      local _, how, code = sys.wait(pid)
      local text = sys.read(out .. '/child.out')
      assert.are.equal('exit', how, text)
      if code == 0 then                      -- it ended before the signal came: nothing to test
        print('\n  the run ended before SIG' .. sig[1] .. ' arrived; not checked')
        return
      end
      assert.are.equal(sig[3], code, text)
      has(text, 'stopped by SIG' .. sig[1] .. ' after step ')
      has(text, 'resume with usagi run --resume')
      local a = attrs(dir .. '/results.h5')
      assert.are.equal('interrupted', a.status)
      local step = a.steps
      assert.are.equal('file', sys.kind(('%s/checkpoints/step-%09d.h5'):format(dir, step)))
      code, text = usagi_cli('run', script, '--resume', dir)
      assert.are.equal(0, code, text)
      assert_same_datasets(out .. '/binary_addition/whole/results.h5', dir .. '/results.h5')
      -- the resume kept the run's --checkpoint-every 500 (the script's default is 5000)
      assert.are.equal('file', sys.kind(dir .. '/checkpoints/step-000002500.h5'))
    end)
  end
end)

describe('--resume of a damaged run', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  -- A whole run and the same run SIGKILLed after its checkpoint of step
  -- 600 -> the killed run's directory and its command-line options.
  local function whole_and_cut(seed)
    local cfg = { '--set', 'iterations=20000', '--set', 'log_every=50', '--checkpoint-every', '200',
      '--threads', '1', '--seed', tostring(seed) }
    assert.are.equal(0, (usagi_cli('run', script, '--out', out, '--name', 'whole', table.unpack(cfg))))
    local pid = spawn(out, '--name', 'cut', table.unpack(cfg))
    local dir = out .. '/binary_addition/cut'
    await(dir .. '/checkpoints/step-000000600.h5')
    sys.kill(pid, 'KILL')
    sys.wait(pid)
    return dir
  end

  it('passes over a corrupt newest checkpoint, says so, and ends with the bits of the one before', function()
    local dir = whole_and_cut(5)
    local names = {}
    for _, n in ipairs(sys.listdir(dir .. '/checkpoints')) do
      if n:match('^step%-%d+%.h5$') then names[#names + 1] = n end
    end
    local newest = dir .. '/checkpoints/' .. names[#names]
    -- one changed byte in the middle of the newest checkpoint
    local bytes = sys.read(newest)
    local at = #bytes // 2
    local f = assert(io.open(newest, 'r+b'))
    f:seek('set', at)
    f:write(string.char(bytes:byte(at + 1) ~ 0x5a))
    f:close()
    local code, text = usagi_cli('run', script, '--resume', dir)
    assert.are.equal(0, code, text)
    has(text, 'passing over checkpoint ' .. names[#names])
    has(text, 'resuming from ' .. names[#names - 1])
    assert_same_datasets(out .. '/binary_addition/whole/results.h5', dir .. '/results.h5')
  end)

  it('goes on from the checkpoint past a damaged results.h5 and writes it afresh', function()
    local dir = whole_and_cut(6)
    local path = dir .. '/results.h5'
    local bytes = { sys.read(path):byte(1, -1) }
    for i = 1, #bytes, 97 do bytes[i] = bytes[i] ~ 0x5a end
    local f = assert(io.open(path, 'wb'))
    for i = 1, #bytes, 4096 do f:write(string.char(table.unpack(bytes, i, math.min(i + 4095, #bytes)))) end
    f:close()
    assert.is_nil((usagi.h5.verify(path)))
    -- (its thread count unreadable, the run is told again)
    local code, text = usagi_cli('run', script, '--resume', dir, '--threads', '1')
    assert.are.equal(0, code, text)
    assert_same_datasets(out .. '/binary_addition/whole/results.h5', path)
  end)
end)

describe('show and compare', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  it('read a live run that flushes every step, trying again when a read meets a flush', function()
    local pid = spawn(out, '--name', 'live', '--set', 'iterations=1000000', '--set', 'log_every=1',
      '--checkpoint-every', '0')
    local dir = out .. '/binary_addition/live'
    await(dir .. '/results.h5')
    local failed = {}
    for _ = 1, 20 do
      local code, text = usagi_cli('show', dir)
      if code ~= 0 then failed[#failed + 1] = text end
    end
    sys.kill(pid, 'KILL')
    sys.wait(pid)
    assert.are.equal(0, #failed, table.concat(failed, '\n'))
  end)

  it('compare shows an unreadable run as a row with its error and goes on', function()
    assert.are.equal(0, (usagi_cli('run', script, '--smoke', '--out', out, '--name', 'a')))
    sys.mkdir(out .. '/junk')
    local f = assert(io.open(out .. '/junk/results.h5', 'w'))
    f:write('not an HDF5 file')
    f:close()
    local code, text = usagi_cli('compare', out .. '/binary_addition/a', out .. '/junk', out .. '/none')
    assert.are.equal(1, code, text)
    has(text, 'unreadable: ')
    has(text, 'not an HDF5 file')
    has(text, 'no such run directory')
    assert.is_truthy(text:find('\na +[^\n]* ok\n'), text)
  end)

  it('name the dataset of a metric that is not a list, or whose steps do not match', function()
    local path = out .. '/r.h5'
    local f = usagi.h5.open(path, 'w')
    f:write('/metrics/x', usagi.zeros(3, 2, 'f64'))
    f:close()
    local code, text = usagi_cli('show', path)
    assert.are.equal(1, code, text)
    has(text, '/metrics/x is (3, 2), not a list of values')
    assert.is_falsy(text:find('.lua:', 1, true), text)
    f = usagi.h5.open(path, 'w')
    f:write('/metrics/y', usagi.zeros(3, 'f64'))
    f:write('/steps/y', usagi.zeros(2, 'f64'))
    f:close()
    code, text = usagi_cli('show', path)
    assert.are.equal(1, code, text)
    has(text, '/steps/y has 2 entries for the 3 of /metrics/y')
  end)
end)
