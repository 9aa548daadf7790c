-- h5_corrupt_spec.lua -- a corruption corpus: a small results.h5-like file
-- and a checkpoint written by usagi.save, each damaged once per byte, every
-- byte, with that byte flipped (xor with a nonzero value from a seeded
-- generator). Every damaged copy must read back right or give an error
-- that names the file; one that crashes or hangs libhdf5 must be refused by
-- usagi.h5.verify, which reads it in a child first (usagi show, compare and
-- --resume do). Never a crash of the caller, a hang, or wrong numbers.
--
-- One exception is known and counted: variable-length strings (h5py's str,
-- used for string attributes) live in HDF5's global heap, which has no
-- checksum, so a flipped byte there can change a string silently. Such a
-- change is accepted only for a flip inside a global heap collection.
--
-- The flips are read in worker processes (h5_corpus.lua), thousands per
-- process: a fork for each would cost more than the read. When a flip
-- crashes or hangs libhdf5 its worker dies there, the spec checks verify on
-- that copy and starts a new worker after it. USAGI_CORPUS_FLIPS=N reads a
-- seeded sample of N flips of each file instead of all.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local corpus = dofile('tests/lua/h5_corpus.lua')
local sys = usagi.sys

local FLIPS = os.getenv('USAGI_CORPUS_FLIPS') or 'all'
-- Seconds without a verdict before a worker counts as hung in libhdf5. A
-- worker that was only slow (verify then passes the copy) is started
-- again on the same flip with twice the patience.
local stall = 5
local WORKER = 'tests/lua/h5_corpus.lua'

local function size_of(path)
  local f = io.open(path, 'rb')
  if not f then return 0 end
  local n = f:seek('end')
  f:close()
  return n
end

-- Whether process pid has ended (a zombie, not yet waited for).
local function ended(pid)
  local f = io.open('/proc/' .. pid .. '/stat', 'r')
  if not f then return true end
  local stat = f:read('a')
  f:close()
  return stat:match('%) (%a)') == 'Z'
end

-- One worker from flip k on -> its lines, and whether it was stopped for
-- making no progress.
local function run_worker(dir, original, copy, plan, k)
  local out, err = dir .. '/out', dir .. '/err'
  os.remove(out); os.remove(err)
  local pid = sys.spawn({ sys.exe(), WORKER, original, copy, plan, k }, { stdout = out, stderr = err })
  local seen, since, stalled = -1, sys.monotonic(), false
  while not ended(pid) do
    local n = size_of(out)
    if n ~= seen then seen, since = n, sys.monotonic() end
    if sys.monotonic() - since > stall then
      sys.kill(pid, 'KILL')
      stalled = true
      break
    end
    sys.sleep(0.05)
  end
  sys.wait(pid)
  local lines = {}
  for line in io.lines(out) do lines[#lines + 1] = line end
  local text = assert(io.open(err, 'rb')):read('a')
  return lines, stalled, text
end

-- Where AddressSanitizer says a crash was: the first frame outside the
-- sanitizer ("H5HG_read in libhdf5_serial.so.103"), when it said so.
local function crash_site(stderr)
  for fn, where in stderr:gmatch('#%d+ 0x%x+ in (%S+) (%S+)') do
    if not (fn:find('^__interceptor') or where:find('sanitizer', 1, true)) then
      return fn .. ' in ' .. where:gsub('^%(', ''):gsub('%+0x%x+%)$', ''):match('[^/]*$')
    end
  end
end

local function run_corpus(name, make, seed)
  local dir = h.tmpdir()
  local original, copy, plan = dir .. '/original.h5', dir .. '/copy.h5', dir .. '/plan'
  make(original)
  local bytes = assert(io.open(original, 'rb')):read('a')
  local heaps = corpus.global_heaps(bytes)
  local rand = corpus.lcg(seed)
  local flips = {}
  for _, pos in ipairs(corpus.positions(#bytes, rand, FLIPS)) do
    flips[#flips + 1] = { pos, rand() % 255 + 1 }   -- 1..255: never a no-op
  end
  local p = assert(io.open(plan, 'w'))
  for _, f in ipairs(flips) do p:write(f[1], ' ', f[2], '\n') end
  p:close()

  local n = { same = 0, error = 0, strings = 0, crashed = 0, hung = 0, workers = 0, slow = 0 }
  local crashes = {}
  local t0 = sys.monotonic()
  local k = 1
  while k <= #flips do
    local lines, stalled, stderr = run_worker(dir, original, copy, plan, k)
    n.workers = n.workers + 1
    local finished = false
    for _, line in ipairs(lines) do
      if line == 'end' then finished = true; break end
      local i, verdict, msg = line:match('^(%d+) (%a+) ?(.*)$')
      i = assert(math.tointeger(tonumber(i)), line)
      assert.are.equal(k, i, name .. ': the worker skipped a flip')
      local what = ('%s: byte %d xor %d'):format(name, flips[i][1], flips[i][2])
      if verdict == 'wrong' then
        assert.is_true(corpus.in_heap(heaps, flips[i][1]), what .. ' read back wrong values')
        n.strings = n.strings + 1
      elseif verdict == 'unnamed' then
        error(what .. ': an error that does not name the file: ' .. msg, 0)
      else
        assert.is_truthy(verdict == 'same' or verdict == 'error', line)
        n[verdict] = n[verdict] + 1
      end
      k = i + 1
    end
    if not finished then
      -- flip k crashed or hung libhdf5 in the worker: verify must refuse it
      assert.is_true(k <= #flips, name .. ': the worker ended after the last flip: ' .. stderr)
      local pos, x = flips[k][1], flips[k][2]
      local ok, msg = usagi.h5.verify(copy, stalled and stall or 60)
      if ok and stalled then   -- only slow: the same flip again, more patiently
        stall, n.slow = stall * 2, n.slow + 1
        assert.is_true(n.slow <= 3, name .. ': three workers stalled on readable copies')
      else
        assert.is_nil(ok, ('%s: byte %d xor %d crashes the reader, and verify passed it')
          :format(name, pos, x))
        assert.is_truthy(msg:find(copy, 1, true), msg)
        if stalled then
          n.hung = n.hung + 1
        else
          n.crashed = n.crashed + 1
          -- a crash in usagi's own code is a defect, not a damaged file
          local site = crash_site(stderr)
          assert.is_truthy(not site or site:find('libhdf5', 1, true),
            ('%s: byte %d xor %d crashed outside libhdf5: %s'):format(name, pos, x, stderr))
          crashes[#crashes + 1] = ('%d xor %d%s'):format(pos, x, site and ' (' .. site .. ')' or '')
        end
        k = k + 1
      end
    end
  end
  h.rmrf(dir)
  print(('\n# %s: %d bytes, %d flips in %d workers: %d errors, %d read back the same, '
    .. '%d strings changed in the global heap, %d crashed libhdf5%s, %d hung it; '
    .. 'verify refused each crash and hang (%.1f s)')
    :format(name, #bytes, #flips, n.workers, n.error, n.same, n.strings, n.crashed,
      #crashes > 0 and ' (at ' .. table.concat(crashes, ', ') .. ')' or '', n.hung,
      sys.monotonic() - t0))
  assert.are.equal(#flips, n.same + n.error + n.strings + n.crashed + n.hung)
end

describe('a flipped byte anywhere', function()
  it('in a results file reads back right or is an error, never wrong values', function()
    run_corpus('results', corpus.results_like, 1)
  end)
  it('in a checkpoint reads back right or is an error, never wrong values', function()
    run_corpus('checkpoint', corpus.checkpoint, 2)
  end)
end)
