-- The Lua face of usagi.dist: numbers and strings over the ranks, a check
-- that every rank holds the same parameters, and the data-parallel reducer
-- that the run layer (scripts/usagi/run_dist.lua) puts on a tracked model.
--
--   local dist = require 'usagi.dist'
--   dist.rank(), dist.size()              -- 0-based rank, number of ranks
--   dist.allreduce(t, 'mean')             -- in place, every rank the same
--   local dp = dist.data_parallel(model:parameters())
--   -- from here every loss:backward() averages the gradients over the
--   -- ranks, in buckets started while the backward runs, and returns with
--   -- the means in .grad, before clipping and the optimizer's step
--
-- Data-parallel SGD: with the batch of B split into R shards of B/R, rank
-- r's batch-mean gradient g_r averages to the whole batch's gradient,
--   g = 1/R sum_r g_r,
-- so identical parameters, after the same update, stay identical.
local M = ...
local usagi = require 'usagi'

-- local_size() -> the ranks on this machine (mpirun says; 1 without it)
function M.local_size()
  if M.size() == 1 then return 1 end
  local n = tonumber(os.getenv('OMPI_COMM_WORLD_LOCAL_SIZE') or os.getenv('MPI_LOCALNRANKS') or '')
  return math.tointeger(n) or 1
end

-- ==== Numbers and strings =================================================

-- allreduce_number(x [, 'sum'|'mean'|'max'|'min']) -> the reduced number
-- (in f64; max and min through the sum of a one-hot, ranks are few)
function M.allreduce_number(x, op)
  if type(x) ~= 'number' then error('dist.allreduce_number: x must be a number, got ' .. type(x), 2) end
  op = op or 'sum'
  if op == 'max' or op == 'min' then
    local all = usagi.zeros(M.size(), 'f64')
    all[M.rank() + 1] = x
    M.allreduce(all, 'sum')
    local v = all[1]
    for i = 2, M.size() do
      if (op == 'max' and all[i] > v) or (op == 'min' and all[i] < v) then v = all[i] end
    end
    return v
  end
  if op ~= 'sum' and op ~= 'mean' then
    error(("dist.allreduce_number: op must be 'sum', 'mean', 'max' or 'min', got %s"):format(tostring(op)), 2)
  end
  local t = usagi.tensor({ x }, 'f64')
  M.allreduce(t, op)
  return t[1]
end

-- broadcast_string(s [, root = 0]) -> root's s on every rank (any bytes,
-- any length: broadcast_bytes, with the root's argument checked here)
function M.broadcast_string(s, root)
  root = root or 0
  if M.rank() == root and type(s) ~= 'string' then
    error('dist.broadcast_string: the root must give a string, got ' .. type(s), 2)
  end
  if M.size() == 1 then return s end
  return M.broadcast_bytes(s, root)
end

-- same(tensors) -> true when every rank holds bit for bit rank 0's values
-- of each tensor; else false and the index of the first that differs
-- (on every rank). A collective: every rank calls it.
function M.same(tensors)
  local first = 0
  for i, t in ipairs(tensors) do
    local theirs = t:detach():contiguous():clone()
    M.broadcast(theirs, 0)
    if first == 0 and not usagi.equal(theirs, t:detach()) then first = i end
  end
  first = M.allreduce_number(first == 0 and math.huge or first, 'min')
  if first == math.huge then return true end
  return false, math.tointeger(first)
end

-- ==== Data parallel =======================================================

-- The reducers whose gradients a backward averages, in the order they were
-- made (an array, not a set: every rank must run the collectives in the
-- same order, and pairs() over tables as keys need not).
local active = {}
local paused = 0

