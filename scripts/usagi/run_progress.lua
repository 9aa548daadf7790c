-- usagi.run_progress -- the loops of a run (usagi.run): run:epochs and
-- run:progress, the progress bar they draw on the terminal and in run.log,
-- and the stop at the end of a step on SIGINT, SIGTERM or SIGHUP. The
-- steps they count are where checkpoints are taken (usagi.run_checkpoint)
-- and where a resumed run starts again; what a loop carries between its
-- steps is usagi.run_carry's.
local usagi = require 'usagi'
local util = require 'usagi.util'
local carry = require 'usagi.run_carry'
local sys = usagi.sys
local fmt_time = util.fmt_time
local loop_site, check_carry, load_carry = carry.loop_site, carry.check_carry, carry.load_carry

local M = {}
-- The methods of usagi.run's Run that this file defines; run.lua puts them
-- into the class.
local Run = {}
M.methods = Run

-- ==== The bar: a terminal, or plain lines ================================

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
M.interactive, M.progress_interval = interactive, progress_interval

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

return M
