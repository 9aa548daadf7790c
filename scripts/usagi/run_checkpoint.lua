-- usagi.run_checkpoint -- the checkpoints of a run (usagi.run) and its
-- resume: run:track (what a checkpoint holds), run:checkpoint (written
-- whole, then renamed, and listed with its size and checksum in
-- checkpoints/manifest), the choice of the newest good checkpoint on
-- --resume, and the run put back where that checkpoint left it.
local usagi = require 'usagi'
local store = require 'usagi.store'
local util = require 'usagi.util'
local carry = require 'usagi.run_carry'
local dist = require 'usagi.run_dist'
local sys = usagi.sys
local sorted_keys, finite, iso = util.sorted_keys, util.finite, util.iso

local M = {}
-- The methods of usagi.run's Run that this file defines; run.lua puts them
-- into the class.
local Run = {}
M.methods = Run

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
  dist.attach(self, objects)
  if self.resume_carry then self.resume_rng = usagi.get_rng_state() end
  return objects.state
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
    carry = self.loop and { loop = self.loop.where, values = carry.carry_tree(self.loop.carry) } or nil,
    -- when to checkpoint, which a resume keeps unless told otherwise
    schedule = { every = self.every or 0, every_epochs = self.every_epochs or 0, keep = self.keep,
                 best = self.best_metric, best_mode = self.best_mode },
  }
end

-- run:checkpoint(): an extra checkpoint now (written whole, then renamed)
function Run:checkpoint()
  local rngs
  if self.world > 1 and self.saving and self.tracked then rngs = dist.rank_rngs(self) end
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

M.read_results = read_results

-- The config and seed of a run that stopped before its first checkpoint,
-- from its results.h5, as a tree with no objects to restore.
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

M.started_run, M.remove_leftovers, M.restore = started_run, remove_leftovers, restore

-- resume(self, spec, opts) -> the tree of the newest good checkpoint of the
-- run directory opts.resume (or, when it stopped before its first one, its
-- config and seed), after self took its place; raises when there is none.
function M.resume(self, spec, opts)
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
  return tree
end

return M