-- Tensor:backward, wrapped: the first reducer's buckets start during the
-- backward as their gradients complete (autograd's gradient-ready hook,
-- see usagi/dist.h), and every reducer finishes when it returns -- the one
-- moment all gradients of the step are there on every rank, before a clip
-- or an optimizer reads them (PyTorch's DDP does the same). More than one
-- reducer at a time works, but only the first overlaps.
local hooked = false
local function install_hook()
  if hooked then return end
  local methods = getmetatable(usagi.zeros(1)).__methods   -- t:backward() finds it there
  local backward = type(methods) == 'table' and rawget(methods, 'backward')
  if type(methods) ~= 'table' or type(backward) ~= 'function' then error('dist: cannot find Tensor.backward to hook') end
  rawset(methods, 'backward', function(t, ...)
    local first = paused == 0 and active[1]
    if not first then return backward(t, ...) end
    for _, r in ipairs(active) do if r.check then r:check_replicas() end end
    first.reducer:begin()
    local ok, err = pcall(backward, t, ...)
    for _, r in ipairs(active) do r:_finish() end   -- even after an error: the others wait
    if not ok then error(err, 0) end
  end)
  hooked = true
end

-- no_sync(f, ...): run f with the averaging off (gradient accumulation over
-- several backwards: the last one, outside no_sync, averages the sum).
function M.no_sync(f, ...)
  paused = paused + 1
  local res = table.pack(pcall(f, ...))
  paused = paused - 1
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- The reducer that dist.data_parallel(params, opts) returns: it averages
-- the gradients of params over the ranks in every backward (see below).
local DataParallel = {}
DataParallel.__index = DataParallel
M.DataParallel = DataParallel

-- data_parallel(params [, {bucket_mb = 25, check = false}]) -> reducer:
-- broadcasts the parameters from rank 0, then averages their gradients in
-- every backward, in buckets of bucket_mb MiB; check = true also
-- verifies, before each averaging (so after every optimizer step), that
-- the parameters are bit for bit the same on every rank, and stops the run
-- if not. reducer:close() ends it.
function M.data_parallel(params, opts)
  if type(params) ~= 'table' then error('dist.data_parallel: params must be a list of tensors', 2) end
  for i, p in ipairs(params) do
    if not usagi.is_tensor(p) then
      error(('dist.data_parallel: params[%d] must be a tensor, got %s'):format(i, type(p)), 2)
    end
  end
  opts = opts or {}
  local self = setmetatable({ params = params, bucket_mb = opts.bucket_mb or 25,
    check = opts.check and true or false, syncs = 0, seconds = 0, buckets = 0, early = 0 }, DataParallel)
  self.reducer = M.reducer(params, self.bucket_mb)
  self:broadcast()
  install_hook()
  active[#active + 1] = self
  return self
end

-- broadcast(): copy rank 0's parameters to every rank (data_parallel
-- does it once at the start; again after loading a checkpoint on rank 0).
function DataParallel:broadcast()
  for _, p in ipairs(self.params) do M.broadcast(p, 0) end
end

-- The check of check = true, callable on its own: an error naming the
-- first parameter that differs from rank 0's.
function DataParallel:check_replicas(when)
  local ok, i = M.same(self.params)
  if not ok then
    error(('dist: after %d steps, parameter %d, of size %s, differs between rank 0 and another rank%s')
      :format(self.syncs, i, tostring(self.params[i]:size()), when and (' ' .. when) or ''), 0)
  end
  self.checked = (self.checked or 0) + 1
end

-- The end of a step's averaging: the buckets not started yet, the wait,
-- the means written into the gradients. seconds adds the time spent here,
-- the communication the backward did not hide.
function DataParallel:_finish()
  local t0 = usagi.sys.monotonic()
  self.reducer:finish()
  self.seconds = self.seconds + usagi.sys.monotonic() - t0
  self.syncs = self.syncs + 1
  self.buckets, self.early = self.reducer:buckets()
end

-- sync(): average the gradients now, all buckets at once (what the end of
-- a backward does; for gradients made some other way).
function DataParallel:sync()
  if self.check then self:check_replicas() end
  self:_finish()
end

-- close(): stop averaging gradients in the backwards to come.
function DataParallel:close()
  for i, r in ipairs(active) do
    if r == self then table.remove(active, i); break end
  end
  self.reducer:close()
end

-- The C functions of this plugin (dist_lua.c over host/dist/dist.c); help() reads their docs here,
-- and those of broadcast and allreduce in ops.lua.
--
-- dist.init() -> true when MPI is running (a process an MPI launcher started); starts MPI once.
-- Every other function calls it first; without a launcher (or built without MPI) a process is
-- rank 0 of 1 and nothing is sent.
--
-- dist.rank() -> this process's rank, 0-based (rank 0 writes results and checkpoints).
--
-- dist.size() -> the number of ranks (1 without mpirun).
--
-- dist.compiled() -> true when this usagi was built with MPI (the USAGI_MPI option).
--
-- dist.barrier(): wait until every rank has called it.
--
-- dist.broadcast_bytes(s [, root = 0]) -> rank root's string s on every rank (the others pass
-- nil): any bytes, any length (sent in pieces of 1 GiB). The checkpoint of a --resume and a
-- sweep's runs travel this way, so the ranks need no shared filesystem.
--
-- dist.allreduce_grads(params [, bucket_mb = 25]) -> buckets: every param's .grad replaced by its
-- mean over the ranks, sent in buckets of about bucket_mb MiB (fewer, larger messages); a param
-- without a grad gets a zero one first so that every rank sends the same tensors.
--
-- dist.reducer(params [, bucket_mb = 25]) -> a usagi.dist.Reducer: the gradient averaging
-- overlapped with the backward (r:begin() before a backward, r:finish() after it, r:buckets() ->
-- buckets, buckets started during the backward; r:close()). dist.data_parallel uses it.
--
-- dist.last_buckets() -> the number of buckets the last allreduce_grads used (tests and the
-- benchmark report it).
--
-- dist.abort([code = 1]): stop every rank now (MPI_Abort); without MPI it returns and does nothing.
--
-- dist.set_timeout(seconds): how long a rank waits in a collective (barrier, broadcast, allreduce,
-- the gradient averaging) for the others before it names the silent ranks on stderr and ends the
-- job (MPI_Abort); 0 waits forever. The default is 300 s, or $USAGI_DIST_TIMEOUT. Set it alike on
-- every rank.
--
-- dist.timeout() -> the seconds of that deadline (0: none).

return M
