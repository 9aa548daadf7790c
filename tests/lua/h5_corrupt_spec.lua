-- h5_corrupt_spec.lua -- a corruption corpus: a small results.h5-like file
-- and a checkpoint written by usagi.save, each copied once per byte with
-- that byte flipped (xor with a nonzero value from a seeded generator).
-- For every copy usagi.h5.verify must answer (true, or nil and a message),
-- and when it says true, reading everything in this process must give the
-- right values or an error: never a crash, a hang, or wrong numbers.
--
-- One exception is known and counted: variable-length strings (h5py's str,
-- used for string attributes) live in HDF5's global heap, which has no
-- checksum, so a flipped byte there can change a string silently. Such a
-- change is accepted only for a flip inside a global heap collection.
--
-- Each verify forks a child (a few ms, far more on a loaded machine), so
-- the results file's positions are a sample: 300 distinct positions drawn
-- by the seeded generator; the checkpoint's are all of its bytes
-- (USAGI_CORPUS_FLIPS=all or =N sets both). The spec
-- prints how many flips gave an error, how many were harmless and how many
-- crashed or hung libhdf5 in verify's child. Every byte of the results file
-- (USAGI_CORPUS_FLIPS=all, 24995 flips, 929 s on a loaded 2-core machine):
-- 19514 errors, 5451 harmless, 13 strings changed in the global heap, 13
-- crashes (all in the sizes of heap objects) and 4 hangs past 20 s, each
-- taken by verify's child; no wrong number.
local usagi = require 'usagi'
local h5 = usagi.h5

-- A seeded generator (a 32-bit LCG): the same flips on every run.
local function lcg(seed)
  local x = seed
  return function()
    x = (1103515245 * x + 12345) % 2147483648
    return x
  end
end

