-- usagi.run_dist -- the ranks of a data-parallel run (usagi.run under
-- mpirun): which ranks there are, each rank's share of the data
-- (run:shard, shard_range), numbers reduced over the ranks
-- (run:allreduce), the gradients averaged over them and a generator
-- stream per rank (attach, called by run:track), and every rank's
-- generator state for a checkpoint (rank_rngs).
local usagi = require 'usagi'

local M = {}
-- The methods of usagi.run's Run that this file defines; run.lua puts them
-- into the class.
local Run = {}
M.methods = Run

-- The generator streams of ranks 1..R-1 of a data-parallel run: "mpi" in
-- the high 32 bits, plus the rank (rank 0 keeps the run's stream).
local RANK_STREAM = 0x6d7069 << 32

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
function M.ranks_of(self, opts)
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

-- attach(self, objects): under mpirun, from run:track on, the gradients of
-- the tracked parameters are averaged over the ranks at the end of every
-- backward, and each rank draws from a stream of its own.
function M.attach(self, objects)
  if self.world == 1 or self.reducer then return end
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

-- Every rank's generator state, at rank 0, for a checkpoint (a collective).
function M.rank_rngs(self)
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

return M
