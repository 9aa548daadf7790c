-- usagi.dist: rank, size, barrier, broadcast, allreduce (sum, mean) of
-- tensors, numbers and strings, the replica check and the data-parallel
-- reducer. ctest runs this spec twice: alone (one rank: every operation is
-- the identity) and as `mpirun -np 2` (tests/mpi/mpirun.sh), where each
-- rank gives different values and the expected results are computed from
-- the rank and the size. Every `it` runs the same collectives on every
-- rank, in the same order.
local usagi = require 'usagi'
local dist = require 'usagi.dist'
local nn = require 'usagi.nn'
local h = dofile('tests/lua/helpers.lua')

local R, r = dist.size(), dist.rank()

describe('usagi.dist', function()
  it('knows its rank and size, and is listed as a plugin', function()
    assert.is_true(R >= 1 and r >= 0 and r < R)
    local found
    for _, p in ipairs(usagi.plugins()) do
      if (type(p) == 'table' and p.name or tostring(p)):find('dist') then found = true end
    end
    assert.is_true(found)
    assert.are.equal(R == 1 and 1 or dist.local_size(), dist.local_size())
    dist.barrier()
  end)

  it('sums and averages tensors of every dtype over the ranks, in place', function()
    local x = usagi.full({ 2, 3 }, r + 1)                   -- rank r holds r + 1
    assert.are.equal(x, dist.allreduce(x, 'sum'))
    assert.is_true(usagi.equal(x, usagi.full({ 2, 3 }, R * (R + 1) / 2)))
    local m = usagi.arange(0, 5, 1, 'f64') + r
    dist.allreduce(m, 'mean')
    assert.is_true(usagi.equal(m, usagi.arange(0, 5, 1, 'f64') + (R - 1) / 2))
    local i = usagi.tensor({ r, 10 * r }, 'i32')
    dist.allreduce(i)                                        -- sum by default
    assert.are.same({ R * (R - 1) / 2, 10 * R * (R - 1) / 2 }, i:totable())
    assert.are.equal(R, dist.allreduce_number(1))
    assert.are.equal(R - 1, dist.allreduce_number(r, 'max'))
    assert.are.equal(0, dist.allreduce_number(r, 'min'))
    assert.are.equal((R - 1) / 2, dist.allreduce_number(r, 'mean'))
  end)

  it("broadcasts a tensor and a string from any root", function()
    local t = usagi.full({ 4 }, 100 + r)
    dist.broadcast(t)                                        -- root 0
    assert.is_true(usagi.equal(t, usagi.full({ 4 }, 100)))
    local last = R - 1
    local u = usagi.full({ 3 }, r, 'i32')
    dist.broadcast(u, last)
    assert.are.same({ last, last, last }, u:totable())
    assert.are.equal('from rank 0: ok', dist.broadcast_string(r == 0 and 'from rank 0: ok' or nil))
    assert.are.equal('', dist.broadcast_string(r == 0 and '' or nil))
  end)

  it('broadcasts bytes of any value and length from any root (a checkpoint for a --resume)', function()
    -- 3 MB with every byte value, zeros included, from the last rank
    local root = dist.size() - 1
    local bytes = string.rep(string.char(table.unpack((function()
      local t = {}
      for i = 0, 255 do t[#t + 1] = i end
      return t
    end)())), 3 * 4096)
    local got = dist.broadcast_bytes(r == root and bytes or nil, root)
    assert.are.equal(#bytes, #got)
    assert.is_true(got == bytes)
    assert.are.equal('', dist.broadcast_bytes(r == 0 and '' or nil))
    local ok, err = pcall(dist.broadcast_bytes, nil, dist.size())
    assert.is_false(ok)
    assert.matches('dist.broadcast_bytes: root must be a rank 0..', err, 1, true)
  end)

  it('averages gradients in buckets started during the backward', function()
    usagi.manual_seed(5 + r)                                  -- different weights per rank ...
    local m = nn.Sequential { nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2) }
    local ps = m:parameters()
    local dp = dist.data_parallel(ps, { bucket_mb = 64 / 2 ^ 20 })  -- 64-byte buckets
    assert.is_true((dist.same(ps)))                          -- ... until the broadcast
    local x = usagi.full({ 3, 4 }, r + 1)                    -- different data per rank
    local loss = m(x):square():mean()
    loss:backward()
    assert.are.equal(1, dp.syncs)
    -- (4, 8) and (8, 2) weights of 128 and 64 bytes alone, the biases of 32 and 8 bytes
    if R > 1 then assert.are.equal(4, dp.buckets) end
    -- each bucket started inside the backward, once its last gradient was done
    assert.are.equal(R > 1 and 4 or 0, dp.early)
    -- the gradient of rank 0's data and of rank 1's, averaged, by hand
    local want = {}
    for k = 0, R - 1 do
      for _, p in ipairs(ps) do p.grad = nil end
      dist.no_sync(function() m(usagi.full({ 3, 4 }, k + 1)):square():mean():backward() end)
      for j, p in ipairs(ps) do want[j] = (want[j] or 0) + p.grad / R end
    end
    for _, p in ipairs(ps) do p.grad = nil end
    m(x):square():mean():backward()
    for j, p in ipairs(ps) do assert.is_true(usagi.allclose(p.grad, want[j], 1e-5, 1e-6)) end
    dp:sync()                                                -- all at once: the mean of equal grads
    for j, p in ipairs(ps) do assert.is_true(usagi.allclose(p.grad, want[j], 1e-5, 1e-6)) end
    assert.is_true((dist.same(ps)))
    assert.are.equal(3, dp.syncs)
    dp:close()
    m(x):square():mean():backward()                          -- closed: no more syncs
    assert.are.equal(3, dp.syncs)
  end)

  it('gives each rank its own random stream after run:track, rank 0 the run\'s', function()
    local spec = { name = 'dist_spec', config = {}, run = function() end }
    local run = require('usagi.run').open(spec, {}, { out = false, seed = 7, dist = dist, threads = 1 })
    local model = nn.Linear(2, 2)
    usagi.manual_seed(7)
    local expect = usagi.rand(4)                             -- what one rank draws
    usagi.manual_seed(7)
    run:track { model = model }
    local mine = usagi.rand(4)
    if r == 0 then assert.is_true(usagi.equal(mine, expect)) end
    assert.are.equal(R == 1, (dist.same({ mine })))          -- the ranks' draws differ
    run:finish('ok')
  end)

  it('gives a parameter without a gradient a zero one, so every rank sends the same', function()
    local a, b = usagi.ones(2):requires_grad(true), usagi.ones(3):requires_grad(true)
    local n = dist.allreduce_grads({ a, b })
    assert.is_true(usagi.equal(a.grad, usagi.zeros(2)) and usagi.equal(b.grad, usagi.zeros(3)))
    assert.are.equal(R > 1 and 1 or 0, n)
  end)

  it('waits in a collective at most dist.timeout() seconds (300, $USAGI_DIST_TIMEOUT, set_timeout)', function()
    local before = dist.timeout()
    local env = tonumber(os.getenv('USAGI_DIST_TIMEOUT') or '')
    assert.are.equal(env or 300, before)
    dist.set_timeout(2.5)
    assert.are.equal(2.5, dist.timeout())
    dist.barrier()                                           -- every rank is there: no wait
    dist.set_timeout(0)                                      -- 0: wait forever
    assert.are.equal(0, dist.timeout())
    dist.allreduce(usagi.ones(3))
    dist.set_timeout(before)
    h.fails(function() dist.set_timeout(-1) end, 'dist.set_timeout: seconds must be a number of seconds >= 0 (0: wait forever), got -1')
    h.fails(function() dist.set_timeout(0 / 0) end, 'must be a number of seconds >= 0')
    h.fails(function() dist.set_timeout(math.huge) end, 'got inf')
    h.fails(function() dist.set_timeout('soon') end, 'number expected, got string')
    assert.are.equal(before, dist.timeout())
  end)

  it('refuses bad arguments with messages', function()
    h.fails(function() dist.allreduce(usagi.zeros(2, 3):t()) end, 'must be contiguous')
    h.fails(function() dist.allreduce(usagi.zeros(2, 'i32'), 'mean') end, 'mean needs an f32 or f64 tensor, got i32')
    h.fails(function() dist.allreduce(usagi.zeros(2), 'max') end, "invalid option 'max'")
    h.fails(function() dist.broadcast(usagi.zeros(2), R) end, 'root must be a rank')
    h.fails(function() dist.broadcast('x') end, 'usagi.Tensor expected')
    h.fails(function() dist.allreduce_grads({ 1 }) end, 'params[1] must be a tensor')
    h.fails(function() dist.allreduce_grads({ usagi.zeros(2, 'i32') }) end, 'parameters are f32 or f64')
    h.fails(function() dist.allreduce_number('3') end, 'x must be a number')
    h.fails(function() dist.data_parallel({ 'w' }) end, 'params[1] must be a tensor')
    local w = usagi.zeros(2)
    h.fails(function() dist.reducer({ w, usagi.zeros(1), w }) end, 'params[3] is params[1] again')
    h.fails(function() dist.reducer({ usagi.zeros(2, 'i32') }) end, 'params[1] is i32; parameters are f32 or f64')
    h.fails(function() dist.reducer({ w }, 0) end, 'bucket_mb must be in')
    local r = dist.reducer({ w })
    r:close()
    h.fails(function() r:begin() end, 'the reducer was closed')
  end)
end)
