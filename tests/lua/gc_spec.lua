local usagi = require 'usagi'

-- The Lua GC and C memory (host/lua/tensor_lua.c): a loop that makes
-- megabytes of tensors per step runs at flat memory with no
-- collectgarbage() in it, because the binding counts the bytes usagi holds
-- and collects when they pass twice what was live after the last collection
-- (floor 64 MB). Lua alone would not: each tensor is a few bytes of
-- userdata to it. Views keep their storage alive; `<close>` frees at once.
--
-- usagi.memory() is the C side: bytes held by usagi allocations.

local MB = 1024 * 1024

describe('a training-like loop', function()
  it('runs 5000 steps of 1 MB tensors at flat memory without collectgarbage()', function()
    collectgarbage()
    local base = usagi.memory()
    local bound = base + 200 * MB     -- the binding keeps it under ~64 MB + one step
    local peak, at1000, lua1000 = 0, nil, nil
    -- One fresh megabyte per step and small ops on views of it: a bigger
    -- op per step would only slow the Debug build (a pass over 1 MB costs
    -- milliseconds there) without testing anything more.
    local w = usagi.randn(2, 512)
    for step = 1, 5000 do
      local x = usagi.full(512, 512, step)             -- (512, 512) f32: 1 MB
      local h = x:narrow(1, 1, 2):mul(0.5):add_(w)     -- a view, a small op, in place
      local s = h:tanh()
      local live = usagi.memory()
      if live > peak then peak = live end
      -- stop at once rather than eat the machine when the binding leaks
      if live > bound then
        error(('step %d: %.0f MB live, past the bound of %.0f MB')
              :format(step, live / MB, bound / MB))
      end
      if step == 1000 then at1000, lua1000 = live, collectgarbage('count') end
      if step == 5000 then
        -- values are right to the end (a collection never frees a live tensor)
        assert.is_true(math.abs(step * 0.5 + w[{ 2, 7 }] - h[{ 2, 7 }]) < 1e-3)
        assert.are.equal(step, x[{ 512, 512 }])
        assert.are.same({ 2, 512 }, { s:size(1), s:size(2) })
      end
    end
    local at5000, lua5000 = usagi.memory(), collectgarbage('count')
    assert.is_true(peak - base < 200 * MB, ('peak %.1f MB'):format((peak - base) / MB))
    -- no growth between step 1000 and 5000 beyond one collection period
    assert.is_true(at5000 - at1000 < 100 * MB,
                   ('C memory grew from %.1f to %.1f MB'):format(at1000 / MB, at5000 / MB))
    assert.is_true(lua5000 < lua1000 * 2 + 1024,
                   ('the Lua heap grew from %.0f to %.0f KB'):format(lua1000, lua5000))
    -- and everything comes back once the loop's tensors are garbage
    collectgarbage(); collectgarbage()
    assert.is_true(usagi.memory() - base < 1 * MB,
                   ('%.1f MB still held'):format((usagi.memory() - base) / MB))
  end)
end)

describe('lifetimes', function()
  it('a view keeps its storage alive after the parent is collected', function()
    collectgarbage(); collectgarbage()
    local base = usagi.memory()
    local v
    do
      local p = usagi.arange(0, 4 * MB / 8, 1, 'f64')  -- 4 MB
      v = p:narrow(1, 11, 3)
      assert.is_true(usagi.memory() - base >= 4 * MB)
    end
    collectgarbage(); collectgarbage()
    -- the parent's Lua object is gone; its storage is not
    assert.is_true(usagi.memory() - base >= 4 * MB)
    assert.are.same({ 10, 11, 12 }, v:totable())
    v[1] = 99
    assert.are.equal(99, v[1])
    local vv = v:view(3, 1):t()
    v = nil
    collectgarbage(); collectgarbage()
    assert.are.same({ { 99, 11, 12 } }, vv:totable())   -- a view of a view, too
    vv = nil
    collectgarbage(); collectgarbage()
    assert.is_true(usagi.memory() - base < 4 * MB, 'the storage was not freed')
  end)

  it('a <close> variable releases its memory at once', function()
    collectgarbage(); collectgarbage()
    local base = usagi.memory()
    local escaped
    do
      local t <close> = usagi.zeros(1024, 1024)      -- 4 MB
      escaped = t
      assert.is_true(usagi.memory() - base >= 4 * MB)
    end
    -- freed when the block ended, before any collection
    assert.is_true(usagi.memory() - base < 4 * MB,
                   ('%.1f MB still held'):format((usagi.memory() - base) / MB))
    -- the Lua value is still there, and says it is closed
    local ok, msg = pcall(function() return escaped:sum() end)
    assert.is_false(ok)
    assert.is_truthy(tostring(msg):find('closed', 1, true), msg)
    escaped = nil
    collectgarbage()                                  -- __gc after __close: no double free
    assert.is_true(usagi.memory() - base < 4 * MB)
  end)

  it('<close> on a view keeps the parent usable', function()
    local p = usagi.tensor { 1, 2, 3, 4 }
    do
      local v <close> = p:narrow(1, 2, 2)
      v:fill_(0)
    end
    assert.are.same({ 1, 0, 0, 4 }, p:totable())
  end)

  it('an error inside a <close> block still releases', function()
    collectgarbage(); collectgarbage()
    local base = usagi.memory()
    local ok = pcall(function()
      local t <close> = usagi.zeros(1024, 1024)
      error('boom')
    end)
    assert.is_false(ok)
    assert.is_true(usagi.memory() - base < 4 * MB)
  end)
end)

describe('usagi.memory', function()
  it('counts the bytes of new tensors and drops when they are collected', function()
    collectgarbage(); collectgarbage()
    local m0 = usagi.memory()
    assert.are.equal('integer', math.type(m0))
    local t = usagi.zeros(256, 1024)                  -- 1 MB of f32
    local m1 = usagi.memory()
    assert.is_true(m1 - m0 >= MB and m1 - m0 < MB + 4096, tostring(m1 - m0))
    local d = usagi.zeros(256, 1024, 'f64')           -- 2 MB
    assert.is_true(usagi.memory() - m1 >= 2 * MB)
    t, d = nil, nil
    collectgarbage(); collectgarbage()
    assert.are.equal(m0, usagi.memory())
  end)
end)
