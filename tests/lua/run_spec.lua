-- `usagi run`, resume, show, compare, plot and sweep, on binary addition,
-- through the real executable in child processes.
--
-- The two promises of the runs contract are tested bit for bit: the same
-- seed and threads give identical datasets in results.h5, and a run killed
-- with SIGKILL at random moments and resumed each time ends with the same
-- datasets as a run that was never interrupted (binary addition, and the
-- PTB language model with dropout, killed in the middle of its epochs).
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local sys = usagi.sys
local exe = sys.exe()
local script = 'experiments/binary_addition.lua'

local quote, tmpdir, rmrf = h.quote, h.tmpdir, h.rmrf

local usagi_cli, assert_same_datasets = h.usagi_cli, h.assert_same_datasets

-- Timings are metrics too, and differ from run to run.
local function timing(name) return name:find('seconds', 1, true) or name:find('_per_s', 1, true) end

describe('usagi run', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  it('makes the run directory with provenance, config, metrics and params', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'a', '--seed', '3')
    assert.are.equal(0, code, text)
    local dir = out .. '/binary_addition/a'
    assert.are.equal('file', sys.kind(dir .. '/results.h5'))
    assert.are.equal('file', sys.kind(dir .. '/run.log'))
    local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
    local a = f:attrs('/')
    assert.are.equal('binary_addition', a.experiment)
    assert.are.equal('ok', a.status)
    assert.are.equal(3, a.seed)
    assert.are.equal(usagi.version, a.usagi_version)
    assert.is_truthy(a.blas:find('OpenBLAS', 1, true))
    assert.is_truthy(a.command_line:find('--smoke', 1, true))
    assert.is_truthy(a.finished and a.started and a.host and a.git_commit)
    assert.are.equal('boolean', type(a.git_dirty))
    local git = io.popen('git rev-parse HEAD 2>/dev/null')     -- read from .git without git
    local head = git:read('l')
    git:close()
    if head then assert.are.equal(head, a.git_commit) end
    assert.are.equal(300, f:attr('/config', 'iterations'))           -- the smoke config
    assert.are.equal('sigmoid', f:attr('/config', 'activation'))
    assert.are.same({ 10 }, f:shape('/metrics/loss'))                -- every 30 of 300 steps
    assert.are.same({ 10 }, f:shape('/steps/loss'))
    assert.are.equal(30, f:read('/steps/loss')[1])
    assert.are.same({ 1 }, f:shape('/metrics/accuracy'))
    assert.are.same({ 16, 2 }, f:shape('/params/rnn.weight_ih_l0'))
    local log = io.open(dir .. '/run.log'):read('a')
    assert.is_truthy(log:find('exact-match accuracy', 1, true), log)
  end)

  it('gives bit-identical datasets for the same seed', function()
    for _, name in ipairs { 'a', 'b' } do
      local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', name, '--seed', '5',
        '--threads', '1')
      assert.are.equal(0, code, text)
    end
    assert_same_datasets(out .. '/binary_addition/a/results.h5', out .. '/binary_addition/b/results.h5')
  end)

  -- The checkpoint of steps whose last logged loss is lowest (or highest).
  local function best_step(dir, steps, pick)
    local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
    local loss, at = f:read('/metrics/loss'), f:read('/steps/loss')
    local best, best_at
    for _, s in ipairs(steps) do
      local v
      for j = 1, loss:numel() do if at[j] <= s then v = loss[j] end end
      if v and (best == nil or pick(v, best)) then best, best_at = v, s end
    end
    return best_at
  end

  it('keeps the last K checkpoints and the best one', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'k',
      '--checkpoint-every', '40', '--keep', '2')
    assert.are.equal(0, code, text)
    local dir = out .. '/binary_addition/k'
    local names = sys.listdir(dir .. '/checkpoints')
    assert.are.same({ 'best.h5', 'manifest', 'step-000000280.h5', 'step-000000300.h5' }, names)
    local ck = usagi.load(dir .. '/checkpoints/step-000000300.h5')
    assert.are.equal(300, ck.step)
    assert.are.equal(11, #ck.rng)
    assert.is_truthy(usagi.is_tensor(ck.objects.model['rnn.weight_hh_l0']))
    assert.are.equal(10, ck.metrics.loss.values:numel())
    -- the script's own choice: best by the lowest loss
    local steps = { 40, 80, 120, 160, 200, 240, 280, 300 }
    local best = usagi.load(dir .. '/checkpoints/best.h5')
    assert.are.equal(best_step(dir, steps, function(a, b) return a < b end), best.step)
    assert.are.equal(best.best, best.metrics.loss.values[best.metrics.loss.values:numel()])

    code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'hi',
      '--checkpoint-every', '40', '--best', 'loss:max')
    assert.are.equal(0, code, text)
    best = usagi.load(out .. '/binary_addition/hi/checkpoints/best.h5')
    local worst = best_step(out .. '/binary_addition/hi', steps, function(a, b) return a > b end)
    assert.are.equal(worst, best.step)
    assert.are_not.equal(300, worst)            -- the loss falls: not simply the last

    code, text = usagi_cli('run', script, '--smoke', '--out', out, '--best', 'loss:lowest')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--best needs METRIC, METRIC:min or METRIC:max, got "loss:lowest"', 1, true), text)
    code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'nb', '--best', 'acc')
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('no acc logged yet', 1, true), text)
  end)

  it('refuses a typo in --set with the valid keys, and an existing --name', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--set', 'hiden=3')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('unknown config key "hiden"', 1, true), text)
    assert.is_truthy(text:find('hidden', 1, true), text)
    assert.are.equal(0, (usagi_cli('run', script, '--smoke', '--out', out, '--name', 'x')))
    code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'x')
    assert.are.equal(1, code)
    assert.is_truthy(text:find('exists', 1, true), text)
  end)

  it('stops a diverging run with a clear message and keeps its checkpoint', function()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out, '--name', 'nan',
      '--set', 'activation=relu', '--set', 'lr=1e30', '--checkpoint-every', '10')
    assert.are.equal(1, code, text)
    assert.is_truthy(text:find('loss is NaN at step 30: the run diverged', 1, true), text)
    assert.is_truthy(text:find('checkpoints/step-000000020.h5', 1, true), text)
    local f <close> = usagi.h5.open(out .. '/binary_addition/nan/results.h5', 'r')
    assert.are.equal('diverged', f:attr('/', 'status'))
    assert.is_truthy(#sys.listdir(out .. '/binary_addition/nan/checkpoints') >= 1)
  end)

  it('stops on a failed write with a clear error and the previous checkpoint intact', function()
    -- A file-size limit fails writes as a full disk does (EFBIG for ENOSPC),
    -- without root. The checkpoints grow with the metrics kept in them
    -- (81 kB at step 1000, 105 kB at 2000): the first fits under 96 kB, the
    -- second does not, and results.h5 (under 90 kB before /params) stays under.
    local how, code, text = h.usagi_limited(96, 'run', script, '--out', out, '--name', 'full', '--set',
      'hidden=100', '--set', 'iterations=2000', '--set', 'log_every=1', '--set', 'samples=0',
      '--checkpoint-every', '1000')
    assert.are.equal('exit', how, text)
    assert.are.equal(1, code, text)
    assert.is_truthy(text:find('cannot write checkpoint [^\n]*step%-000002000%.h5'), text)
    assert.is_truthy(text:find('File too large', 1, true), text)
    assert.is_truthy(text:find('step-000001000.h5, is intact', 1, true), text)
    assert.is_falsy(text:find('traceback', 1, true), text)
    local cdir = out .. '/binary_addition/full/checkpoints'
    assert.are.same({ 'best.h5', 'manifest', 'step-000001000.h5' }, sys.listdir(cdir))   -- no half-written file
    assert.are.equal(1000, usagi.load(cdir .. '/step-000001000.h5').step)
    local f <close> = usagi.h5.open(out .. '/binary_addition/full/results.h5', 'r')
    assert.is_truthy(f:attr('/', 'status'):find('^error: run: cannot write checkpoint'))
    assert.are.equal(2000, f:shape('/metrics/loss')[1])              -- the metrics so far
  end)

  it('reports an output directory it cannot make clearly', function()
    -- a plain file where a directory must go stops even root
    io.open(out .. '/plain', 'w'):close()
    local code, text = usagi_cli('run', script, '--smoke', '--out', out .. '/plain/runs')
    assert.are.equal(1, code, text)
    assert.is_truthy(text:find('plain/runs', 1, true), text)
    assert.is_falsy(text:find('exact-match', 1, true), text)
  end)
