-- usagi.store -- Lua tables of tensors in HDF5, as torch.save/torch.load
-- keep Lua objects, but in files that h5py reads too.
--
--   usagi.save('model.h5', model:state_dict())
--   model:load_state_dict(usagi.load('model.h5'))
--
-- A table becomes a group; a tensor in it a dataset; a number, string or
-- boolean an attribute of the group. Keys are strings or integers; an
-- integer key k is named "[k]" in the file so it comes back an integer.
-- Nothing in a file is ever run as code: loading only makes tables,
-- tensors and plain values.
local usagi = require 'usagi'

local M = {}

local function name_of(fn, k)
  if math.type(k) == 'integer' then return ('[%d]'):format(k) end
  if type(k) ~= 'string' or k == '' or k == '.' or k:find('/', 1, true) or k:match('^%[%-?%d+%]$') then
    error(('%s: keys must be integers or names without "/", got %q'):format(fn, tostring(k)), 0)
  end
  return k
end

local key_of = require('usagi.util').key_of

local function join(path, name)
  return (path == '/' and '' or path) .. '/' .. name
end

-- write_tree(f, path, t): t under the group path of the open file f.
function M.write_tree(f, path, t, fn, seen)
  fn, seen = fn or 'usagi.save', seen or {}
  if seen[t] then error(fn .. ': the table refers to itself; only trees can be saved', 0) end
  seen[t] = true
  f:group(path)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, name = t[k], name_of(fn, k)
    local kind = type(v)
    if usagi.is_tensor(v) then
      f:write(join(path, name), v)
    elseif kind == 'table' then
      M.write_tree(f, join(path, name), v, fn, seen)
    elseif kind == 'number' or kind == 'string' or kind == 'boolean' then
      f:attr(path, name, v)
    else
      error(('%s: %s holds a %s; only tensors, numbers, strings, booleans and tables can be saved')
        :format(fn, join(path, name), kind), 0)
    end
  end
  seen[t] = nil
end

-- read_tree(f, path) -> the table written by write_tree.
function M.read_tree(f, path)
  local t = {}
  for name, v in pairs(f:attrs(path)) do t[key_of(name)] = v end
  for _, name in ipairs(f:list(path)) do
    local p = join(path, name)
    t[key_of(name)] = f:kind(p) == 'group' and M.read_tree(f, p) or f:read(p)
  end
  return t
end

-- save(path, t [, before_rename]): written to a temporary file beside path
-- and renamed into place, so a crash leaves the old file or the new one,
-- never half. before_rename(tmp), when given, sees the complete file first
-- (a run records its checksum before the file takes its name).
function M.save(path, t, before_rename)
  if type(path) ~= 'string' then error('usagi.save: path must be a string, got ' .. type(path), 2) end
  if type(t) ~= 'table' then error('usagi.save: value must be a table, got ' .. type(t), 2) end
  local tmp = ('%s.tmp-%d'):format(path, usagi.sys.getpid())
  -- The temporary file is made first by hand, so that a directory that
  -- cannot take it says so (HDF5 would only say it cannot create a file).
  local probe, why = io.open(tmp, 'wb')
  if not probe then
    local dir, base = tmp:match('^(.*)/([^/]*)$')
    error(("usagi.save: cannot create '%s' in '%s' (%s)")
      :format(base or tmp, dir or '.', tostring(why):match(': ([^:]*)$') or tostring(why)), 2)
  end
  probe:close()
  local ok, err = pcall(function()
    local f <close> = usagi.h5.open(tmp, 'w')
    M.write_tree(f, '/', t)
  end)
  if ok and before_rename then ok, err = pcall(before_rename, tmp) end
  if ok then ok, err = pcall(usagi.sys.replace, tmp, path) end
  if not ok then
    pcall(usagi.sys.remove, tmp)   -- the first error is the one to tell
    error(err, 2)
  end
end

-- load(path) -> the table save wrote: groups as tables, datasets as
-- tensors, attributes as plain values; never runs code from the file.
function M.load(path)
  if type(path) ~= 'string' then error('usagi.load: path must be a string, got ' .. type(path), 2) end
  local f <close> = usagi.h5.open(path, 'r')
  return M.read_tree(f, '/')
end

return M
