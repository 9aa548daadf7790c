-- usagi.run_ship -- files between the ranks of a job that share no
-- filesystem. usagi needs none: rank 0 owns the run directory; what the
-- other ranks need from it (the checkpoint a --resume starts from, or the
-- config of a run that stopped before its first one) is broadcast to them
-- as bytes, and what they make (a sweep's runs on other machines) is sent
-- back to rank 0, which writes it under its own --out. On a shared
-- filesystem the files rank 0 would write are already there with the same
-- bytes, and are left alone.
local usagi = require 'usagi'
local sys = usagi.sys

local M = {}

-- read_file(path) -> its bytes, or nil and the system's reason
function M.read_file(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local bytes = f:read('a')
  f:close()
  return bytes
end

-- write_file(path, bytes): written aside, synced and renamed over path, so
-- a reader never sees half of it; raises naming the file and the reason.
function M.write_file(path, bytes)
  local tmp = ('%s.tmp-%d'):format(path, sys.getpid())
  local f, err = io.open(tmp, 'wb')
  local ok = f and f:write(bytes)
  if f then
    local closed, cerr = f:close()
    if ok and not closed then ok, err = nil, cerr end
  end
  if not ok then
    pcall(sys.remove, tmp)
    error(('%s: %s'):format(path, tostring(err)), 0)
  end
  sys.replace(tmp, path)
end

-- ==== A run directory as bytes ===========================================

-- The files under dir (relative names, sorted), without the subdirectories
-- named in skip.
local function files_under(dir, skip, prefix, out)
  for _, name in ipairs(sys.listdir(dir)) do
    local rel = prefix and (prefix .. '/' .. name) or name
    local kind = sys.kind(dir .. '/' .. name)
    if kind == 'directory' and not skip[rel] then files_under(dir .. '/' .. name, skip, rel, out)
    elseif kind == 'file' then out[#out + 1] = rel end
  end
  return out
end

-- pack(path [, skip]) -> the bytes of a file, or of every file under a
-- directory but those in the subdirectories named in skip ({checkpoints =
-- true}); '' when path is missing (a run that failed before it made its
-- directory: rank 0 then lists it as unreadable).
function M.pack(path, skip)
  local kind, parts = sys.kind(path), {}
  local names = kind == 'directory' and files_under(path, skip or {}, nil, {}) or kind == 'file' and { '' } or {}
  for _, rel in ipairs(names) do
    local bytes = M.read_file(rel == '' and path or path .. '/' .. rel)
    if bytes then parts[#parts + 1] = string.pack('<s4s8', rel, bytes) end
  end
  return table.concat(parts)
end

-- unpack(bytes, path) -> the number of files written: pack's files under
-- path (path itself for a single file), each one that is not already there
-- with the same bytes (a shared filesystem), made whole or not at all.
function M.unpack(bytes, path)
  local at, written = 1, 0
  while at <= #bytes do
    local rel, data
    rel, data, at = string.unpack('<s4s8', bytes, at)
    if ('/' .. rel .. '/'):find('/%.%./') or rel:sub(1, 1) == '/' then
      error(('run_ship.unpack: a file name inside %s expected, got %q'):format(path, rel), 0)
    end
    local target = rel == '' and path or path .. '/' .. rel
    if M.read_file(target) ~= data then
      local parent = target:match('^(.*)/[^/]*$')
      if parent then sys.mkdir(parent) end
      M.write_file(target, data)
      written = written + 1
    end
  end
  return written
end

-- gather(dist, items) -> the files rank 0 wrote: for each {owner =, path
-- =[, skip =]} with owner > 0, that rank packs path and every rank
-- takes the bytes (a broadcast: every rank calls gather with the same
-- items, in the same order); rank 0 unpacks them at the same path under
-- its own filesystem.
function M.gather(dist, items)
  local rank, written = dist.rank(), 0
  for _, it in ipairs(items) do
    if it.owner ~= 0 then
      local bytes = dist.broadcast_bytes(rank == it.owner and M.pack(it.path, it.skip) or nil, it.owner)
      if rank == 0 then written = written + M.unpack(bytes, it.path) end
    end
  end
  return written
end

-- ==== What a resumed rank needs ==========================================

-- shipment(self) -> kind, bytes: at rank 0, after ckpt.resume, what the
-- other ranks need to resume: the checkpoint it chose, or, when the run
-- stopped before its first one, its results.h5 (its config and seed); read
-- now, before this run writes results.h5 again.
function M.shipment(self)
  local kind = self.resume_from and 'checkpoint' or 'results'
  local path = kind == 'checkpoint' and self.last_checkpoint or self.dir .. '/results.h5'
  local bytes, err = M.read_file(path)
  if not bytes then error(('usagi run: --resume %s: cannot read %s to send to the other ranks (%s)')
    :format(self.dir, path, tostring(err)), 0) end
  return kind, bytes
end

-- receive(kind, bytes, load) -> what load(path) gives for the shipped file,
-- written to a private temporary place and removed after (on a rank that
-- cannot see rank 0's files), or nil and the reason.
function M.receive(kind, bytes, load)
  local dir = os.tmpname()
  pcall(sys.remove, dir)
  local ok, made = pcall(sys.mkdir, dir, true)
  if not ok or not made then return nil, 'cannot make a temporary directory ' .. dir end
  local path = dir .. (kind == 'checkpoint' and '/checkpoint.h5' or '/results.h5')
  local got, tree = pcall(function()
    M.write_file(path, bytes)
    return load(path, dir)
  end)
  pcall(sys.remove, path)
  pcall(sys.remove, dir)
  if not got then return nil, tostring(tree) end
  return tree
end

-- ==== The same config on every rank =====================================

-- config_text(v) -> v as text on one line, the same for equal values
-- (keys sorted, numbers exact); a function shows as its type alone.
local function config_text(v)
  local t = type(v)
  if t == 'number' or t == 'string' then return (('%q'):format(v):gsub('\n', 'n')) end
  if t ~= 'table' then return t == 'boolean' and tostring(v) or t end
  local keys, parts = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. config_text(v[k]) end
  return '{' .. table.concat(parts, ', ') .. '}'
end

-- lines(cfg) -> one line "key value" per top-level key, sorted
local function lines(cfg)
  local keys, out = {}, {}
  for k in pairs(cfg) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = k .. ' ' .. config_text(cfg[k]) end
  return table.concat(out, '\n')
end
M.config_lines = lines

-- same_config(self): a collective; raises on a rank whose config is not
-- rank 0's, naming the first key that differs. Each machine builds the
-- config from its own copy of the script: a different copy (an edit made
-- on one machine) must not train another model, or fail later in an MPI
-- call whose shapes do not match.
function M.same_config(self)
  local mine = lines(type(self.config) == 'table' and self.config or {})
  local theirs = self.dist.broadcast_string(self.rank == 0 and mine or nil, 0)
  if self.rank == 0 or theirs == mine then return end
  local function by_key(text)
    local m = {}
    for line in (text .. '\n'):gmatch('([^\n]*)\n') do
      local k, v = line:match('^(%S+) (.*)$')
      if k then m[k] = v end
    end
    return m
  end
  local a, b, keys = by_key(mine), by_key(theirs), {}
  for k in pairs(a) do keys[#keys + 1] = k end
  for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys)
  local what = '?'
  for _, k in ipairs(keys) do
    if a[k] ~= b[k] then
      what = ('%s: %s here, %s on rank 0'):format(k, a[k] or 'none', b[k] or 'none')
      break
    end
  end
  error(('usagi run: rank %d has another config than rank 0 (%s); every machine must run the same '
    .. 'script with the same options'):format(self.rank, what), 0)
end

return M
