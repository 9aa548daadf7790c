-- run_overhead.lua -- what keeping results costs a run: binary addition's
-- default config (10,000 steps, a metric every 100 steps, a checkpoint
-- every 5000) run by `usagi run` with its directory, results.h5 and
-- checkpoints, against the same run with --no-save (metrics in memory
-- only). Whole processes, alternating, median wall time of each.
--
--   build/usagi scripts/bench/run_overhead.lua [rounds=7] [threads=1]
--   build/usagi scripts/bench/run_overhead.lua 7 1 --set iterations=100000 --checkpoint-every 10000
--   build/usagi scripts/bench/run_overhead.lua 7 1 --checkpoint-every 1000
local usagi = require 'usagi'
local sys = usagi.sys

local rounds = math.tointeger(tonumber(arg[1] or '7')) or 7
local threads = arg[2] or '1'
local extra = table.move(arg, 3, #arg, 1, {})
local exe = sys.exe()
local out = os.tmpname()
os.remove(out)

local function time_run(save, i)
  local argv = { exe, 'run', 'experiments/binary_addition.lua', '--threads', threads, '--seed', '1' }
  if save then
    for _, a in ipairs { '--out', out, '--name', 'r' .. i } do argv[#argv + 1] = a end
  else
    argv[#argv + 1] = '--no-save'
  end
  for _, a in ipairs(extra) do argv[#argv + 1] = a end
  local t0 = sys.monotonic()
  local pid = sys.spawn(argv, { stdout = '/dev/null', stderr = '/dev/null' })
  local _, how, code = sys.wait(pid)
  assert(how == 'exit' and code == 0, 'run failed: ' .. table.concat(argv, ' '))
  return sys.monotonic() - t0
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local plain, saved = {}, {}
for i = 1, rounds do
  if i % 2 == 1 then
    plain[#plain + 1] = time_run(false, i); saved[#saved + 1] = time_run(true, i)
  else
    saved[#saved + 1] = time_run(true, i); plain[#plain + 1] = time_run(false, i)
  end
end
os.execute("rm -rf '" .. out .. "'")
local mp, ms = median(plain), median(saved)
local ratios = {}                            -- each round's pair, run back to back
for i = 1, rounds do ratios[i] = saved[i] / plain[i] end
print(('binary addition, %d rounds, %s thread(s)%s'):format(rounds, threads,
  #extra > 0 and (', ' .. table.concat(extra, ' ')) or ''))
print(('  --no-save          median %.3f s'):format(mp))
print(('  results + ckpts    median %.3f s'):format(ms))
print(('  overhead           %+.1f%% (of the medians), %+.1f%% (median of the rounds\' ratios)')
  :format(100 * (ms / mp - 1), 100 * (median(ratios) - 1)))
print(('  difference         %.1f ms'):format(1e3 * (ms - mp)))
