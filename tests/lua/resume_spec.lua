-- Resume to the same bits, from any step: every experiment's smoke config
-- is run whole, then run again and stopped by the test-only fault hook
-- (USAGI_FAULT=exit-after-step:N, a SIGKILL of the run by itself) at three
-- steps N -- in the middle of the first epoch, just after its end and late
-- in the run -- each time resumed with --resume, and the two results.h5 must
-- hold the same /params, /metrics and /steps, byte for byte. Dropout is on
-- where an experiment has it, so the generator's draws are covered too.
-- Experiments whose data is missing are skipped with the reason printed.
--
-- Also here: the run layer's part of it, in-process and without data (a
-- loop's carried state, tensors included, back bit for bit; a loop that
-- declares none refused under checkpoint_every, with the candidates named).
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local experiment = require 'usagi.experiment'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
require 'usagi.lstm'
local sys = usagi.sys
local exe = sys.exe()

local fails = h.raises

-- Timings are metrics too, and differ from run to run: they are not
-- compared, and only /params, /metrics and /steps are.
local function skipped(name)
  return not (name:find('^/params/') or name:find('^/metrics/') or name:find('^/steps/'))
    or name:find('seconds', 1, true) or name:find('_per_s', 1, true)
end

local function assert_same(a, b, what) return h.assert_same_datasets(a, b, skipped, what) end