end)

describe('usagi run --resume', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  local cfg = { '--set', 'iterations=4000', '--set', 'log_every=50', '--checkpoint-every', '200',
    '--threads', '1', '--seed', '11' }

  local function start(...)
    local argv = { exe, 'run', script, '--out', out, ... }
    return sys.spawn(argv, { stdout = out .. '/child.out', stderr = out .. '/child.out' })
  end

  -- The highest step among the checkpoints in dir, 0 when there are none.
  local function last_step(dir)
    local ok, names = pcall(sys.listdir, dir .. '/checkpoints')
    local top = 0
    for _, n in ipairs(ok and names or {}) do
      top = math.max(top, tonumber(n:match('^step%-(%d+)%.h5$')) or 0)
    end
    return top
  end

  -- Run `file` with config whole, then again killed with SIGKILL and
  -- resumed (with resume_args) each time; the two must end with the same
  -- datasets. Returns the cut run's directory, the kills and the seconds of
  -- the whole run.
  --
  -- The kills follow the run's progress, not the clock: the whole run was
  -- timed under one load and the cuts may meet another. Odd cuts wait for
  -- a checkpoint newer than any before, then strike at a random moment
  -- within the next half interval between checkpoints (in a step, in a
  -- checkpoint's write); even cuts strike early in the resume's start-up,
  -- before it has saved anything. Every cut lands before the end whatever
  -- the load, and each odd one moves the run on by at least a checkpoint.
  local function kill_and_resume(file, name, config, every, resume_args)
    local function spawn(...)
      return sys.spawn({ exe, 'run', file, '--out', out, ... },
        { stdout = out .. '/child.out', stderr = out .. '/child.out' })
    end
    local t0 = sys.monotonic()
    local _, how, code = sys.wait(spawn('--name', 'whole', table.unpack(config)))
    local whole = sys.monotonic() - t0
    assert.are.equal('exit', how)
    assert.are.equal(0, code)
    local interval = whole * every / last_step(out .. '/' .. name .. '/whole')

    math.randomseed(20261128)
    local dir, kills, attempts = out .. '/' .. name .. '/cut', 0, 0
    local pid = spawn('--name', 'cut', table.unpack(config))
    while true do
      attempts = attempts + 1
      local ended, ended_how
      if attempts <= 6 and attempts % 2 == 1 then
        local before = last_step(dir)
        repeat
          ended, ended_how = sys.wait(pid, 'nohang')
          if not ended then sys.sleep(0.002) end
        until ended or last_step(dir) > before
        if not ended then sys.sleep(math.random() * 0.5 * interval) end
      elseif attempts <= 6 then
        sys.sleep(math.random() * 0.05 * whole)
      end
      if not ended then
        if attempts <= 6 then sys.kill(pid, 'KILL') end
        _, ended_how = sys.wait(pid)
      end
      if ended_how == 'signal' then kills = kills + 1 else break end
      pid = spawn('--resume', dir, table.unpack(resume_args))
    end
    assert.is_true(kills >= 3, ('only %d of the kills landed before the run ended'):format(kills))
    assert_same_datasets(out .. '/' .. name .. '/whole/results.h5', dir .. '/results.h5', timing)
    return dir, kills, whole
  end

  it('ends with the same bits after SIGKILL at random moments', function()
    local dir, kills, whole = kill_and_resume(script, 'binary_addition', cfg, 200, {})
    local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
    assert.are.equal('ok', f:attr('/', 'status'))
    local a = f:attrs('/')                      -- the run's own start and command stay
    assert.is_truthy(a.command_line:find('--name cut', 1, true), a.command_line)
    assert.is_truthy(a.resumed_command_line:find('--resume', 1, true), a.resumed_command_line)
    -- a resume killed before it rewrote results.h5 is not counted
    assert.is_true(a.resumes >= 1 and a.resumes <= kills, ('%d resumes, %d kills'):format(a.resumes, kills))
    assert.is_true(a.started <= a.resumed_at, a.started .. ' ' .. a.resumed_at)
    print(('\n  resume: %d SIGKILLs, run of %.2f s'):format(kills, whole))
  end)

  -- The language model: killed in the middle of its epochs, with dropout,
  -- its running sums and its LSTM's carried state must come back too.
  it('ends with the same bits after SIGKILL in the middle of epochs, with dropout (ptb_lm)', function()
    if not h.have_data('ptb/ptb.train.txt.gz', 'ptb_lm resume') then return end
    local every = { '--checkpoint-every', '9' }
    local _, kills, whole = kill_and_resume('experiments/ptb_lm.lua', 'ptb_lm',
      { '--smoke', '--set', 'dropout=0.3', '--threads', '1', '--seed', '11', table.unpack(every) }, 9, every)
    print(('\n  ptb_lm resume: %d SIGKILLs, run of %.2f s'):format(kills, whole))
  end)

  it('refuses to change the config of a resumed run', function()
    local code, text = usagi_cli('run', script, '--resume', out, '--set', 'hidden=3')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--resume continues a run', 1, true), text)
    code, text = usagi_cli('run', script, '--resume', out .. '/nothing')
    assert.are.equal(1, code)
    assert.is_truthy(text:find('no such run directory', 1, true), text)
  end)

  it('shows a run while it runs, and refuses to resume it until it stops', function()
    local pid = start('--name', 'live', '--set', 'iterations=1000000', '--threads', '1')
    local dir = out .. '/binary_addition/live'
    local code, text
    local deadline = sys.monotonic() + 120   -- until a few metrics are in (a loaded machine is slow)
    repeat
      code, text = usagi_cli('show', dir)
      if code == 0 and text:find('\nloss ') then break end
      sys.sleep(0.05)
    until sys.monotonic() > deadline
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('status running', 1, true), text)
    code, text = usagi_cli('run', script, '--resume', dir)
    assert.are.equal(1, code)
    assert.is_truthy(text:find('in use by another process', 1, true), text)
    sys.kill(pid, 'KILL')                    -- a killed run leaves no lock behind
    sys.wait(pid)
    local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
    assert.are.equal('running', f:attr('/', 'status'))
    local lock = sys.lock(dir)
    assert.is_truthy(lock)
    lock:unlock()
  end)
end)

