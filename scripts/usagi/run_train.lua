-- usagi.run_train -- the training loop every supervised experiment of a
-- run (usagi.run) writes: run:batches, an epoch of shuffled batches as the
-- steps of run:progress (checkpoints, resume, each rank's share under
-- mpirun), and run:train_epoch, one optimizer step per batch.
local usagi = require 'usagi'
local carry = require 'usagi.run_carry'
local dist = require 'usagi.run_dist'
local sys = usagi.sys
local loop_site, check_carry, shard_range = carry.loop_site, carry.check_carry, dist.shard_range

local M = {}
-- The methods of usagi.run's Run that this file defines; run.lua puts them
-- into the class.
local Run = {}
M.methods = Run

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

return M
