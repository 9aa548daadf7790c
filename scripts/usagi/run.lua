-- usagi.run -- one run of an experiment: its directory, results.h5, the
-- log, progress, checkpoints and resume.
--
--   runs/<experiment>/<run-id>/
--     results.h5      provenance attributes on '/', /config (attributes),
--                     /metrics/<k> and /steps/<k> (appended as logged),
--                     /params (the tracked model's final parameters)
--     run.log         what the run printed, and its progress, as plain text
--     checkpoints/    step-000001000.h5 ... (the last `keep`), best.h5
--
-- The run function sees a Run object:
--   run:track { model = m, optim = opt, state = {...} }  what a checkpoint
--       holds; on --resume it is loaded back here (so call it right before
--       the training loop, after everything that draws random numbers)
--   for epoch in run:epochs(n) do ... end      resumes at the saved epoch;
--       checkpoints after every `checkpoint_epochs` epochs
--   for i in run:progress(n [, opts]) do ... end
--       steps of an epoch with a progress bar; resumes after the saved
--       step, and checkpoints every `checkpoint_every` steps
--   run:batches(tensors, B [, opts]), run:train_epoch(opt, tensors, B, f)
--       an epoch of shuffled batches, as steps of run:progress
--   run:log { loss = l, ... }     metrics, appended and flushed at once
--   run:print(...)                a line for the terminal and run.log
--   run:checkpoint()              an extra checkpoint now
--   run:keep_data { vocab = v, ... }   what the experiment's model(cfg, data)
--       needs besides the config, kept in results.h5 for usagi.runs.load
--   run:model(data)               keep_data(data), then the spec's model(cfg, data)
-- Without a directory (tests, out = false) the same calls keep metrics in
-- memory only.
--
-- Resume to the same bits: a checkpoint holds everything that shapes the
-- rest of the run. The tracked objects and the generator are there; what a
-- loop carries from one step to the next (running sums, an LSTM's (h, c)
-- between windows, the order an epoch drew) the loop declares itself:
--   local sums = { nll = 0, seen = 0, lstm = model.lstm }
--   for i in run:progress(n, { carry = sums }) do ... sums.nll = ... end
-- A checkpoint in the middle of the loop keeps the table (numbers, strings,
-- booleans, tensors bit for bit, plain tables of those, and modules through
-- their carried()/set_carried()); --resume fills it back in, and sets the
-- generator back, when the loop starts again. run:batches carries its order
-- and takes the loop's carry in its opts; run:train_epoch carries its sum
-- itself. Under checkpoint_every a loop that declares no carry ({} says
-- "nothing") is refused before its first step, with its file:line and its
-- locals as the candidates. Under mpirun only rank 0 writes checkpoints,
-- so a loop whose ranks carry state of their own is refused mid-loop
-- checkpoints (the epoch's order, the same on every rank, is no bar).
-- Checkpoints at epoch ends (checkpoint_epochs) need no declaration: what
-- the code after the epochs uses must come from the tracked objects or
-- run:history, not from a variable carried across epochs.
--
-- USAGI_FAULT=exit-after-step:N, for tests only: the run SIGKILLs itself
-- right after global step N, before that step's checkpoint (fault_step).
--
-- Data parallel (`mpirun -np R usagi run ...`, usagi.dist with R > 1 ranks):
-- every rank runs the same script with the same seed; run:track broadcasts
-- the model's parameters from rank 0 and averages their gradients over the
-- ranks at the end of every backward (usagi.dist.data_parallel), so every
-- rank takes the same step; run:batches (and run:shard for data an
-- experiment cuts itself) gives each rank its share of every batch, the
-- config's batch size being the whole batch of all ranks; rank 0 alone
-- prints, writes results.h5 and checkpoints; on --resume every rank reads
-- the checkpoint rank 0 chose. run.rank (0-based) and run.world (R) say
-- where a rank is; run:allreduce(x [, op]) reduces a number over them.
-- After run:track, rank r > 0 draws from a stream of its own (dropout),
-- rank 0 from the run's; checkpoints keep every rank's generator state.

-- (Apart, so that help prints the paragraph above alone.) This file keeps
-- the Run class and its life cycle: open, log, finish. The rest is one
-- file an idea, each a part of the same class:
--   run_progress    run:epochs, run:progress and its bar, stops on a signal
--   run_carry       what a loop carries across steps, for mid-loop checkpoints
--   run_checkpoint  run:track, run:checkpoint, the manifest, --resume
--   run_train       run:batches, run:train_epoch
--   run_dist        ranks under mpirun: run:shard, run:allreduce
--   run_provenance  the git commit, command line and machine in results.h5

local usagi = require 'usagi'
local store = require 'usagi.store'
local util = require 'usagi.util'
local progress = require 'usagi.run_progress'
local ckpt = require 'usagi.run_checkpoint'
local dist = require 'usagi.run_dist'
local provenance = require 'usagi.run_provenance'
local ship = require 'usagi.run_ship'
local sys = usagi.sys
local sorted_keys, finite, iso = util.sorted_keys, util.finite, util.iso

local M = {}
-- Run: what an experiment's run function gets (the list above); usagi run
-- makes it, usagi.run.open(opts) too (tests, the REPL).
local Run = {}
Run.__index = Run
M.Run = Run

-- The methods the other files define, into the one class; a name defined
-- twice is a mistake of the library, caught when it loads.
for _, part in ipairs { progress, require 'usagi.run_carry', ckpt, require 'usagi.run_train', dist } do
  for name, f in pairs(part.methods) do
    assert(Run[name] == nil, name)
    Run[name] = f
  end
end

M.shard_range, M.read_results, M.launched_dist = dist.shard_range, ckpt.read_results, dist.launched_dist

-- ==== Output: terminal, log file ========================================

function Run:_write_log(line)
  if self.logfile then self.logfile:write(line, '\n'); self.logfile:flush() end
end

-- run:print(...): a line on the terminal and in run.log
function Run:print(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  local line = table.concat(parts, '\t')
  self:_write_log(line)
  if self.quiet then return end
  if self.tty then io.stderr:write('\r\27[K') end
  io.stdout:write(line, '\n')
  io.stdout:flush()
end

-- ==== Metrics ============================================================

-- run:log{key = value, ...}: numbers (or 0-dim tensors) appended to
-- /metrics/<key>, with the step in /steps/<key>, and flushed, so a crash
-- loses at most the entry being written. A NaN or infinite value stops the
-- run; the checkpoints written so far stay.
function Run:log(values)
  if type(values) ~= 'table' then error('run:log: expects a table of name = number, got ' .. type(values), 2) end
  local keys, bad = sorted_keys(values), nil
  for _, k in ipairs(keys) do
    local v = values[k]
    if usagi.is_tensor(v) then v = v:item() end
    if type(k) ~= 'string' or not k:match('^[%w_.%-]+$') then
      error(('run:log: metric names must be words (letters, digits, _ . -), got %q'):format(tostring(k)), 2)
    end
    if type(v) ~= 'number' then error(('run:log: %s must be a number, got %s'):format(k, type(v)), 2) end
    values[k] = v
    local hist = self.metrics[k]
    if not hist then hist = { values = {}, steps = {}, seconds = {} }; self.metrics[k] = hist end
    local t = self:seconds()
    hist.values[#hist.values + 1], hist.steps[#hist.steps + 1], hist.seconds[#hist.seconds + 1] = v, self.step, t
    if self.file then
      self.file:append('/metrics/' .. k, v)
      self.file:append('/steps/' .. k, self.step)
      self.file:append('/seconds/' .. k, t)
    end
    if not finite(v) and not bad then bad = k end
  end
  if self.file then self.file:flush() end
  self.last, self.last_keys = values, keys
  if bad then
    local where = self.last_good and ('the last good checkpoint is ' .. self.last_good)
      or self.last_checkpoint and ('no checkpoint holds finite values (the newest, %s, has NaN or Inf)')
        :format(self.last_checkpoint)
      or 'no checkpoint was written before it'
    self.diverged = ('%s is %s at step %d: the run diverged and stops; %s')
      :format(bad, values[bad] ~= values[bad] and 'NaN' or tostring(values[bad]), self.step, where)
    error(self.diverged, 2)
  end
end

-- run:seconds() -> the seconds the run has been going: since it started,
-- or on --resume since its start up to the checkpoint, plus this process's
-- time. run:log keeps it with each value, in /seconds/<key>.
function Run:seconds()
  return (self.seconds_before or 0) + (sys.monotonic() - self.opened)
end

-- history(name) -> values, steps (Lua arrays) of a metric so far.
function Run:history(name)
  local h = self.metrics[name]
  if not h then return {}, {} end
  return h.values, h.steps
end


-- ==== What inference needs ==============================================

-- run:keep_data(data) -> data: what the experiment's model(cfg, data) needs to
-- build the model again besides the config (sizes, a data.Vocab, ids of
-- special tokens; numbers, strings, booleans, tensors, Vocabs and plain
-- tables of those), written to /infer of results.h5 at once, so that
-- usagi.runs.load and `usagi infer` rebuild the trained model from the run.
function Run:keep_data(data)
  if type(data) ~= 'table' then error('run:keep_data: expects a table of what the model is built from, got ' .. type(data), 2) end
  local runs = require 'usagi.runs'
  runs.check_kept('run:keep_data', data)
  self.kept = data
  if self.file then
    runs.write_kept(self.file, data)
    self.file:flush()
  end
  return data
end

-- run:model(data) -> the experiment's model(cfg, data) (the spec's field),
-- data kept as run:keep_data does: the way to build the model that usagi.runs
-- load builds again.
function Run:model(data)
  local build = self.spec and self.spec.model
  if type(build) ~= 'function' then
    error(('run:model: the experiment %s declares no model = function(cfg, data)'):format(self.name), 2)
  end
  self:keep_data(data or {})
  return build(self.config, self.kept)
end


-- ==== results.h5 ======================================================

-- results.h5 made afresh: provenance, config and the metrics so far (from a
-- checkpoint when resuming). A new run writes it in place and keeps it
-- open; a resumed one builds it aside and renames it over the old one, so a
-- kill in between leaves the old file whole.
local function write_results(self, attrs, resumed)
  local path = self.dir .. '/results.h5'
  local target = resumed and path .. '.tmp' or path
  local f = usagi.h5.open(target, 'w')
  local ok, err = pcall(function()
    for _, k in ipairs(sorted_keys(attrs)) do f:attr('/', k, attrs[k]) end
    f:attr('/', 'status', 'running')
    store.write_tree(f, '/config', self.config, 'run')
    f:group('/metrics'); f:group('/steps'); f:group('/seconds')
    local metrics = resumed and resumed.metrics or {}
    for _, k in ipairs(sorted_keys(metrics)) do
      local values, steps, seconds = metrics[k].values, metrics[k].steps, metrics[k].seconds
      for j = 1, values:numel() do
        f:append('/metrics/' .. k, values[j])
        f:append('/steps/' .. k, steps[j])
        -- a checkpoint of an older usagi has no seconds: 0 keeps the rows
        -- aligned (not NaN, which would make the next checkpoint 'nonfinite')
        f:append('/seconds/' .. k, seconds and seconds:numel() == values:numel() and seconds[j] or 0)
      end
    end
    f:flush()
  end)
  if not ok or resumed then f:close() end
  if not ok then error(err, 0) end
  if resumed then
    sys.replace(target, path)
    f = usagi.h5.open(path, 'a')
  end
  self.file = f
end

-- ==== Opening and finishing ============================================

local function unique_id()
  return os.date('!%Y%m%d-%H%M%S', math.floor(sys.time()))
end

-- make_run_dir(base, name) -> id: base/id made by one exclusive mkdir, so
-- of two runs racing for a name exactly one gets it, and a fresh run never
-- writes into another run's directory. Without a name, the id is the time,
-- with -2, -3, ... after it when that is taken.
local function make_run_dir(base, name)
  local function cannot(err)
    error(('usagi run: cannot make the run directory in %s (%s); choose another --out')
      :format(base, tostring(err):match('[^:]*$'):gsub('^%s+', '')), 0)
  end
  local ok, err = pcall(sys.mkdir, base)
  if not ok then cannot(err) end
  local stem = name or unique_id()
  for k = 1, 1000 do
    local id = k == 1 and stem or ('%s-%d'):format(stem, k)
    ok, err = pcall(sys.mkdir, base .. '/' .. id, true)
    if not ok then cannot(err) end
    if err then return id end
    if name then
      error(('usagi run: run %s already exists (%s/%s); choose another --name, or --resume it')
        :format(name, base, name), 0)
    end
  end
  error(('usagi run: %s holds a thousand runs named %s-*; choose a --name'):format(base, stem), 0)
end

-- Ranks other than 0 keep no directory and need not see rank 0's files
-- (usagi.run_ship): on --resume rank 0 sends them the checkpoint it chose
-- (or the results.h5 of a run that had none yet) as bytes.
local function open_follower(self, opts)
  local kind = self.dist.broadcast_string(nil, 0)
  local bytes = kind ~= '' and self.dist.broadcast_bytes(nil, 0)
  if opts.resume and opts.out ~= false then
    local tree, why
    if bytes then
      tree, why = ship.receive(kind, bytes, function(path, dir)
        if kind == 'checkpoint' then return store.load(path) end
        return ckpt.started_run(dir)
      end)
    end
    if not tree then
      error(('usagi run: --resume %s: rank %d cannot read what rank 0 sent (%s)')
        :format(opts.resume, self.rank, tostring(why or 'nothing came')), 0)
    end
    ckpt.restore(self, tree, opts)
  end
  ship.same_config(self)
  return self
end

-- M.open(spec, cfg, opts) -> run. opts: seed, out (false: no directory),
-- name, resume (a run directory), checkpoint_every (steps),
-- checkpoint_epochs, keep, best (a metric)
-- and best_mode ('min' or 'max'), quiet, script, argv, smoke; dist (the
-- usagi.dist module, or false for one rank; default: usagi.dist if built),
-- dist_check (verify after every step that the ranks' parameters agree),
-- threads (given: the ranks do not share the cores out among themselves),
-- bucket_mb (the gradient buckets, MiB).
function M.open(spec, cfg, opts)
  local ck = spec.checkpoint or {}
  local self = setmetatable({
    name = spec.name, spec = spec, seed = opts.seed or 0, config = cfg, metrics = {}, last = {},
    step = 0, epoch = 1, position = 0, quiet = opts.quiet, tty = not opts.quiet and progress.interactive(),
    progress_seconds = progress.progress_interval(), opened = sys.monotonic(),
    started = sys.time(), every = opts.checkpoint_every or ck.every, keep = opts.keep or ck.keep or 3,
    best_metric = opts.best or ck.best, best_mode = opts.best_mode or ck.mode or 'min',
  }, Run)
  if self.every == 0 then self.every = nil end
  self.every_epochs = opts.checkpoint_epochs or ck.every_epochs
  if self.every_epochs == 0 then self.every_epochs = nil end
  self.saving = opts.out ~= false
  dist.ranks_of(self, opts)
  if self.rank ~= 0 then return open_follower(self, opts) end
  if opts.out == false then
    if self.world > 1 then self.dist.broadcast_string('', 0); ship.same_config(self) end
    return self
  end

  local resumed, kind, bytes
  if opts.resume then
    resumed = ckpt.resume(self, spec, opts)
    if self.world > 1 then kind, bytes = ship.shipment(self) end
  else
    local base = ('%s/%s'):format(opts.out or 'runs', spec.name)
    self.id = make_run_dir(base, opts.name)
    self.dir = base .. '/' .. self.id
  end
  local ok, err = pcall(sys.mkdir, self.dir .. '/checkpoints')
  if not ok then
    error(('usagi run: cannot make the run directory %s (%s); choose another --out')
      :format(self.dir, tostring(err):match("[^:]*$"):gsub('^%s+', '')), 0)
  end
  -- one process per run: a second `--resume` of a live run is refused
  local lock = sys.lock(self.dir)
  if not lock then
    error(('usagi run: %s is in use by another process (the run is still going?); '
      .. 'stop it or let it end before resuming it'):format(self.dir), 0)
  end
  self.lock = lock
  ckpt.remove_leftovers(self.dir .. '/checkpoints')
  local log, lerr = io.open(self.dir .. '/run.log', 'a')
  if not log then error(('usagi run: cannot write the run log: %s'):format(lerr), 0) end
  self.logfile = log
  local attrs = provenance.provenance(self, opts)
  local command = attrs.command_line
  if resumed then
    -- the run's own start and command stay; the latest resume is added
    local ok, before = ckpt.read_results(self.dir, function(f) return f:attrs('/') end)
    if ok then
      attrs.started = before.started or attrs.started
      attrs.command_line = before.command_line or attrs.command_line
      attrs.resumes = (math.tointeger(before.resumes) or 0) + 1
    end
    attrs.resumed_command_line = command
    attrs.resumed_from = self.last_checkpoint
    attrs.resumed_at = iso(sys.time())
  end
  write_results(self, attrs, resumed)
  if self.world > 1 then
    self.dist.broadcast_string(kind or '', 0)
    if kind then self.dist.broadcast_bytes(bytes, 0) end
    ship.same_config(self)
  end
  self:_write_log(('# %s %s: %s'):format(resumed and 'resumed' or 'started', iso(sys.time()), command))
  return self
end

-- copy_file(src, dst): the bytes of src into a new file dst; raises with
-- the system's reason (a full disk shows at the close, if not before).
local function copy_file(src, dst)
  local from <close> = assert(io.open(src, 'rb'))
  local to = assert(io.open(dst, 'wb'))
  local ok, err = true, nil
  while ok do
    local bytes = from:read(1 << 20)
    if not bytes then break end
    ok, err = to:write(bytes)
  end
  local closed, cerr = to:close()
  if not ok or not closed then error(('%s: %s'):format(dst, err or cerr), 0) end
end

-- The final results.h5, made the way checkpoints are: the live file's
-- metrics copied aside, the final parameters and attributes added there,
-- flushed and synced, then renamed over results.h5. A failure at any point
-- (a full disk) leaves the live file as it was after the last step.
local function write_final(self, live_path, attrs)
  local tmp = ('%s.tmp-%d'):format(live_path, sys.getpid())
  local ok, err = pcall(function()
    copy_file(live_path, tmp)
    local f <close> = usagi.h5.open(tmp, 'a')
    if attrs.status == 'ok' and self.tracked and self.tracked.model then
      store.write_tree(f, '/params', self.tracked.model:state_dict(), 'run')
    end
    for _, k in ipairs(sorted_keys(attrs)) do f:attr('/', k, attrs[k]) end
    f:flush(true)
    f:close()
    sys.replace(tmp, live_path)
  end)
  if not ok then pcall(sys.remove, tmp) end
  return ok, err
end

-- finish(status): the end time, exit status and final parameters, written
-- whole or not at all. When they cannot be written, the status becomes
-- 'failed' (as far as the disk still takes it) and finish raises, naming
-- the file and the system's reason.
function Run:finish(status)
  if self.reducer then self.reducer:close(); self.reducer = nil end
  if not self.file then return end
  local path = self.dir .. '/results.h5'
  local attrs = { status = status, finished = iso(sys.time()), steps = self.step }
  if self.git_pending then
    attrs.git_dirty = provenance.dirty_of(self.git_pending)
    self.git_pending = nil
  end
  local live = self.file
  self.file = nil
  local ok, err = pcall(live.close, live)
  if ok then ok, err = write_final(self, path, attrs) end
  if not ok then
    err = tostring(err):gsub('^[^:\n]*%.lua:%d+: ', '')
    self.failed = ('run: cannot write the final results %s (%s); the checkpoints stay, and '
      .. 'results.h5 holds the metrics up to the last step'):format(path, err)
    pcall(function()
      local f <close> = usagi.h5.open(path, 'a')
      f:attr('/', 'status', 'failed')
      f:attr('/', 'error', self.failed)
    end)
    status = 'failed'
  end
  self:_write_log(('# finished %s: %s'):format(iso(sys.time()), status))
  if self.logfile then self.logfile:close(); self.logfile = nil end
  if self.lock then self.lock:unlock(); self.lock = nil end
  if self.failed then error(self.failed, 0) end
end

return M