describe('checkpoints by epoch', function()
  local out
  before_each(function() out = tmpdir() end)
  after_each(function() rmrf(out) end)

  -- 3 epochs of 5 steps of a small regression, and a validation value
  -- logged after each epoch's steps.
  local nn, optim = require 'usagi.nn', require 'usagi.optim'
  local experiment = require 'usagi.experiment'
  local spec = {
    name = 'epochs', config = { epochs = 3, steps = 5 },
    checkpoint = { every_epochs = 1, keep = 10 },
    run = function(run, cfg)
      local model = nn.Linear(3, 1)
      local opt = optim.SGD(model:parameters(), { lr = 0.05 })
      run:track { model = model, optim = opt }
      for _ in run:epochs(cfg.epochs) do
        for _ in run:progress(cfg.steps) do
          local x = usagi.randn(4, 3)
          local loss = usagi.mse_loss(model(x), x:sum(2, true))
          opt:zero_grad(); loss:backward(); opt:step()
          run:log { loss = loss }
        end
        local x = usagi.randn(8, 3)
        run:log { val = usagi.no_grad(function() return usagi.mse_loss(model(x), x:sum(2, true)) end) }
      end
    end,
  }

  it('takes one after each epoch, past its validation, and resumes at the next epoch', function()
    experiment.run_experiment(spec, { out = out, name = 'whole', quiet = true, seed = 4 })
    local cdir = out .. '/epochs/whole/checkpoints'
    assert.are.same({ 'manifest', 'step-000000005.h5', 'step-000000010.h5', 'step-000000015.h5' },
      sys.listdir(cdir))
    local ck = usagi.load(cdir .. '/step-000000010.h5')
    assert.are.equal(3, ck.epoch)                      -- epoch 2 done: the next starts afresh
    assert.are.equal(0, ck.position)
    assert.are.equal(2, ck.metrics.val.values:numel())  -- with epoch 2's validation

    -- a run cut after epoch 1 and resumed ends with the same bits
    experiment.run_experiment(spec, { out = out, name = 'cut', quiet = true, seed = 4 })
    local dir = out .. '/epochs/cut'
    sys.remove(dir .. '/checkpoints/step-000000015.h5')
    sys.remove(dir .. '/checkpoints/step-000000010.h5')
    experiment.run_experiment(spec, { resume = dir, quiet = true })
    assert_same_datasets(out .. '/epochs/whole/results.h5', dir .. '/results.h5')

    local code, text = usagi_cli('run', script, '--smoke', '--checkpoint-epochs', '-1')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--checkpoint-epochs needs an integer >= 0, got -1', 1, true), text)
  end)
end)