-- Everything in the file as one string: the tree, every attribute and
-- every value, in a fixed order. Errors propagate.
local function dump(path)
  local f <close> = h5.open(path, 'r')
  local out = {}
  local function put(...) for _, v in ipairs { ... } do out[#out + 1] = tostring(v) end end
  local function attrs(p)
    local a = f:attrs(p)
    local names = {}
    for k in pairs(a) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = a[k]
      if usagi.is_tensor(v) then v = table.concat(v:totable(), ',') end
      if type(v) == 'table' then v = table.concat(v, ',') end
      put('@', p, k, type(v), v)
    end
  end
  local function walk(p)
    attrs(p)
    for _, name in ipairs(f:list(p)) do
      local c = (p == '/' and '' or p) .. '/' .. name
      local kind = f:kind(c)
      put(kind, c)
      if kind == 'group' then
        walk(c)
      elseif kind == 'dataset' then
        if f:dtype(c) == 'string' then
          put(table.concat(f:read_strings(c), ','))
        else
          local t = f:read(c)
          put(t:dtype(), table.concat(t:size(), 'x'), table.concat(t:reshape(t:numel()):totable(), ','))
        end
        attrs(c)
      end
    end
  end
  walk('/')
  return table.concat(out, '\n')
end

local function results_like(path)
  local f <close> = h5.open(path, 'w')
  f:attr('/', 'usagi_version', '0.1.0')
  f:attr('/', 'seed', 7)
  f:attr('/', 'threads', 2)
  f:attr('/', 'smoke', true)
  f:group('/config')
  f:attr('/config', 'hidden', 16)
  f:attr('/config', 'lr', 0.5)
  f:attr('/config', 'name', 'ptb')
  for i = 1, 20 do
    f:append('/metrics/loss', 1 / i)
    f:append('/metrics/step', i)
  end
  f:write('/params/w', usagi.arange(1, 21):float():reshape(4, 5))
  f:write('/params/b', usagi.arange(1, 6):float() * 0.25)
end

local function checkpoint(path)
  usagi.save(path, {
    step = 40,
    model = { weight = usagi.arange(1, 13):float():reshape(3, 4), bias = usagi.zeros(3) },
    optim = { lr = 0.1, momentum = 0.9, state = { ['1'] = usagi.ones(3, 4) } },
    rng = { state = usagi.arange(1, 5):int() },
  })
end

-- The checkpoint (2197 bytes) has every byte flipped; the results file
-- (24995 bytes, most of them HDF5's own structures) a seeded sample of 300,
-- unless USAGI_CORPUS_FLIPS says otherwise for both.
local FLIPS = os.getenv('USAGI_CORPUS_FLIPS')

-- The positions (0-based) to flip: all, or a seeded sample without
-- repeats, in increasing order.
local function positions(size, rand, flips)
  local all = {}
  for i = 0, size - 1 do all[#all + 1] = i end
  local k = flips == 'all' and size or math.min(size, math.tointeger(tonumber(flips)) or 300)
  for i = 1, k do   -- a partial Fisher-Yates shuffle
    local j = i + rand() % (size - i + 1)
    all[i], all[j] = all[j], all[i]
  end
  local pick = table.move(all, 1, k, 1, {})
  table.sort(pick)
  return pick
end

-- The byte ranges [from, to) of the global heap collections ("GCOL" and
-- an 8-byte little-endian size at offset 8).
local function global_heaps(bytes)
  local r, at = {}, 1
  while true do
    local i = bytes:find('GCOL', at, true)
    if not i then return r end
    local size = string.unpack('<I8', bytes, i + 8)
    r[#r + 1] = { i - 1, i - 1 + size }
    at = i + 4
  end
end

local function in_heap(heaps, pos)
  for _, r in ipairs(heaps) do if pos >= r[1] and pos < r[2] then return true end end
  return false
end

local function corpus(name, make, seed, flips)
  local path, bad = os.tmpname(), os.tmpname()
  make(path)
  local want = dump(path)
  local bytes = assert(io.open(path, 'rb')):read('a')
  local rand = lcg(seed)
  local n = { error = 0, harmless = 0, crashed = 0, hung = 0, caught = 0, strings = 0 }
  local heaps, crashes = global_heaps(bytes), {}
  local t0 = usagi.sys.monotonic()
  local where = positions(#bytes, rand, flips)
  for _, i in ipairs(where) do
    i = i + 1
    local x = rand() % 255 + 1   -- 1..255: never a no-op
    local o = assert(io.open(bad, 'wb'))
    o:write(bytes:sub(1, i - 1), string.char(bytes:byte(i) ~ x), bytes:sub(i + 1))
    o:close()
    local ok, msg = h5.verify(bad, 20)
    if ok then
      local rok, got = pcall(dump, bad)
      if rok and got ~= want then
        assert.is_true(in_heap(heaps, i - 1),
          ('%s: byte %d xor %d read back wrong values'):format(name, i - 1, x))
        n.strings = n.strings + 1
      elseif rok then
        n.harmless = n.harmless + 1
      else
        n.caught = n.caught + 1   -- verify passed, the read still refused it
      end
    else
      assert.is_string(msg)
      assert.is_truthy(msg:find(bad, 1, true), msg)
      -- under AddressSanitizer a crash is the child's report and exit
      if msg:find('crashed', 1, true) or msg:find('without an answer', 1, true) then
        n.crashed = n.crashed + 1
        crashes[#crashes + 1] = ('%d xor %d'):format(i - 1, x)
      elseif msg:find('did not finish', 1, true) then n.hung = n.hung + 1
      else n.error = n.error + 1 end
    end
  end
  os.remove(path); os.remove(bad)
  print(('\n# %s: %d bytes, %d flips: %d errors, %d harmless, %d read errors after verify ok, '
    .. '%d strings changed in the global heap, %d crashed libhdf5 in the child%s, %d hung (%.1f s)')
    :format(name, #bytes, #where, n.error, n.harmless, n.caught, n.strings, n.crashed,
      #crashes > 0 and ' (at ' .. table.concat(crashes, ', ') .. ')' or '', n.hung,
      usagi.sys.monotonic() - t0))
  return n
end

describe('a flipped byte anywhere', function()
  it('in a results file is an error or harmless, never wrong values', function()
    corpus('results', results_like, 1, FLIPS or '300')
  end)
  it('in a checkpoint is an error or harmless, never wrong values', function()
    corpus('checkpoint', checkpoint, 2, FLIPS or 'all')
  end)
end)