-- usagi run in a child, USAGI_FAULT set to `fault` (or unset) -> how, code
local function run_child(log, fault, args)
  local argv = { 'env' }
  if fault then argv[#argv + 1] = 'USAGI_FAULT=exit-after-step:' .. fault
  else argv[#argv + 1] = '-u'; argv[#argv + 1] = 'USAGI_FAULT' end
  argv[#argv + 1] = exe
  argv[#argv + 1] = 'run'
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local _, how, code = sys.wait(sys.spawn(argv, { stdout = log, stderr = log }))
  return how, code
end

local function tail(path)
  local f = io.open(path, 'r')
  if not f then return '' end
  local text = f:read('a')
  f:close()
  return text:sub(-1500)
end

-- The steps at which the first epoch ended (the step /steps/epoch holds),
-- and the run's last step, from an uninterrupted results.h5.
local function shape_of(path)
  local f <close> = usagi.h5.open(path, 'r')
  local total = f:attr('/', 'steps')
  local first
  if f:kind('/steps/epoch') == 'dataset' then first = math.tointeger(f:read('/steps/epoch')[1]) end
  return total, first
end

-- Three steps to stop at, increasing, all before the last: in the middle of
-- the first epoch, the step after its end, and a late one (without epochs,
-- or with a single one, at about a third, two thirds and the end).
local function stops(total, first)
  local ns
  if first and first < total then
    ns = { math.max(1, first // 2 + 1), first + 1, first + math.max(1, (total - first) * 2 // 3) }
  else
    ns = { math.max(1, total // 3), math.max(2, 2 * total // 3), total - 1 }
  end
  local out, last = {}, 0
  for _, n in ipairs(ns) do
    if n > last and n < total then out[#out + 1], last = n, n end
  end
  return out
end

-- name, steps between checkpoints (a few an epoch of the smoke config),
-- the data it needs, the --set it runs with: dropout where it has some,
-- and no samples or pictures after the training (not in results.h5).
-- gradient_flow and word2vec_text take no training steps (a measure of
-- untrained nets; the C word2vec trainer): they have nothing to resume.
local EXPERIMENTS = {
  { 'binary_addition', every = 40, set = { 'samples=0' } },
  { 'sine', every = 9 },
  { 'char_rnn', every = 9, data = { 'tinyshakespeare/input.txt' }, set = { 'dropout=0.3', 'sample=0' } },
  { 'ptb_lm', every = 31, data = { 'ptb/ptb.train.txt.gz', 'ptb/ptb.valid.txt', 'ptb/ptb.test.txt' }, set = { 'dropout=0.3' } },
  { 'seq2seq_addition', every = 5, data = { 'dlfs2/addition.txt' } },
  { 'attention_dates', every = 3, data = { 'dlfs2/date.txt' }, set = { 'pictures=0' } },
  { 'dialogue', every = 3, data = { 'dailydialog/dialogues_train.txt.gz', 'dailydialog/dialogues_test.txt.gz' },
    set = { 'model=vhred', 'samples=0' } },        -- the VHRED draws z
  { 'autoencoder', every = 4, data = { 'digits/digits.csv.gz' } },
  { 'vae_mnist', every = 4, data = { 'digits/digits.csv.gz' }, set = { 'pictures=false' } },
  { 'word2vec_ptb', every = 7, data = { 'ptb/ptb.train.txt.gz' }, set = { 'trainer=autograd' } },
}

describe('every experiment resumes to the same bits', function()
  local out
  local started = sys.monotonic()
  before_each(function() out = h.tmpdir() end)
  after_each(function() h.rmrf(out) end)

  for _, e in ipairs(EXPERIMENTS) do
    local name = e[1]
    it(name .. ', stopped at three steps and resumed each time', function()
      for _, rel in ipairs(e.data or {}) do
        if not h.have_data(rel, name .. ' resume') then return end
      end
      local t0 = sys.monotonic()
      local script, log = 'experiments/' .. name .. '.lua', out .. '/child.log'
      local function args(extra, every)
        local a = { script, '--out', out, '--checkpoint-every', tostring(every) }
        for _, x in ipairs(extra) do a[#a + 1] = x end
        return a
      end
      local config = { '--smoke', '--threads', '1', '--seed', '5' }
      for _, kv in ipairs(e.set or {}) do config[#config + 1] = '--set'; config[#config + 1] = kv end

      -- the uninterrupted run, with the same checkpoints
      local every = e.every
      local how, code = run_child(log, nil, args({ '--name', 'whole', table.unpack(config) }, every))
      assert.are.equal('exit 0', how .. ' ' .. code, tail(log))
      local total, first = shape_of(out .. '/' .. name .. '/whole/results.h5')
      local ns = stops(total, first)
      assert.is_true(#ns == 3, ('%s: %d steps are too few to stop at three'):format(name, total))

      -- cut at each N in turn, every resume going on to the next N
      local dir = out .. '/' .. name .. '/cut'
      how, code = run_child(log, ns[1], args({ '--name', 'cut', table.unpack(config) }, every))
      assert.are.equal('signal 9', how .. ' ' .. code, name .. ' was to stop after step ' .. ns[1] .. '\n' .. tail(log))
      for k = 2, #ns + 1 do
        how, code = run_child(log, ns[k], args({ '--resume', dir }, every))
        local want = ns[k] and 'signal 9' or 'exit 0'
        assert.are.equal(want, how .. ' ' .. code, ('%s resumed after step %d\n%s'):format(name, ns[k - 1], tail(log)))
      end
      local n = assert_same(out .. '/' .. name .. '/whole/results.h5', dir .. '/results.h5', name)
      print(('\n  %s: %d steps, checkpoints every %d, stopped after steps %s: %d datasets the same (%.1f s)')
        :format(name, total, every, table.concat(ns, ', '), n, sys.monotonic() - t0))
    end)
  end

  it('(the time of all of them)', function()
    print(('\n  resume harness: %.1f s'):format(sys.monotonic() - started))
  end)
end)

describe('carried state', function()
  local out
  before_each(function() out = h.tmpdir() end)
  after_each(function() h.rmrf(out) end)

  -- Two epochs of 6 steps of a carrying LSTM with dropout, running sums, and
  -- a log at each epoch's end: the shape of the language models.
  local function spec(declare)
    return {
      name = 'carry', config = { epochs = 2, steps = 6 },
      run = function(run, cfg)
        local lstm = nn.LSTM(3, 4, { num_layers = 2, dropout = 0.3, carry = true })
        local head = nn.Linear(4, 1)
        local model = nn.Sequential { lstm, head }
        local opt = optim.SGD(model:parameters(), { lr = 0.1 })
        run:track { model = model, optim = opt }
        for _ in run:epochs(cfg.epochs) do
          lstm:reset()
          local sums = { loss = 0, n = 0, lstm = lstm }
          for _ in run:progress(cfg.steps, declare and { carry = sums } or nil) do
            local x = usagi.randn(5, 2, 3)
            local loss = usagi.mse_loss(head(lstm(x)), x:narrow(3, 1, 1))
            opt:minimize(loss)
            sums.loss, sums.n = sums.loss + loss:item(), sums.n + 1
          end
          run:log { loss = sums.loss / sums.n }
        end
      end,
    }
  end

  it('comes back bit for bit from every mid-epoch checkpoint, tensors and all', function()
    local s = spec(true)
    experiment.run_experiment(s, { out = out, name = 'whole', quiet = true, seed = 3, checkpoint_every = 1, keep = 100 })
    local cdir = out .. '/carry/whole/checkpoints'
    local ck = usagi.load(cdir .. '/step-000000004.h5')
    assert.are.equal(4, ck.position)
    assert.is_truthy(ck.carry.loop:find('resume_spec.lua:%d+$'), ck.carry.loop)
    assert.are.equal(tostring(usagi.zeros(2, 2, 4):size()), tostring(ck.carry.values.lstm.h:size()))
    assert.are.equal(4, ck.carry.values.n)
    for _, k in ipairs { 3, 6, 8, 11 } do           -- mid-epoch, end of epoch 1, mid-epoch 2
      local name = 'cut' .. k
      h.rmrf(out .. '/carry/' .. name)
      os.execute(('cp -r %s %s'):format(h.quote(out .. '/carry/whole'), h.quote(out .. '/carry/' .. name)))
      local dir = out .. '/carry/' .. name
      for _, f in ipairs(sys.listdir(dir .. '/checkpoints')) do
        local step = math.tointeger(tonumber(f:match('^step%-(%d+)%.h5$') or ''))
        if step and step > k then sys.remove(dir .. '/checkpoints/' .. f) end
      end
      experiment.run_experiment(s, { resume = dir, quiet = true, checkpoint_every = 1, keep = 100 })
      -- the loss, its steps and the 10 parameters of the LSTM and the head
      assert.are.equal(12, assert_same(out .. '/carry/whole/results.h5', dir .. '/results.h5', name))
    end
  end)

  it('will not resume a mid-loop checkpoint without its carry, nor into a loop that declares none', function()
    experiment.run_experiment(spec(true), { out = out, name = 'w', quiet = true, checkpoint_every = 4, keep = 100 })
    local dir = out .. '/carry/w'
    for _, f in ipairs { 'step-000000008.h5', 'step-000000012.h5' } do sys.remove(dir .. '/checkpoints/' .. f) end
    -- the loop of the resumed script declares nothing (checkpoint_every 0:
    -- a resume keeps the run's every 4 unless told otherwise)
    fails(function() experiment.run_experiment(spec(false), { resume = dir, quiet = true, checkpoint_every = 0 }) end,
      'run:progress: the checkpoint holds what the loop at ', 'declares no carry to put it back in')
    -- a checkpoint from the middle of a loop, its carry gone
    sys.remove(dir .. '/checkpoints/step-000000006.h5')
    local path = dir .. '/checkpoints/step-000000004.h5'
    local tree = usagi.load(path)
    tree.carry = nil
    usagi.save(path, tree)
    -- (without the manifest, whose checksum would refuse the changed file)
    sys.remove(dir .. '/checkpoints/manifest')
    fails(function() experiment.run_experiment(spec(true), { resume = dir, quiet = true, checkpoint_every = 4 }) end,
      'run:track: the checkpoint ', 'step-000000004.h5 was taken in the middle of a loop (step 4)',
      'cannot go on to the same bits')
  end)

  it('refuses checkpoint_every in a loop that declares none, and names the candidates', function()
    local ok, err = pcall(experiment.run_experiment, spec(false),
      { out = out, name = 'refused', quiet = true, checkpoint_every = 2 })
    assert.is_false(ok)
    err = tostring(err)
    for _, needle in ipairs { 'run:progress: the loop at ', 'resume_spec.lua:', 'declares no carried state',
                              'every 2 steps', '{carry = {}}', 'sums', 'lstm', 'opt' } do
      assert.is_truthy(err:find(needle, 1, true), ('"%s" lacks "%s"'):format(err, needle))
    end
    assert.is_falsy(err:find('traceback', 1, true), err)
    -- epoch ends only: allowed, nothing is carried across epochs
    experiment.run_experiment(spec(false), { out = out, name = 'epochs', quiet = true, checkpoint_epochs = 1 })
  end)

  it('refuses run:batches without carry, and a carried value no checkpoint can hold', function()
    local function batches_spec(carry)
      return { name = 'b', config = {}, run = function(run)
        local m = nn.Linear(2, 1)
        run:track { model = m, optim = optim.SGD(m:parameters(), { lr = 0.1 }) }
        for _ in run:batches({ usagi.randn(6, 2) }, 2, carry) do end
      end }
    end
    fails(function()
      experiment.run_experiment(batches_spec(nil), { out = out, name = 'b1', quiet = true, checkpoint_every = 1 })
    end, 'run:batches: the loop at ', 'resume_spec.lua:', 'run:batches(tensors, B, {carry = {...}})')
    fails(function()
      experiment.run_experiment(batches_spec({ carry = { f = print } }),
        { out = out, name = 'b2', quiet = true, checkpoint_every = 1 })
    end, 'run:batches: carry.f is a function')
    -- without checkpoints in the middle, nothing needs declaring
    experiment.run_experiment(batches_spec(nil), { quiet = true })
  end)

  it('refuses mid-loop checkpoints under mpirun when the ranks carry their own state', function()
    -- a stand-in for usagi.dist: rank 0 of 2, collectives that do nothing
    local dist = { size = function() return 2 end, rank = function() return 0 end,
                   local_size = function() return 1 end, broadcast = function() end,
                   broadcast_string = function(s) return s or '' end,
                   allreduce_number = function(x) return x end,
                   data_parallel = function() return { close = function() end } end }
    local opts = { out = out, quiet = true, checkpoint_every = 2, dist = dist, threads = 1 }
    opts.name = 'ranks1'
    fails(function() experiment.run_experiment(spec(true), opts) end,
      'run:progress: under mpirun (2 ranks) a checkpoint in the middle of the loop at ', 'resume_spec.lua:',
      "rank 0's carried state only", '(loss, lstm, n)', '--checkpoint-epochs')
    -- run:batches' own order is the same on every rank: no bar
    local function batches_spec(carry)
      return { name = 'b', config = {}, run = function(run)
        local m = nn.Linear(2, 1)
        run:track { model = m, optim = optim.SGD(m:parameters(), { lr = 0.1 }) }
        for _ in run:batches({ usagi.randn(6, 2) }, 2, { carry = carry }) do end
      end }
    end
    opts.name = 'ranks2'
    fails(function() experiment.run_experiment(batches_spec({ sum = 0 }), opts) end,
      'run:batches: under mpirun (2 ranks)', '(sum)')
    opts.name, opts.checkpoint_every = 'ranks3', nil
    experiment.run_experiment(spec(true), opts)   -- epoch ends only: allowed
  end)

  it('rejects a malformed fault hook', function()
    local p = io.popen(('USAGI_FAULT=exit-after-step:x %s run experiments/sine.lua --smoke --no-save 2>&1')
      :format(h.quote(exe)))
    local text = p:read('a')
    local ok = p:close()
    assert.is_falsy(ok)
    assert.is_truthy(text:find('USAGI_FAULT: expected exit-after-step:N (a hook for tests), got "exit-after-step:x"',
      1, true), text)
  end)
end)
