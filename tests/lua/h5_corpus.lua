-- h5_corpus.lua -- the pieces of the HDF5 corruption corpus
-- (h5_corrupt_spec.lua), and its worker.
--
-- Required as a module it gives the files the corpus damages and the way it
-- reads them. Run as a script,
--
--   usagi tests/lua/h5_corpus.lua ORIGINAL COPY PLAN FROM
--
-- it is the worker: PLAN holds one flip per line ("position xor", 0-based
-- position); for flips FROM.. it damages COPY (a copy of ORIGINAL) at that
-- byte, reads the whole file in this process and prints one line per flip,
-- "k verdict", then "end". A flip that crashes or hangs libhdf5 ends the
-- worker there with COPY still damaged, and the spec learns which flip it
-- was from the last line printed.
local usagi = require 'usagi'
local h5 = usagi.h5

local M = {}

-- A seeded generator (a 32-bit LCG): the same flips on every run.
function M.lcg(seed)
  local x = seed
  return function()
    x = (1103515245 * x + 12345) % 2147483648
    return x
  end
end

-- Everything in the file as one string: the tree, every attribute and
-- every value, in a fixed order. Errors propagate.
function M.dump(path)
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

-- A file shaped like a run's results.h5: provenance and config attributes
-- (numbers, a boolean, strings), appended metrics and parameters.
function M.results_like(path)
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

-- A checkpoint as usagi.save writes one: nested tables of tensors and
-- numbers.
function M.checkpoint(path)
  usagi.save(path, {
    step = 40,
    model = { weight = usagi.arange(1, 13):float():reshape(3, 4), bias = usagi.zeros(3) },
    optim = { lr = 0.1, momentum = 0.9, state = { ['1'] = usagi.ones(3, 4) } },
    rng = { state = usagi.arange(1, 5):int() },
  })
end

-- The positions (0-based) to flip: all ('all'), or a seeded sample of n
-- without repeats, in increasing order.
function M.positions(size, rand, flips)
  local all = {}
  for i = 0, size - 1 do all[#all + 1] = i end
  local k = flips == 'all' and size or math.min(size, math.tointeger(tonumber(flips)) or size)
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
function M.global_heaps(bytes)
  local r, at = {}, 1
  while true do
    local i = bytes:find('GCOL', at, true)
    if not i then return r end
    local size = string.unpack('<I8', bytes, i + 8)
    r[#r + 1] = { i - 1, i - 1 + size }
    at = i + 4
  end
end

function M.in_heap(heaps, pos)
  for _, r in ipairs(heaps) do if pos >= r[1] and pos < r[2] then return true end end
  return false
end

-- The worker. A verdict is 'same' (read back right), 'wrong' (read back
-- other values), 'error' (refused with a message that names the file) or
-- 'unnamed' followed by a message that does not name it.
local function work(original, copy, plan, from)
  local want = M.dump(original)
  local bytes = assert(io.open(original, 'rb')):read('a')
  local o = assert(io.open(copy, 'wb'))
  assert(o:write(bytes))
  assert(o:close())
  local flips = {}
  for line in io.lines(plan) do
    local pos, x = line:match('^(%d+) (%d+)$')
    flips[#flips + 1] = { tonumber(pos), tonumber(x) }
  end
  local f = assert(io.open(copy, 'r+b'))
  f:setvbuf('no')
  io.stdout:setvbuf('line')
  local last
  for k = from, #flips do
    if last then assert(f:seek('set', last)); assert(f:write(bytes:sub(last + 1, last + 1))) end
    local pos, x = flips[k][1], flips[k][2]
    assert(f:seek('set', pos))
    assert(f:write(string.char(bytes:byte(pos + 1) ~ x)))
    last = pos
    local ok, got = pcall(M.dump, copy)
    if ok then
      io.stdout:write(k, got == want and ' same\n' or ' wrong\n')
    elseif type(got) == 'string' and got:find(copy, 1, true) then
      io.stdout:write(k, ' error\n')
    else
      io.stdout:write(k, ' unnamed ', tostring(got):gsub('\n', ' '), '\n')
    end
  end
  f:close()
  io.stdout:write('end\n')
end

if select('#', ...) == 4 then
  local original, copy, plan, from = ...
  work(original, copy, plan, math.tointeger(tonumber(from)))
  return
end
return M
