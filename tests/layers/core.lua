-- tests/layers/core.lua -- checks that the tensor core keeps to its layer
-- (DESIGN.md, Layers), from what the linker sees rather than from reading
-- the sources:
--   * its sources depend one way: no file of host/core calls a function
--     of a file that, directly or not, calls back into it (nm over the
--     objects; an undefined symbol of one object defined in another is an
--     edge);
--   * libusagi links no zlib and holds no image code (readelf -d and nm -D
--     over the library; canvases and PNG are libusagi_image's).
-- Run by ctest inside the usagi executable:
--   usagi core.lua <nm> <readelf> <libusagi.so> <object.o>...
local nm, readelf, lib = arg[1], arg[2], arg[3]
local objects = table.pack(table.unpack(arg, 4))

local function lines(cmd)
  local f = assert(io.popen(cmd .. ' 2>&1'))
  local out = f:read 'a'
  local ok = f:close()
  if not ok then io.stderr:write(cmd, ' failed:\n', out); os.exit(1) end
  return out:gmatch '[^\n]+'
end

local failures = 0
local function fail(msg) io.stderr:write('FAIL: ', msg, '\n'); failures = failures + 1 end

-- ==== One way between the core's sources =================================

local defined, needs, names = {}, {}, {}
local function short(o) return o:match '([^/]+)%.c%.o$' or o:match '([^/]+)%.o$' or o end
for i = 1, objects.n do
  names[i] = short(objects[i])
  needs[names[i]] = {}
end
-- One nm for every object: each line is "<object>: <symbol> <kind> ...".
for l in lines(nm .. ' -A -P ' .. table.concat(objects, ' ')) do
  local o, sym, kind = l:match '^(.-): (%S+) (%a)'
  local name = o and short(o)
  if name and needs[name] then
    if kind == 'U' then needs[name][#needs[name] + 1] = sym
    elseif kind:match '[TDBR]' then defined[sym] = name end
  end
end
local edges = {}   -- edges[a][b] = a symbol of b that a calls
for _, a in ipairs(names) do
  edges[a] = {}
  for _, sym in ipairs(needs[a]) do
    local b = defined[sym]
    if b and b ~= a then edges[a][b] = edges[a][b] or sym end
  end
end
-- Peel off files that call no remaining file and files no remaining file
-- calls; what is left lies on a loop.
local left, changed = {}, true
for _, a in ipairs(names) do left[a] = true end
while changed do
  changed = false
  local called = {}
  for a in pairs(left) do
    for b in pairs(edges[a]) do if left[b] then called[b] = true end end
  end
  for a in pairs(left) do
    local calls = false
    for b in pairs(edges[a]) do if left[b] then calls = true break end end
    if not calls or not called[a] then left[a] = nil; changed = true end
  end
end
if next(left) then
  local parts = {}
  for a in pairs(left) do
    for b, sym in pairs(edges[a]) do
      if left[b] then parts[#parts + 1] = ('%s -> %s (%s)'):format(a, b, sym) end
    end
  end
  table.sort(parts)
  fail('the core\'s sources call each other in a loop:\n  ' .. table.concat(parts, '\n  '))
end
assert(#names > 5, 'expected the core\'s objects, got ' .. #names)

-- ==== No zlib, no image code in libusagi ==================================

for l in lines(readelf .. ' -d ' .. lib) do
  local so = l:match 'NEEDED.-%[(.-)%]'
  if so and so:match '^libz%.' then fail('libusagi links ' .. so .. ' (zlib belongs to libusagi_image)') end
end
for l in lines(nm .. ' -D --defined-only ' .. lib) do
  local sym = l:match '(usg_%w+_png)$' or l:match '(usg_image_%w+)$' or l:match '(usg_font_%w+)$'
  if sym then fail('libusagi exports ' .. sym .. ' (image code belongs to libusagi_image)') end
end

if failures > 0 then os.exit(1) end
print(('ok: %d core objects depend one way; libusagi links no zlib'):format(#names))
