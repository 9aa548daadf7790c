-- usagi.util -- the small helpers that several files of the Lua library
-- need: keys in a stable order, a test for finite numbers, times for people
-- and for files, and the keys that names in an HDF5 file stand for. One
-- copy here, so a fix reaches every caller; what belongs to one idea (runs,
-- plots, optimizers) stays in that idea's file.
local util = {}

-- sorted_keys(t) -> the keys of t in a list, sorted by their text, so that
-- what is written or printed from a table comes out the same every time.
function util.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- finite(v) -> true when the number v is neither NaN nor infinite.
function util.finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- fmt_time(s) -> seconds as 'mm:ss', or 'h:mm:ss' from an hour on; '--:--'
-- for NaN or infinity (an estimate not known yet).
function util.fmt_time(s)
  if s ~= s or s == math.huge then return '--:--' end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ('%d:%02d:%02d'):format(s // 3600, s % 3600 // 60, s % 60) end
  return ('%02d:%02d'):format(s // 60, s % 60)
end

-- iso(t) -> the time t (seconds since the epoch) in UTC, as ISO 8601.
function util.iso(t) return os.date('!%Y-%m-%dT%H:%M:%SZ', math.floor(t)) end

-- key_of(name) -> the key a name of an HDF5 path stands for: '[3]' is the
-- integer 3 (integer keys are written that way), any other name itself.
function util.key_of(name)
  local i = name:match('^%[(%-?%d+)%]$')
  return i and math.tointeger(tonumber(i)) or name
end

return util
