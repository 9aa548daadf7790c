--[[
dist_hosts.lua -- the time of usagi.dist's allreduce between the ranks of
an mpirun, for scripts/bench/dist_hosts (one host against two hosts made
of network namespaces). Prints one line per size (rank 0):

  allreduce floats N ms M

M: the median over 9 blocks of the mean time of one allreduce of N f32 in
the block (REPS calls for small sizes, fewer for large), after warm-up.

    mpirun -np 2 <build>/usagi scripts/bench/dist_hosts.lua
]]
local usagi = require 'usagi'
local dist = require 'usagi.dist'
local sys = usagi.sys

for _, n in ipairs { 4, 262144, 6553600 } do
  local t = usagi.ones(n)
  local reps = n <= 4 and 500 or n <= 262144 and 40 or 4
  for _ = 1, 5 do dist.allreduce(t) end
  local blocks = {}
  for b = 1, 9 do
    dist.barrier()
    local t0 = sys.monotonic()
    for _ = 1, reps do dist.allreduce(t) end
    blocks[b] = (sys.monotonic() - t0) / reps
  end
  table.sort(blocks)
  if dist.rank() == 0 then print(('allreduce floats %d ms %.4f'):format(n, blocks[5] * 1e3)) end
end