describe('usagi show, compare, plot and sweep', function()
  local out
  setup(function()
    out = tmpdir()
    for _, act in ipairs { 'sigmoid', 'tanh' } do
      assert.are.equal(0, (usagi_cli('run', script, '--smoke', '--out', out, '--name', act,
        '--set', 'activation=' .. act)))
    end
  end)
  teardown(function() rmrf(out) end)

  it('each command has its help', function()
    for _, cmd in ipairs { 'run', 'sweep', 'show', 'compare', 'plot' } do
      local code, text = usagi_cli(cmd, '--help')
      assert.are.equal(0, code, text)
      assert.is_truthy(text:find('^usagi ' .. cmd .. ' '), text)
    end
  end)

  it('show prints the config, provenance and metrics', function()
    local code, text = usagi_cli('show', out .. '/binary_addition/tanh')
    assert.are.equal(0, code, text)
    for _, needle in ipairs { 'binary_addition', 'status ok', 'activation', 'tanh', 'loss', 'accuracy', 'OpenBLAS' } do
      assert.is_truthy(text:find(needle, 1, true), needle .. ' missing from:\n' .. text)
    end
  end)

  it('compare shows only the config keys that differ, and final metrics', function()
    local code, text = usagi_cli('compare', out .. '/binary_addition/sigmoid', out .. '/binary_addition/tanh')
    assert.are.equal(0, code, text)
    local header = text:match('^[^\n]+')
    assert.is_truthy(header:find('activation', 1, true), text)
    assert.is_falsy(header:find('hidden', 1, true), text)
    assert.is_truthy(header:find('accuracy', 1, true), text)
    assert.is_truthy(text:find('\ntanh%s+binary_addition%s+tanh'), text)
  end)

  it('compare tells runs of two experiments with one id apart, and marks what a run lacks', function()
    local other = tmpdir()
    assert.are.equal(0, (usagi_cli('run', 'tests/mpi/dp_synth.lua', '--smoke', '--out', other, '--name', 'tanh')))
    local code, text = usagi_cli('compare', out .. '/binary_addition/tanh', other .. '/dp_synth/tanh')
    rmrf(other)
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('^run%s+experiment%s'), text)
    -- inputs is dp_synth's key alone, accuracy binary_addition's metric alone
    local header = text:match('^[^\n]+')
    local col = {}
    for name in header:gmatch('%S+') do col[#col + 1] = name end
    local function cell(row, name)
      local cells = {}
      for c in row:gmatch('%S+') do cells[#cells + 1] = c end
      for j, n in ipairs(col) do if n == name then return cells[j] end end
    end
    local ba, dp = text:match('\n(tanh%s+binary_addition[^\n]*)'), text:match('\n(tanh%s+dp_synth[^\n]*)')
    assert.is_truthy(ba and dp, text)
    assert.are.equal('-', cell(ba, 'inputs'), text)
    assert.are.equal('8', cell(dp, 'inputs'), text)
    assert.are.equal('-', cell(dp, 'accuracy'), text)
    assert.is_falsy(text:find('nil', 1, true), text)
  end)

  it('plot writes an SVG and a PNG of the loss curves', function()
    for _, ext in ipairs { 'svg', 'png' } do
      local file = out .. '/loss.' .. ext
      local code, text = usagi_cli('plot', out .. '/binary_addition/sigmoid', out .. '/binary_addition/tanh',
        '--metric', 'loss', '-o', file)
      assert.are.equal(0, code, text)
      local data = io.open(file, 'rb'):read('a')
      if ext == 'svg' then
        assert.is_truthy(data:find('<svg', 1, true))
        assert.is_truthy(data:find('tanh', 1, true))
      else
        assert.are.equal('\137PNG', data:sub(1, 4))
      end
    end
    local code, text = usagi_cli('plot', out .. '/binary_addition/tanh', '--metric', 'nope', '-o', out .. '/x.svg')
    assert.are.equal(1, code)
    assert.is_truthy(text:find('no metric "nope"', 1, true), text)
  end)

  it('plot orders the legend by number, and takes --logy, --smooth and --x epoch|seconds', function()
    for _, hid in ipairs { 16, 8 } do
      assert.are.equal(0, (usagi_cli('run', script, '--smoke', '--out', out, '--name', 'h' .. hid,
        '--set', 'hidden=' .. hid)))
    end
    local file = out .. '/h.svg'
    local code, text = usagi_cli('plot', out .. '/binary_addition/h16', out .. '/binary_addition/h8',
      '--logy', '--smooth', '0.5', '-o', file)
    assert.are.equal(0, code, text)
    local svg = io.open(file):read('a')
    local at8, at16 = svg:find('>hidden=8</text>', 1, true), svg:find('>hidden=16</text>', 1, true)
    assert.is_truthy(at8 and at16 and at8 < at16, svg)
    assert.is_truthy(svg:find('>loss (smoothed 0.5)</text>', 1, true), svg)
    code, text = usagi_cli('plot', out .. '/binary_addition/h8', '--smooth', '1', '-o', file)
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--smooth needs a weight in [0, 1)', 1, true), text)
    -- binary_addition logs no epoch; dp_synth logs one at the end of each of its 3 epochs
    code, text = usagi_cli('plot', out .. '/binary_addition/h8', '--x', 'epoch', '-o', file)
    assert.are.equal(1, code)
    assert.is_truthy(text:find('logs no epoch metric', 1, true), text)
    assert.are.equal(0, (usagi_cli('run', 'tests/mpi/dp_synth.lua', '--smoke', '--out', out, '--name', 'd')))
    code, text = usagi_cli('plot', out .. '/dp_synth/d', '--metric', 'loss', '--x', 'epoch', '-o', file)
    assert.are.equal(0, code, text)
    svg = io.open(file):read('a')
    assert.is_truthy(svg:find('>epoch</text>', 1, true), svg)
    local xs = {}
    for pts in svg:gmatch('<polyline[^>]-points="([^"]*)"') do
      for x in pts:gmatch('([%d.]+),') do xs[#xs + 1] = tonumber(x) end
    end
    assert.are.equal(3, #xs)              -- one loss per epoch, at epochs 1, 2, 3: evenly spaced
    assert.is_true(math.abs((xs[2] - xs[1]) - (xs[3] - xs[2])) < 0.02, svg)
    assert.is_truthy(svg:find('>3</text>', 1, true), svg)
    -- each value's time since the run started, in /seconds/<key>, is the x of --x seconds
    local f <close> = usagi.h5.open(out .. '/binary_addition/h8/results.h5', 'r')
    local secs, loss = f:read('/seconds/loss'), f:read('/metrics/loss')
    assert.are.equal(loss:numel(), secs:numel())
    assert.is_true(secs[1] > 0)
    for j = 2, secs:numel() do assert.is_true(secs[j] >= secs[j - 1]) end
    code, text = usagi_cli('plot', out .. '/binary_addition/h8', '--x', 'seconds', '-o', file)
    assert.are.equal(0, code, text)
    assert.is_truthy(io.open(file):read('a'):find('>seconds</text>', 1, true))
  end)

  it('sweep runs every combination over the seeds, and the table gives mean ± std with n', function()
    local code, text = usagi_cli('sweep', script, '--smoke', '--out', out, '--grid', 'activation=tanh,relu',
      '--seeds', '1,2', '-j', '2')
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('4 runs', 1, true), text)
    local rows = 0
    for line in text:gmatch('[^\n]+') do
      if line:find('^%[%d/4%] activation=%a+ seed=%d +ok ') then rows = rows + 1 end
    end
    assert.are.equal(4, rows, text)
    -- one row per activation, over seeds 1 and 2
    assert.is_truthy(text:find('\nexperiment%s+activation%s+n%s+seeds%s+accuracy%s+loss%s+status\n'), text)
    for _, act in ipairs { 'tanh', 'relu' } do
      assert.is_truthy(text:find('\nbinary_addition%s+' .. act .. '%s+2%s+1,2%s+%S+ ± %S+%s+%S+ ± %S+%s+2 ok\n'), text)
    end
    -- the seed is the run's: each run's results.h5 says so
    local dirs = {}
    for _, d in ipairs(sys.listdir(out .. '/binary_addition')) do
      if d:find('seed=', 1, true) then dirs[#dirs + 1] = out .. '/binary_addition/' .. d end
    end
    table.sort(dirs)
    assert.are.equal(4, #dirs)
    for _, d in ipairs(dirs) do
      local f <close> = usagi.h5.open(d .. '/results.h5', 'r')
      assert.are.equal(tonumber(d:match('seed=(%d+)$')), f:attrs('/').seed, d)
    end
    -- plot: the seeds of an activation share its colour and one legend row
    local file = out .. '/seeds.svg'
    code, text = usagi_cli('plot', '-o', file, table.unpack(dirs))
    assert.are.equal(0, code, text)
    local svg = io.open(file):read('a')
    local strokes, colours = {}, 0
    for c in svg:gmatch('<polyline[^>]-stroke="(#%x+)"') do
      if not strokes[c] then colours = colours + 1 end
      strokes[c] = (strokes[c] or 0) + 1
    end
    assert.are.equal(2, colours, svg)
    assert.is_truthy(svg:find('>activation=relu (2 seeds)</text>', 1, true), svg)
    assert.is_truthy(svg:find('>activation=tanh (2 seeds)</text>', 1, true), svg)
    local _, rows = svg:gsub('seeds%)</text>', '')
    assert.are.equal(2, rows)
    -- what a shell glob of the experiment's folder brings (the sweep's log
    -- too) plots and compares: the log is left out with a note
    local glob = { table.unpack(dirs) }
    for _, d in ipairs(sys.listdir(out .. '/binary_addition')) do
      if d:find('^sweep%-.*%.log$') then glob[#glob + 1] = out .. '/binary_addition/' .. d end
    end
    assert.are.equal(5, #glob)
    code, text = usagi_cli('plot', '-o', out .. '/glob.svg', table.unpack(glob))
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('leaving out .-%.log: not a run'), text)
    code, text = usagi_cli('compare', table.unpack(glob))
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('leaving out .-%.log: not a run'), text)
    -- --each: a row per run, with its seed
    code, text = usagi_cli('compare', '--each', table.unpack(dirs))
    assert.are.equal(0, code, text)
    assert.is_truthy(text:find('^run%s+experiment%s+activation%s+seed%s'), text)
    assert.is_truthy(text:find('seed=2%s+binary_addition%s+tanh%s+2%s'), text)
    code, text = usagi_cli('sweep', script, '--smoke', '--out', out, '--grid', 'hiden=4')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('unknown config key', 1, true), text)
    code, text = usagi_cli('sweep', script, '--smoke', '--out', out, '--seeds', '1,x')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--seed', 1, true), text)
    code, text = usagi_cli('sweep', script, '--smoke', '--out', out, '--seeds', '1,2', '--seed', '3')
    assert.are.equal(2, code)
    assert.is_truthy(text:find('--seed and --seeds', 1, true), text)
  end)
end)

describe('run:batches', function()
  -- a run in memory whose body is f(run)
  local function in_run(f, seed)
    return require('usagi.experiment').run_experiment({ name = 'batches', config = {}, run = function(run) return f(run) end },
      { quiet = true, seed = seed or 1 })
  end

  it('goes over every sample once per epoch in a seeded order, in batches of B, the pairs kept together', function()
    local x = usagi.arange(1, 11):view(10, 1)
    local y = x * 10
    local function epoch(seed)
      local _, seen = in_run(function(run)
        local rows, sizes = {}, {}
        for xb, yb in run:batches({ x, y }, 4) do
          sizes[#sizes + 1] = xb:size(1)
          for i = 1, xb:size(1) do
            assert.are.equal(xb[i][1] * 10, yb[i][1])
            rows[#rows + 1] = xb[i][1]
          end
        end
        return { rows = rows, sizes = sizes }
      end, seed)
      return seen
    end
    local a, b, c = epoch(1), epoch(1), epoch(2)
    assert.are.same({ 4, 4, 2 }, a.sizes)
    local sorted = { table.unpack(a.rows) }
    table.sort(sorted)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, sorted)
    assert.are.same(a.rows, b.rows)
    assert.are_not.same(a.rows, c.rows)
  end)

  it('names what it expected and what came', function()
    in_run(function(run)
      h.fails(function() run:batches({ usagi.zeros(3, 1), usagi.zeros(4, 1) }, 2) end,
        'run:batches: tensor 2 has 4 samples, the first 3')
      h.fails(function() run:batches({ usagi.zeros(3, 1) }, 0) end, 'run:batches: B must be a positive integer, got 0')
      h.fails(function() run:batches({}, 2) end, 'run:batches: tensors must be a list of tensors')
    end)
  end)

  it('labels its bar with the epoch inside run:epochs', function()
    local _, labels = in_run(function(run)
      local seen, progress = {}, run.progress
      run.progress = function(self, n, opts) seen[#seen + 1] = opts.label; return progress(self, n, opts) end
      for _ in run:epochs(2) do
        for _ in run:batches({ usagi.zeros(3, 1) }, 2) do end
      end
      for _ in run:batches({ usagi.zeros(3, 1) }, 2, { label = 'mine' }) do end
      return seen
    end)
    assert.are.same({ 'epoch 1/2', 'epoch 2/2', 'mine' }, labels)
  end)

  -- What run:progress writes to stderr, on a terminal (tty) or not.
  local function progress_lines(tty, seconds, n, pause)
    local writes, real = {}, io.stderr
    io.stderr = { write = function(self, ...) for _, s in ipairs { ... } do writes[#writes + 1] = s end return self end,
      flush = function() end }
    local ok, err = pcall(in_run, function(run)
      run.quiet, run.tty, run.progress_seconds = false, tty, seconds
      for _ in run:progress(n, { carry = {} }) do sys.sleep(pause) end
    end)
    io.stderr = real
    assert(ok, err)
    return table.concat(writes)
  end

  it('progress: the first reading has no rate yet, not one of a step that has not run', function()
    local text = progress_lines(true, nil, 3, 0.12)
    local rates = {}
    for r in text:gmatch('%] %d+/3 (%S+) it/s') do rates[#rates + 1] = r end
    assert.are.equal('?', rates[1], text)
    assert.is_truthy(text:find('%] 1/3 %? it/s 00:00<%-%-:%-%-'), text)
    for j = 2, #rates do
      local r = tonumber(rates[j])
      assert.is_true(r and r > 2 and r < 20, text)         -- a step takes 0.12 s
    end
  end)

  it('progress: into a file, a line every few seconds and one at the end, not one per step', function()
    local text = progress_lines(false, 0.1, 100, 0.005)
    assert.is_falsy(text:find('\r', 1, true), text)
    local lines = 0
    for _ in text:gmatch('[^\n]+') do lines = lines + 1 end
    assert.is_true(lines >= 2 and lines <= 12, text)       -- 0.5 s or more of steps, a line per 0.1 s
    assert.is_truthy(text:find('%] 100/100 %d+ it/s [^\n]*\n$'), text)
    text = progress_lines(false, 5, 100, 0)
    assert.is_truthy(text:find('^batches %[#+%] 100/100 %d+ it/s [^\n]*\n$'), text)
  end)

  it('train_epoch: one step of the optimizer per batch, the mean of the batch losses', function()
    local _, got = in_run(function(run)
      local w = usagi.zeros(1):requires_grad(true)
      local opt = require('usagi.optim').SGD({ w }, { lr = 0 })       -- lr 0: the losses stay known
      local x = usagi.arange(1, 11):view(10, 1)
      local calls, rows = 0, 0
      local mean = run:train_epoch(opt, { x, x * 2 }, 4, function(xb, yb)
        calls, rows = calls + 1, rows + xb:size(1)
        assert.are.equal(xb[1][1] * 2, yb[1][1])
        return (xb:sum() + w):sum()      -- the sum of the batch's rows
      end)
      return { mean = mean, calls = calls, rows = rows, grad = w.grad:item() }
    end)
    assert.are.equal(3, got.calls)
    assert.are.equal(10, got.rows)
    assert.are.equal(55 / 3, got.mean)   -- the three batch sums add up to 1 + ... + 10
    assert.are.equal(1, got.grad)        -- backward ran (zeroed before each step)
  end)
end)
