-- rows.lua -- what the side-by-side bench scripts (recurrent.lua, vae.lua)
-- share: a figure printed as the driver reads it, and the process's memory.
--
--   local rows = dofile((arg[0]:match('^(.*)/') or '.') .. '/rows.lua')
local rows = {}

-- one figure: `row <name> <metric> <value>`, flushed at once
function rows.emit(name, metric, fmt, value)
  print(('row %s %s ' .. fmt):format(name, metric, value))
  io.stdout:flush()
end

-- a field of /proc/self/status in MB (VmRSS, VmHWM); NaN where there is none
function rows.status_mb(field)
  local f = io.open('/proc/self/status', 'r')
  if not f then return 0 / 0 end
  local s = f:read('a')
  f:close()
  local kb = s:match(field .. ':%s*(%d+)%s*kB')
  return kb and tonumber(kb) / 1024 or 0 / 0
end

return rows
