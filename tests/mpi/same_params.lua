-- usagi tests/mpi/same_params.lua RUN_A RUN_B exact|RTOL ATOL
-- Compares /params (and, with exact, /metrics) of two runs' results.h5:
-- bit for bit, or |a - b| <= ATOL + RTOL |b| elementwise. Prints the worst
-- difference of each parameter; exits 1 when any is out of tolerance.
local store = require 'usagi.store'
local dir_a, dir_b, mode, atol = arg[1], arg[2], arg[3], tonumber(arg[4] or '0')
local exact = mode == 'exact'
local rtol = tonumber(mode or '')
if not (dir_a and dir_b and (exact or rtol)) then
  io.stderr:write('usage: usagi same_params.lua RUN_A RUN_B exact|RTOL ATOL\n'); os.exit(2)
end
local function tree(dir, group)
  local f <close> = usagi.h5.open(dir .. '/results.h5', 'r')
  if not f:exists(group) then error(dir .. ': no ' .. group .. ' in results.h5', 0) end
  return store.read_tree(f, group), f:attrs('/')
end
local a, attrs_a = tree(dir_a, '/params')
local b, attrs_b = tree(dir_b, '/params')
local bad, n = 0, 0
local names = {}
for k in pairs(a) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do
  local x, y = a[k], b[k]
  n = n + 1
  if not y then print(k .. ': missing in ' .. dir_b); bad = bad + 1
  else
    local diff = (x:double() - y:double()):abs():max():item()
    local ok = exact and usagi.equal(x, y) or (not exact and usagi.allclose(x, y, rtol, atol))
    print(('%-24s max |a - b| %.3g  %s'):format(k, diff, ok and 'ok' or 'DIFFERS'))
    if not ok then bad = bad + 1 end
  end
end
if exact then
  local ma, mb = tree(dir_a, '/metrics'), tree(dir_b, '/metrics')
  for k, v in pairs(ma) do
    if not mb[k] or not usagi.equal(v, mb[k]) then print('metric ' .. k .. ' DIFFERS'); bad = bad + 1 end
  end
end
print(('%s (ranks %s) vs %s (ranks %s): %d parameters%s, %d differences'):format(dir_a,
  tostring(attrs_a.ranks), dir_b, tostring(attrs_b.ranks), n, exact and ' and the metrics' or '', bad))
if n == 0 or bad > 0 then os.exit(1) end
