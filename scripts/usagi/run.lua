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
local usagi = require 'usagi'
local store = require 'usagi.store'
local sys = usagi.sys

local M = {}
-- Run: what an experiment's run function gets (the list above); usagi run
-- makes it, usagi.run.open(opts) too (tests, the REPL).
local Run = {}
-- The generator streams of ranks 1..R-1 of a data-parallel run: "mpi" in
-- the high 32 bits, plus the rank (rank 0 keeps the run's stream).
local RANK_STREAM = 0x6d7069 << 32
Run.__index = Run
M.Run = Run

local function fmt_time(s)
  if s ~= s or s == math.huge then return '--:--' end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ('%d:%02d:%02d'):format(s // 3600, s % 3600 // 60, s % 60) end
  return ('%02d:%02d'):format(s // 60, s % 60)
end

local function iso(t) return os.date('!%Y-%m-%dT%H:%M:%SZ', math.floor(t)) end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- all_finite(x) -> false when a number or a float tensor anywhere inside x
-- (tables nested) is NaN or infinite. A tensor's sum is taken in double and
-- is not finite when an element is not.
local function all_finite(x, seen)
  if type(x) == 'number' then return finite(x) end
  if usagi.is_tensor(x) then
    return x:dtype() == 'i32' or x:numel() == 0 or finite(x:sum():item())
  end
  if type(x) ~= 'table' then return true end
  seen = seen or {}
  if seen[x] then return true end
  seen[x] = true
  for _, v in pairs(x) do
    if not all_finite(v, seen) then return false end
  end
  return true
end

-- ==== Output: terminal, log file ========================================

-- A bar redrawn in place on a terminal; plain lines otherwise, one every
-- few seconds (progress_interval) and one at the end of each loop.
local function interactive()
  return sys.isatty(2) and os.getenv('TERM') ~= 'dumb' and not os.getenv('CI')
end

-- Seconds between two plain progress lines: 5, or USAGI_PROGRESS_SECONDS.
local function progress_interval()
  local v = tonumber(os.getenv('USAGI_PROGRESS_SECONDS') or '')
  return v and v >= 0 and v or 5
end

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

-- ==== Progress ===========================================================

-- for epoch in run:epochs(n): from the epoch a resumed run stopped in.
-- With checkpoint_epochs = k, a checkpoint follows every k-th epoch and the
-- last one, taken when the loop comes back for the next epoch: after
-- whatever the body did past its steps (a validation pass and its log), so
-- a resume starts the next epoch and does none of that twice.
function Run:epochs(n)
  if math.type(n) ~= 'integer' or n < 0 then
    error('run:epochs: n must be a non-negative integer, got ' .. tostring(n), 2)
  end
  local first = true
  self.epochs_total = n
  return function()
    if first then first = false
    else
      self.epoch, self.position, self.loop = self.epoch + 1, 0, nil
      local done, k = self.epoch - 1, self.every_epochs
      local wrote = k and (done % k == 0 or done == n)
      if wrote then self:checkpoint() end
      self:_stop_if_signalled(wrote)
    end
    if self.epoch > n then return nil end
    return self.epoch
  end
end

-- ==== Carried state =====================================================
--
-- What a loop carries from one step to the next besides the tracked model,
-- optimizer and generator (running sums, a recurrent state, the order an
-- epoch drew at its start) shapes the rest of the run, so a checkpoint in
-- the middle of the loop must hold it. The loop declares it as a table,
-- run:progress(n, {carry = t}); a checkpoint keeps t, and on --resume
-- run:progress puts it back into the same table before the first step.

-- The frame `level` levels above the caller: "file:line" and the names of
-- its locals in scope there, the candidates for what a loop carries.
local function loop_site(level)
  level = level + 2                        -- this function, then its caller
  local info = debug.getinfo(level, 'Sl')
  if not info then return '?', {} end
  local names, seen = {}, {}
  for i = 1, 250 do
    local name = debug.getlocal(level, i)
    if not name then break end
    if not name:find('^%(') and not seen[name] then seen[name] = true; names[#names + 1] = name end
  end
  return ('%s:%d'):format(info.short_src, info.currentline), names
end

-- An object whose state a checkpoint takes through carried()/set_carried()
-- (nn.LSTM, nn.GRU, nn.RNN with carry = true).
local function carrier(v)
  return type(v) == 'table' and type(v.carried) == 'function' and type(v.set_carried) == 'function'
end

-- Every value of a carry table must be one a checkpoint can hold.
local function check_carry(fn, t, path, seen)
  seen = seen or {}
  if seen[t] then error(('%s: carry%s refers to itself; it must be a tree'):format(fn, path), 0) end
  seen[t] = true
  for k, v in pairs(t) do
    local here = ('%s.%s'):format(path, tostring(k))
    local kind = type(v)
    if carrier(v) then                     -- its own state, through carried()
    elseif kind == 'table' and getmetatable(v) == nil then check_carry(fn, v, here, seen)
    elseif not (usagi.is_tensor(v) or kind == 'number' or kind == 'string' or kind == 'boolean') then
      error(('%s: carry%s is a %s; a carried value must be a number, string, boolean, tensor, a plain '
        .. 'table of those, or a module with carried() and set_carried() (nn.LSTM, nn.GRU, nn.RNN)')
        :format(fn, here, usagi.is_tensor(v) and 'tensor' or (kind == 'table' and 'table with a metatable' or kind)), 0)
    end
  end
  seen[t] = nil
end

-- The tree a checkpoint keeps of a carry table.
local function carry_tree(t)
  local out = {}
  for k, v in pairs(t) do
    if carrier(v) then out[k] = v:carried()
    elseif type(v) == 'table' then out[k] = carry_tree(v)
    else out[k] = v end
  end
  return out
end

-- The saved tree back into the live table t, in place: the loop's code
-- holds t itself, so the table stays and its contents change.
local function load_carry(t, saved)
  for k, v in pairs(t) do
    local s = saved[k]
    if carrier(v) then v:set_carried(s)
    elseif type(v) == 'table' and not usagi.is_tensor(v) and type(s) == 'table' then load_carry(v, s)
    else t[k] = s end
  end
  for k, s in pairs(saved) do
    if t[k] == nil then t[k] = s end
  end
end

-- USAGI_FAULT=exit-after-step:N, a hook for tests only: the process kills
-- itself (SIGKILL: no checkpoint, no finish, no buffer flushed by HDF5)
-- right after global step N is done, as a crash or a kill would stop it.
local function fault_step()
  local f = os.getenv('USAGI_FAULT')
  if not f or f == '' then return nil end
  local n = math.tointeger(tonumber(f:match('^exit%-after%-step:(%d+)$') or ''))
  if not n then
    error(('USAGI_FAULT: expected exit-after-step:N (a hook for tests), got %q'):format(f), 0)
  end
  return n
end

-- for i in run:progress(n [, label | {label =, per_step =, unit =, carry =}]):
-- i = 1..n, after the steps a resumed run already did. Each step done
-- counts in run.step; a checkpoint is taken every checkpoint_every steps.
-- carry is the table of what the loop carries across its steps (see
-- "Carried state"; {} when nothing): a mid-loop checkpoint holds it, and on
-- --resume it is filled back in, and the generator set back, before the
-- first step. With checkpoint_every, a loop that declares no carry is
-- refused: its checkpoints could not resume to the same bits. (opts.where
-- and opts.ranks_checked are run:batches' own: its caller's loop, and the
-- check of what the ranks carry, done on the caller's table.)
function Run:progress(n, opts)
  if math.type(n) ~= 'integer' or n < 0 then
    error('run:progress: n must be a non-negative integer, got ' .. tostring(n), 2)
  end
  opts = type(opts) == 'string' and { label = opts } or opts or {}
  local carry, where = opts.carry, opts.where
  if carry ~= nil and type(carry) ~= 'table' then
    error('run:progress: carry must be a table of what the loop carries across its steps, got ' .. type(carry), 2)
  end
  local names
  if not where then where, names = loop_site(1) end
  if carry then check_carry('run:progress', carry, '')
  elseif self.every and self.saving then
    self.stopped = self:_undeclared('run:progress', where, names, 'run:progress(n, {carry = {...}})')
    error(self.stopped, 0)
  end
  if carry and not opts.ranks_checked then self:_carry_on_ranks('run:progress', carry, where) end
  local saved = self.resume_carry
  if saved then
    self.resume_carry = nil
    if not carry then
      self.stopped = ('run:progress: the checkpoint holds what the loop at %s carried, but the loop at %s '
        .. 'declares no carry to put it back in'):format(tostring(saved.loop), where)
      error(self.stopped, 0)
    end
    load_carry(carry, saved.values or {})
    usagi.set_rng_state(self.resume_rng)  -- as it was at the checkpoint, whatever drew since
  end
  self.loop = carry and { carry = carry, where = where } or nil
  local fault = fault_step()
  local label, per_step, unit = opts.label or self.name, opts.per_step or 1, opts.unit or 'it'
  local i, started = self.position, false
  local first, t0, last_draw = i, sys.monotonic(), -1
  local interval, last_line = self.progress_seconds or 5, t0
  local function draw(final)
    local t = sys.monotonic() - t0
    -- the rate of the steps done: none before the first step ends (step i
    -- is drawn as it starts), so the first reading is '?', not 1/0
    local done = final and i or i - 1
    local rate = done > first and t > 0 and (done - first) / t or nil
    local width = 24
    local filled = n > 0 and math.floor(width * i / n) or width
    local metrics = {}
    for _, k in ipairs(self.last_keys or {}) do
      metrics[#metrics + 1] = ('%s %.4g'):format(k, self.last[k])
    end
    local line = ('%s [%s%s] %d/%d %s %s/s %s<%s %s'):format(label, ('#'):rep(filled),
      ('.'):rep(width - filled), i, n, rate and ('%.0f'):format(rate * per_step) or '?', unit, fmt_time(t),
      rate and fmt_time((n - done) / rate) or '--:--', table.concat(metrics, ' '))
    if self.quiet then return end
    if self.tty then io.stderr:write('\r\27[K', line, final and '\n' or '')
    else io.stderr:write(line, '\n'); self:_write_log(line) end
    io.stderr:flush()
  end
  return function()
    if started then                        -- step i (global step run.step) is complete
      self.position = i
      if self.step == fault then sys.kill(sys.getpid(), 'KILL') end
      if self.every and self.step % self.every == 0 then self:checkpoint() end
      self:_stop_if_signalled(self.every and self.step % self.every == 0)
    end
    started = true
    if i >= n then
      -- the loop's last step is kept too, even off the checkpoint grid
      if n > first and self.every and self.step % self.every ~= 0 then self:checkpoint() end
      if n > first then
        draw(true)
      end
      -- self.loop stays until the next epoch: a checkpoint taken after the
      -- loop, before the epoch ends, keeps what the code after it reads
      return nil
    end
    i, self.step = i + 1, self.step + 1
    local t = sys.monotonic()
    if self.tty then
      if t - last_draw > 0.1 then draw(false); last_draw = t end
    elseif t - last_line >= interval and i < n then
      draw(false)
      last_line = t
    end
    return i
  end
end

-- ==== Stopping on a signal ==============================================

-- Under `usagi run`, SIGINT, SIGTERM and SIGHUP are trapped (usagi.sys.trap)
-- and end the run here, at the end of a step or an epoch: a checkpoint of
-- this point (unless one was just written), then the error that makes the
-- run's status 'interrupted'. With R ranks the ranks agree on it first, so
-- all stop at the same step. A second signal stops at once (sys.trap).
function Run:_stop_if_signalled(just_wrote)
  sys.trap(false)       -- steps end from now on: a first signal waits for one
  self.step_ended = true
  local sig = sys.signalled()
  if self.world > 1 then
    local any = self.dist.allreduce_number(sig and 1 or 0, 'max')
    if any > 0 then sig = sig or 'a signal to another rank' end
  end
  if not sig then return end
  -- a checkpoint here resumes to the same bits at an epoch's end, or in a
  -- loop that declared what it carries (and, under mpirun, carries nothing
  -- of its own on each rank); elsewhere the last one stays the way back
  local loop = self.loop
  local can = self.position == 0 or (loop and (self.world == 1 or next(loop.carry) == nil))
  if not just_wrote and self.tracked and can then self:checkpoint() end
  self.signal = sig
  local where = self.dir and self.last_checkpoint
    and ('; resume with usagi run --resume %s (from %s)'):format(self.dir, self.last_checkpoint:match('[^/]+$'))
    or ''
  self.interrupted = ('stopped by SIG%s after step %d%s'):format(sig, self.step, where)
  error(self.interrupted, 0)
end

-- Under mpirun only rank 0 writes checkpoints, so a loop whose ranks carry
-- values of their own cannot checkpoint in its middle: refused, with them.
function Run:_carry_on_ranks(fn, carry, where)
  if not (self.world > 1 and self.every and self.saving) then return end
  local own = {}
  for k in pairs(carry) do own[#own + 1] = tostring(k) end
  if #own == 0 then return end
  table.sort(own)
  self.stopped = ('%s: under mpirun (%d ranks) a checkpoint in the middle of the loop at %s would keep '
    .. 'rank 0\'s carried state only, and every rank carries its own (%s); checkpoint at epoch ends '
    .. 'instead (--checkpoint-epochs)'):format(fn, self.world, where, table.concat(own, ', '))
  error(self.stopped, 0)
end

-- The refusal of a loop that declares no carry under checkpoint_every.
function Run:_undeclared(fn, where, names, how)
  return ('%s: the loop at %s declares no carried state, so a checkpoint every %d steps in the middle of '
    .. 'it could not resume to the same bits. Declare what it carries from one step to the next (running '
    .. 'sums, a recurrent state, an order drawn at the start of the epoch) with %s, or {carry = {}} if '
    .. 'nothing; or checkpoint at epoch ends only (--checkpoint-epochs). Candidates, the locals in scope '
    .. 'there: %s'):format(fn, where, self.every, how, table.concat(names or {}, ', '))
end

-- ==== Data parallel ======================================================

-- shard_range(m, rank, world) -> first, count: rank's part of m rows, cut
-- as evenly as can be (the first m % world ranks get one more).
local function shard_range(m, rank, world)
  local base, extra = m // world, m % world
  return rank * base + math.min(rank, extra) + 1, base + (rank < extra and 1 or 0)
end
M.shard_range = shard_range

-- run:shard(t [, dim = 1]) -> this rank's contiguous part of dim of t, a
-- view (t itself on one rank). For data an experiment batches itself: the
-- PTB model cuts its (N, B) columns with run:shard(batched, 2), so rank r
-- reads columns r B/R + 1 .. (r + 1) B/R of every window.
function Run:shard(t, dim)
  dim = dim or 1
  if self.world == 1 then return t end
  local first, count = shard_range(t:size(dim), self.rank, self.world)
  if count == 0 then
    error(('run:shard: %d rows in dim %d cannot be shared by %d ranks'):format(t:size(dim), dim, self.world), 2)
  end
  return t:narrow(dim, first, count)
end

-- run:allreduce(x [, 'sum'|'mean'|'max'|'min']) -> x reduced over the
-- ranks (x itself on one rank): a metric from every rank's share.
function Run:allreduce(x, op)
  if self.world == 1 then return x end
  return self.dist.allreduce_number(x, op or 'sum')
end

-- run:batches(tensors, B [, opts]) -> an iterator over one epoch, in a fresh
-- order from the run's generator, for training loops:
--   for xb, yb in run:batches({ x, y }, 128, { carry = sums }) do ... end
-- gives rows lo..lo+B-1 of each tensor (the last batch may be smaller),
-- with run:progress's bar (opts.label; inside run:epochs it defaults to
-- 'epoch e/n'; the unit 'samples') and its
-- bookkeeping (steps, checkpoints, resume). opts.carry is what the loop
-- carries across its batches, as for run:progress; the epoch's order is
-- carried with it, so a run resumed in the middle of the epoch reads the
-- batches it had not read yet. The epoch's shuffled copies are
-- freed when the loop ends, not when the collector comes. With R ranks
-- every rank draws the same order (one seed) and takes its share of each
-- batch of B (run:shard's cut): the batch-mean gradients averaged over the
-- ranks are the gradient of the whole batch when R divides B (otherwise
-- the shares weigh a little differently). opts.dim is the dim that holds
-- the samples, 1 by default: dim = 2 cuts time-major sequences (T, B, F)
-- into (T, b, F) batches; a list gives one dim per tensor ({2, 1}).
function Run:batches(tensors, B, opts)
  if type(tensors) ~= 'table' or #tensors == 0 then
    error('run:batches: tensors must be a list of tensors with the samples in dim 1 (or opts.dim)', 2)
  end
  if math.type(B) ~= 'integer' or B < 1 then
    error('run:batches: B must be a positive integer, got ' .. tostring(B), 2)
  end
  opts = opts or {}
  local dims = {}
  for k, t in ipairs(tensors) do
    if not usagi.is_tensor(t) then
      error(('run:batches: tensors[%d] must be a tensor, got %s'):format(k, type(t)), 2)
    end
    local d = opts.dim
    if type(d) == 'table' then d = d[k] end
    d = d or 1
    if math.type(d) ~= 'integer' or d == 0 or math.abs(d) > t:dim() then
      error(('run:batches: dim for tensor %d must be an integer in 1..%d (or negative from the end), got %s')
        :format(k, t:dim(), tostring(d)), 2)
    end
    dims[k] = d < 0 and t:dim() + 1 + d or d
  end
  local N = tensors[1]:size(dims[1])
  if opts.carry ~= nil and type(opts.carry) ~= 'table' then
    error('run:batches: carry must be a table of what the loop carries across its batches, got '
      .. type(opts.carry), 2)
  end
  local where, names = opts.where, nil
  if not where then where, names = loop_site(1) end
  if opts.carry then
    check_carry('run:batches', opts.carry, '')
    self:_carry_on_ranks('run:batches', opts.carry, where)
  elseif self.every and self.saving then
    self.stopped = self:_undeclared('run:batches', where, names, 'run:batches(tensors, B, {carry = {...}})')
    error(self.stopped, 0)
  end
  if self.world > 1 and not self.reducer then
    error('run:batches: under mpirun, call run:track{model = ..., optim = ...} before the training '
      .. 'loop, so that the gradients are averaged over the ranks', 2)
  end
  for k, t in ipairs(tensors) do
    if t:size(dims[k]) ~= N then
      error(('run:batches: tensor %d has %d samples, the first %d%s'):format(k, t:size(dims[k]), N,
        (dims[1] ~= 1 or dims[k] ~= 1) and (' (dims %d and %d)'):format(dims[k], dims[1]) or ''), 2)
    end
  end
  -- the order: rank 0's draw, sent to the others (their generators differ)
  local perm
  if self.world == 1 or self.rank == 0 then perm = usagi.randperm(N):int() else perm = usagi.zeros(N, 'i32') end
  if self.world > 1 then self.dist.broadcast(perm, 0) end
  -- a resumed epoch takes back the order it drew (run:progress fills it in)
  local carried = { order = perm, loop = opts.carry or {} }
  local label = opts.label or self.epochs_total and ('epoch %d/%d'):format(self.epoch, self.epochs_total)
  local steps = self:progress(math.ceil(N / B), { label = label, unit = 'samples', per_step = B,
                                                  carry = carried, where = where, ranks_checked = true })
  perm = carried.order
  if not usagi.is_tensor(perm) or perm:numel() ~= N then
    self.stopped = ('run:batches: the checkpoint\'s order of the epoch has %s samples, the data %d'):format(
      usagi.is_tensor(perm) and tostring(perm:numel()) or 'no', N)
    error(self.stopped, 0)
  end
  local shuffled = {}
  for k, t in ipairs(tensors) do shuffled[k] = t:index_select(dims[k], perm) end
  return function()
    local i = steps()
    if not i then
      for _, t in ipairs(shuffled) do getmetatable(t).__close(t) end
      return nil
    end
    local lo = (i - 1) * B + 1
    local m = math.min(B, N - lo + 1)
    if self.world > 1 then
      local first, count = shard_range(m, self.rank, self.world)
      if count == 0 then               -- more ranks than rows: share one
        first, count = 1 + self.rank % m, 1
      end
      lo, m = lo + first - 1, count
    end
    local out = {}
    for k, t in ipairs(shuffled) do out[k] = t:narrow(dims[k], lo, m) end
    return table.unpack(out)
  end
end

-- run:train_epoch(opt, tensors, B, loss_of [, {clip = max_norm, dim}]) -> the mean
-- of the batches' losses, seconds: one epoch of run:batches, each batch a
-- step opt:minimize(loss_of(its tensors...), {clip}), the loop every
-- supervised experiment writes. Its running sum is its carried state, so
-- it checkpoints and resumes anywhere in the epoch; loss_of must carry
-- nothing from one batch to the next.
function Run:train_epoch(opt, tensors, B, loss_of, opts)
  local sums, t0 = { total = 0, batches = 0 }, sys.monotonic()
  local next_batch = self:batches(tensors, B, { carry = sums, where = (loop_site(1)),
                                                 dim = opts and opts.dim })
  while true do
    local batch = table.pack(next_batch())
    if batch[1] == nil then break end
    sums.total = sums.total + opt:minimize(loss_of(table.unpack(batch, 1, batch.n)), opts)
    sums.batches = sums.batches + 1
  end
  return sums.total / math.max(sums.batches, 1), sys.monotonic() - t0
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

-- ==== Checkpoints ========================================================

-- run:track{model =, optim =, scheduler =, state = table}: the objects a
-- checkpoint holds. Returns state, loaded from the checkpoint when resuming.
function Run:track(objects)
  if type(objects) ~= 'table' then error('run:track: expects a table {model =, optim =, state =}', 2) end
  for k, v in pairs(objects) do
    if type(k) ~= 'string' or type(v) ~= 'table' then
      error(('run:track: %s must be a module, optimizer or table'):format(tostring(k)), 2)
    end
  end
  self.tracked = objects
  local ck = self.resume_from
  if ck then
    for _, k in ipairs(sorted_keys(objects)) do
      local obj, saved = objects[k], ck.objects[k]
      if saved == nil then
        error(('run:track: the checkpoint has no %q; it was made by a different experiment'):format(k), 2)
      end
      if type(obj.load_state_dict) == 'function' then obj:load_state_dict(saved)
      else
        for key in pairs(obj) do obj[key] = nil end
        for key, v in pairs(saved) do obj[key] = v end
      end
    end
    usagi.set_rng_state(ck.rng)
    if ck.rng_ranks and ck.ranks == self.world then self.resume_rngs = ck.rng_ranks end
    self.resume_from = nil
    -- taken in the middle of a loop: run:progress puts back what it carried
    if ck.carry then self.resume_carry = ck.carry
    elseif (ck.position or 0) > 0 then
      self.stopped = ('run:track: the checkpoint %s was taken in the middle of a loop (step %d) but holds '
        .. 'nothing the loop carried (the loop declared no carry, or a usagi before loops declared it made '
        .. 'the checkpoint), so the run cannot go on to the same bits; resume from a checkpoint taken at an '
        .. 'epoch end, or start the run afresh'):format(tostring(self.last_checkpoint), ck.step)
      error(self.stopped, 0)
    end
  end                                      -- (killed before its first checkpoint: resume starts over)
  if self.world > 1 and not self.reducer then
    local params = {}
    if objects.model and type(objects.model.parameters) == 'function' then
      params = objects.model:parameters()
    elseif objects.optim and objects.optim.param_groups then
      for _, g in ipairs(objects.optim.param_groups) do
        for _, p in ipairs(g.params) do params[#params + 1] = p end
      end
    end
    self.reducer = self.dist.data_parallel(params, { check = self.dist_check, bucket_mb = self.bucket_mb })
    -- From here each rank draws from its own stream (dropout masks must
    -- differ between the shards); rank 0 keeps the run's, so its draws are
    -- what one rank would draw. A resumed rank takes back its own state.
    if self.rank > 0 then
      local mine = self.resume_rngs and self.resume_rngs[('rank%d'):format(self.rank)]
      if mine then usagi.set_rng_state(mine)
      else usagi.manual_seed(self.seed, RANK_STREAM + self.rank) end
    end
    self.resume_rngs = nil
  end
  if self.resume_carry then self.resume_rng = usagi.get_rng_state() end
  return objects.state
end


-- Every rank's generator state, at rank 0, for a checkpoint (a collective).
local function rank_rngs(self)
  local mine = table.concat(usagi.get_rng_state(), ' ')
  local all = {}
  for r = 1, self.world - 1 do
    local text = self.dist.broadcast_string(self.rank == r and mine or nil, r)
    local state = {}
    for v in text:gmatch('%S+') do state[#state + 1] = math.tointeger(v) end
    all[('rank%d'):format(r)] = state
  end
  return all
end

local function state_of(obj)
  return type(obj.state_dict) == 'function' and obj:state_dict() or obj
end

local function metrics_tree(metrics)
  local t = {}
  for k, h in pairs(metrics) do
    if #h.values > 0 then
      t[k] = { values = usagi.tensor(h.values, 'f64'), steps = usagi.tensor(h.steps, 'f64'),
               seconds = usagi.tensor(h.seconds, 'f64') }
    end
  end
  return t
end

-- ==== The manifest of checkpoints ======================================
-- checkpoints/manifest: a line per checkpoint file, "NAME BYTES CRC32
-- finite|nonfinite", rewritten whole (temporary file, fsync, rename) after
-- every checkpoint. --resume checks a file against it before libhdf5 reads
-- it; a file the manifest does not list (killed between the two renames)
-- is checked by reading it alone.

local function file_size(path)
  local f <close> = assert(io.open(path, 'rb'))
  return f:seek('end')
end

local function read_manifest(cdir)
  local m, f = {}, io.open(cdir .. '/manifest', 'r')
  if not f then return m end
  for line in f:lines() do
    local name, bytes, crc, fin = line:match('^(%S+) (%d+) (%d+) (%a+)$')
    if name then m[name] = { bytes = math.tointeger(bytes), crc = math.tointeger(crc), finite = fin == 'finite' } end
  end
  f:close()
  return m
end

local function write_manifest(cdir, m)
  local path = cdir .. '/manifest'
  local tmp = ('%s.tmp-%d'):format(path, sys.getpid())
  local ok, err = pcall(function()
    local f = assert(io.open(tmp, 'w'))
    for _, name in ipairs(sorted_keys(m)) do
      local e = m[name]
      f:write(('%s %d %d %s\n'):format(name, e.bytes, e.crc, e.finite and 'finite' or 'nonfinite'))
    end
    assert(f:close())
    sys.replace(tmp, path)
  end)
  if not ok then
    pcall(sys.remove, tmp)
    error(('run: cannot write the manifest %s (%s)'):format(path, tostring(err)), 0)
  end
end

-- The checkpoint file: attributes for the position, groups for the rest.
function Run:_checkpoint_tree()
  local objects = {}
  for k, obj in pairs(self.tracked) do objects[k] = state_of(obj) end
  return {
    experiment = self.name, seed = self.seed, step = self.step, epoch = self.epoch,
    position = self.position, best = self.best_value, written = iso(sys.time()),
    config = self.config, rng = usagi.get_rng_state(), objects = objects,
    metrics = metrics_tree(self.metrics),
    -- in the middle of a loop: what it carries (see "Carried state")
    carry = self.loop and { loop = self.loop.where, values = carry_tree(self.loop.carry) } or nil,
    -- when to checkpoint, which a resume keeps unless told otherwise
    schedule = { every = self.every or 0, every_epochs = self.every_epochs or 0, keep = self.keep,
                 best = self.best_metric, best_mode = self.best_mode },
  }
end

-- run:checkpoint(): an extra checkpoint now (written whole, then renamed)
function Run:checkpoint()
  local rngs
  if self.world > 1 and self.saving and self.tracked then rngs = rank_rngs(self) end
  if not self.dir then return end
  if not self.tracked then
    if not self.warned_untracked then
      self:print('run: not checkpointing: the experiment does not call run:track{...}')
      self.warned_untracked = true
    end
    return
  end
  local cdir = self.dir .. '/checkpoints'
  local path = ('%s/step-%09d.h5'):format(cdir, self.step)
  local improved = false
  if self.best_metric then
    local values = self:history(self.best_metric)
    local v = values[#values]
    if not v and not self.warned_best then
      self:print(('run: no %s logged yet, so no best.h5 for now (--best names a metric of run:log)')
        :format(self.best_metric))
      self.warned_best = true
    end
    if v and finite(v) and (self.best_value == nil or
        (self.best_mode == 'min' and v < self.best_value) or (self.best_mode ~= 'min' and v > self.best_value)) then
      self.best_value, improved = v, true
    end
  end
  local tree = self:_checkpoint_tree()
  if rngs then tree.rng_ranks, tree.ranks = rngs, self.world end
  -- good: every parameter, optimizer state and the last logged metrics
  -- finite, so resuming from it can go on (a diverged run's are not)
  tree.finite = all_finite(tree.objects) and all_finite(self.last)
  -- the manifest lists the file before it takes its name, so every
  -- checkpoint in place has its checksum there
  local manifest = read_manifest(cdir)
  local ok, err = pcall(store.save, path, tree, function(tmp)
    manifest[path:match('[^/]+$')] = { bytes = file_size(tmp), crc = sys.crc32(tmp), finite = tree.finite }
    write_manifest(cdir, manifest)
  end)
  if not ok then
    -- a stop the run itself explains: no traceback (see run_experiment)
    self.stopped = ('run: cannot write checkpoint %s (%s); %s')
      :format(path, tostring(err):gsub('^[^:\n]*%.lua:%d+: ', ''), self.last_checkpoint
        and ('the previous one, %s, is intact'):format(self.last_checkpoint) or 'there is no earlier one')
    error(self.stopped, 0)
  end
  if improved then sys.link(path, cdir .. '/best.h5') end
  self.last_checkpoint = path
  if tree.finite then self.last_good = path end
  -- the last `keep` step files stay, and the newest good one whatever its age
  local steps = {}
  for _, name in ipairs(sys.listdir(cdir)) do
    if name:match('^step%-%d+%.h5$') then steps[#steps + 1] = name end
  end
  for j = 1, #steps - self.keep do
    if cdir .. '/' .. steps[j] ~= self.last_good then
      sys.remove(cdir .. '/' .. steps[j])
      manifest[steps[j]] = nil
    end
  end
  write_manifest(cdir, manifest)
end

-- What is wrong with checkpoint cdir/name, or nil when it is good: its
-- bytes are those the manifest recorded, it reads whole in a child process
-- (a corrupt file can crash libhdf5) and then here, and its values are
-- finite. Returns the reason, or nil and the tree.
local function check_checkpoint(cdir, name, manifest)
  local path = cdir .. '/' .. name
  local m = manifest[name]
  if m then
    local ok, bytes = pcall(file_size, path)
    if not ok or bytes ~= m.bytes then
      return ('it is %s bytes, the manifest says %d'):format(tostring(ok and bytes or '?'), m.bytes)
    end
    if sys.crc32(path) ~= m.crc then return 'its checksum differs from the manifest\'s' end
  end
  local fine, why = usagi.h5.verify(path)
  if not fine then return why end
  local ok, tree = pcall(store.load, path)
  if not ok then return (tostring(tree):gsub('^[^:\n]*%.lua:%d+: ', '')) end
  if type(tree.objects) ~= 'table' or math.type(tree.step) ~= 'integer' then
    return 'it is not a checkpoint of usagi run'
  end
  if tree.finite == false or (tree.finite == nil and not all_finite(tree.objects)) then
    return 'its parameters are not finite (the run had diverged)'
  end
  return nil, tree
end

-- The newest good checkpoint of dir (see check_checkpoint) and its path,
-- or nil; and the list of the newer ones passed over, with the reasons.
local function newest_checkpoint(dir)
  local cdir = dir .. '/checkpoints'
  if sys.kind(cdir) ~= 'directory' then return nil, nil, {} end
  local names, manifest, skipped = {}, read_manifest(cdir), {}
  for _, name in ipairs(sys.listdir(cdir)) do
    if name:match('^step%-%d+%.h5$') then names[#names + 1] = name end
  end
  for j = #names, 1, -1 do
    local why, tree = check_checkpoint(cdir, names[j], manifest)
    if not why then return tree, cdir .. '/' .. names[j], skipped end
    skipped[#skipped + 1] = ('%s: %s'):format(names[j], why)
  end
  return nil, nil, skipped
end

-- pcall(fn, f) over a run's results.h5 opened for reading, or false when it
-- does not read whole in a child process first (usagi.h5.verify): the run
-- did not just write it, and a damaged file can crash libhdf5.
local function read_results(dir, fn)
  local path = dir:gsub('/+$', '') .. '/results.h5'
  if not sys.kind(path) or not usagi.h5.verify(path) then return false, 'unreadable' end
  return pcall(function()
    local f <close> = usagi.h5.open(path, 'r')
    return fn(f)
  end)
end

-- The config and seed of a run that stopped before its first checkpoint,
-- from its results.h5, as a tree with no objects to restore.
M.read_results = read_results

local function started_run(dir)
  local ok, tree = read_results(dir, function(f)
    local a = f:attrs('/')
    return { experiment = a.experiment, seed = a.seed, config = store.read_tree(f, '/config'),
             step = 0, epoch = 1, position = 0 }
  end)
  if ok and math.type(tree.seed) == 'integer' then return tree end
end

-- Files a killed run left half-written: temporary checkpoints and links.
local function remove_leftovers(cdir)
  for _, name in ipairs(sys.listdir(cdir)) do
    if name:find('%.tmp%-%d+$') or name:find('%.link%-tmp$') then sys.remove(cdir .. '/' .. name) end
  end
end

-- ==== Provenance =========================================================

local function shell_quote(s)
  if s:match('^[%w_./=:,+%-]+$') then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, 'r')
  if not f then return nil end
  local text = f:read('a')
  f:close()
  return text
end

-- The git directory of the work tree that holds dir, or nil.
local function git_dir(dir)
  local d = dir
  for _ = 1, 64 do
    local g = d .. '/.git'
    local kind = sys.kind(g)
    if kind == 'directory' then return g end
    if kind == 'file' then                 -- a worktree or submodule: "gitdir: PATH"
      local to = (read_file(g) or ''):match('^gitdir:%s*(.-)%s*$')
      if not to then return nil end
      return to:sub(1, 1) == '/' and to or d .. '/' .. to
    end
    if d == '/' then return nil end
    d = d:match('^(.*)/[^/]*$')
    if d == '' then d = '/' end
  end
end

-- The commit HEAD names, read from the repository's files (no process):
-- HEAD holds a hash or "ref: refs/heads/NAME", whose hash is in its own
-- file or in packed-refs (or, in a worktree, in the common directory).
local function git_commit(gdir)
  local head = (read_file(gdir .. '/HEAD') or ''):match('^%s*(.-)%s*$')
  local ref = head:match('^ref:%s*(%S+)$')
  if not ref then return head:match('^%x+$') end
  local common = (read_file(gdir .. '/commondir') or ''):match('^%s*(.-)%s*$')
  local dirs = { gdir }
  if common ~= '' then dirs[2] = common:sub(1, 1) == '/' and common or gdir .. '/' .. common end
  for _, d in ipairs(dirs) do
    local hash = (read_file(d .. '/' .. ref) or ''):match('^(%x+)')
    if hash then return hash end
    for line in (read_file(d .. '/packed-refs') or ''):gmatch('[^\n]+') do
      local h, name = line:match('^(%x+) (%S+)$')
      if name == ref then return h end
    end
  end
end

-- git_info(script) -> commit or 'unknown', and a pending dirty check:
-- `git status` runs in a child while the experiment starts (it takes
-- longer than reading the commit), and dirty_of(pending) collects it.
local function git_info(script)
  local dir = script and script:match('^(.*)/[^/]*$') or '.'
  if dir:sub(1, 1) ~= '/' then dir = (os.getenv('PWD') or '.') .. '/' .. dir end
  local gdir = git_dir(dir)
  local commit = gdir and git_commit(gdir)
  if not commit then return 'unknown', nil end
  local out = os.tmpname()
  local ok, pid = pcall(sys.spawn, { 'git', '-C', dir, 'status', '--porcelain', '--untracked-files=no' },
    { stdout = out, stderr = '/dev/null' })
  if not ok then os.remove(out); return commit, nil end
  return commit, { pid = pid, out = out }
end

local function dirty_of(pending)
  local _, how, code = sys.wait(pending.pid)
  local text = read_file(pending.out) or ''
  os.remove(pending.out)
  if how ~= 'exit' or code ~= 0 then return nil end
  return text ~= ''
end

local function provenance(self, opts)
  local commit
  commit, self.git_pending = git_info(opts.script)
  local plugins = {}
  for _, p in ipairs(usagi.plugins()) do
    plugins[#plugins + 1] = type(p) == 'table' and ('%s %s'):format(p.name, p.version) or tostring(p)
  end
  local cmd = {}
  for _, a in ipairs(opts.argv or {}) do cmd[#cmd + 1] = shell_quote(a) end
  return {
    experiment = self.name, run_id = self.id, usagi_version = usagi.version,
    git_commit = commit, command_line = table.concat(cmd, ' '),
    script = opts.script or '', seed = self.seed, threads = usagi.get_num_threads(),
    blas = usagi.blas_info().config, plugins = table.concat(plugins, ', '),
    host = sys.hostname(), started = iso(self.started), smoke = opts.smoke and true or false,
    ranks = self.world,
  }
end

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

-- Where a checkpoint (or a run that had none yet) puts a resumed run.
local function restore(self, tree, opts)
  self.config, self.seed = tree.config, tree.seed
  local plan = tree.schedule
  if plan then                             -- the run's own checkpoint options, unless given again
    if opts.checkpoint_every == nil then self.every = plan.every ~= 0 and plan.every or nil end
    if opts.checkpoint_epochs == nil then self.every_epochs = plan.every_epochs ~= 0 and plan.every_epochs or nil end
    if opts.keep == nil then self.keep = plan.keep or self.keep end
    if opts.best == nil then self.best_metric, self.best_mode = plan.best, plan.best_mode or self.best_mode end
  end
  self.step, self.epoch, self.position, self.best_value = tree.step, tree.epoch, tree.position, tree.best
  self.seconds_before = 0
  for k, h in pairs(tree.metrics or {}) do
    local values, steps, seconds = {}, {}, {}
    local has = h.seconds and h.seconds:numel() == h.values:numel()
    for j = 1, h.values:numel() do
      values[j], steps[j], seconds[j] = h.values[j], h.steps[j], has and h.seconds[j] or 0
      self.seconds_before = math.max(self.seconds_before, seconds[j])
    end
    self.metrics[k] = { values = values, steps = steps, seconds = seconds }
  end
  if tree.objects then self.resume_from = tree end
end

-- Ranks other than 0 keep no directory: on --resume they read the
-- checkpoint rank 0 chose (its path comes by broadcast), else nothing.
local function open_follower(self, opts)
  local path = self.dist.broadcast_string(nil, 0)
  if opts.resume and opts.out ~= false then
    local tree = path ~= '' and store.load(path) or started_run(opts.resume:gsub('/+$', ''))
    if not tree then error(('usagi run: --resume %s: rank %d cannot read it'):format(opts.resume, self.rank), 0) end
    restore(self, tree, opts)
  end
  return self
end

-- usagi.dist when an MPI launcher started this process (the variables
-- mpirun sets, as usagi/dist.h reads them), else nil: a plain run does not
-- even load MPI's libraries.
function M.launched_dist()
  local mode = os.getenv('USAGI_DIST')
  if mode == 'off' then return nil end
  if mode ~= 'on' and not (os.getenv('OMPI_COMM_WORLD_SIZE') or os.getenv('PMI_SIZE')
                           or os.getenv('PMIX_RANK')) then
    return nil
  end
  local ok, d = pcall(require, 'usagi.dist')
  return ok and d or nil
end

-- The ranks of a data-parallel run: usagi.dist when it is built and the
-- process was started by mpirun with several ranks (opts.dist = false: one).
local function ranks_of(self, opts)
  local dist = opts.dist
  if dist == nil then dist = M.launched_dist() or false end
  self.rank, self.world = 0, 1
  local ok, size = pcall(function() return dist and dist.size() end)
  if not ok then error((tostring(size):gsub('^[^\n]-%.lua:%d+: ', '')), 0) end
  if dist and size > 1 then
    self.dist, self.rank, self.world = dist, dist.rank(), dist.size()
    self.dist_check, self.bucket_mb = opts.dist_check, opts.bucket_mb
    -- the ranks on this machine share its cores, unless --threads says
    if not opts.threads then
      usagi.set_num_threads(math.max(1, usagi.get_num_threads() // dist.local_size()))
    end
    if self.rank ~= 0 then self.quiet, self.tty = true, false end
  end
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
    step = 0, epoch = 1, position = 0, quiet = opts.quiet, tty = not opts.quiet and interactive(),
    progress_seconds = progress_interval(), opened = sys.monotonic(),
    started = sys.time(), every = opts.checkpoint_every or ck.every, keep = opts.keep or ck.keep or 3,
    best_metric = opts.best or ck.best, best_mode = opts.best_mode or ck.mode or 'min',
  }, Run)
  if self.every == 0 then self.every = nil end
  self.every_epochs = opts.checkpoint_epochs or ck.every_epochs
  if self.every_epochs == 0 then self.every_epochs = nil end
  self.saving = opts.out ~= false
  ranks_of(self, opts)
  if self.rank ~= 0 then return open_follower(self, opts) end
  if opts.out == false then
    if self.world > 1 then self.dist.broadcast_string('', 0) end
    return self
  end

  local resumed
  if opts.resume then
    self.dir = opts.resume:gsub('/+$', '')
    if sys.kind(self.dir) ~= 'directory' then
      error(('usagi run: --resume %s: no such run directory'):format(self.dir), 0)
    end
    local tree, path, skipped = newest_checkpoint(self.dir)
    for _, why in ipairs(skipped) do
      io.stderr:write(('usagi run: --resume %s: passing over checkpoint %s\n'):format(self.dir, why))
    end
    if tree and #skipped > 0 then
      io.stderr:write(('usagi run: --resume %s: resuming from %s, the newest good checkpoint\n')
        :format(self.dir, path:match('[^/]+$')))
    end
    if not tree and #skipped > 0 then
      error(('usagi run: --resume %s: no checkpoint there is good (see above); start the run afresh')
        :format(self.dir), 0)
    end
    if not tree then                       -- stopped before its first checkpoint: start over
      tree = started_run(self.dir)
      if not tree then
        error(('usagi run: --resume %s: neither a readable checkpoint nor a readable results.h5 there; start the run afresh')
          :format(self.dir), 0)
      end
    end
    if tree.experiment ~= spec.name then
      error(('usagi run: --resume %s: it is a run of %s, not of %s'):format(self.dir, tostring(tree.experiment), spec.name), 0)
    end
    restore(self, tree, opts)
    if tree.objects then self.last_checkpoint, self.last_good = path, path end
    self.id = self.dir:match('([^/]+)$')
    resumed = tree
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
  remove_leftovers(self.dir .. '/checkpoints')
  local log, lerr = io.open(self.dir .. '/run.log', 'a')
  if not log then error(('usagi run: cannot write the run log: %s'):format(lerr), 0) end
  self.logfile = log
  local attrs = provenance(self, opts)
  local command = attrs.command_line
  if resumed then
    -- the run's own start and command stay; the latest resume is added
    local ok, before = read_results(self.dir, function(f) return f:attrs('/') end)
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
  if self.world > 1 then self.dist.broadcast_string(self.resume_from and self.last_checkpoint or '', 0) end
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
    attrs.git_dirty = dirty_of(self.git_pending)
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
