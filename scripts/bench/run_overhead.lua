-- run_overhead.lua -- what keeping results costs a run: binary addition's
-- default config (10,000 steps, a metric every 100 steps, a checkpoint
-- every 5000) run by `usagi run` with its directory, results.h5 and
-- checkpoints, against the same run with --no-save (metrics in memory
-- only). Two measures, both medians over the rounds:
--
--  * whole processes, saved and --no-save alternating: wall time of each,
--    and the median of each round's ratio. On this machine a process's
--    speed swings by several percent with where its heap lands, which is
--    as large as the effect; read this as a check on the second measure.
--  * inside the saved process: the wall time spent in what saving adds --
--    making the directory and results.h5 (run.open), writing metrics
--    (Run:log), checkpoints (Run:checkpoint) and the end (Run:finish) --
--    as a share of the whole run. Run:log's in-memory bookkeeping, which
--    a --no-save run does too, is counted, so this is an upper bound.
--
--   build/usagi scripts/bench/run_overhead.lua [rounds=7] [threads=1] [run options...]
--   build/usagi scripts/bench/run_overhead.lua 7 1 --set iterations=100000 --checkpoint-every 10000
--   build/usagi scripts/bench/run_overhead.lua 7 1 --checkpoint-every 1000
local usagi = require 'usagi'
local sys = usagi.sys

-- ==== Inside a run: `run_overhead.lua --account RUN ARGS...` ============
-- Times the run's saving calls and prints one line: the milliseconds in
-- each, and the whole.
if arg[1] == '--account' then
  local runm = require 'usagi.run'
  local spent, calls = {}, {}
  local function account(tbl, name, label)
    local f = tbl[name]
    spent[label], calls[label] = 0, 0
    tbl[name] = function(...)
      local t0 = sys.monotonic()
      local r = table.pack(f(...))
      spent[label] = spent[label] + sys.monotonic() - t0
      calls[label] = calls[label] + 1
      return table.unpack(r, 1, r.n)
    end
  end
  account(runm, 'open', 'open')
  account(runm.Run, 'log', 'log')
  account(runm.Run, 'checkpoint', 'checkpoint')
  account(runm.Run, 'finish', 'finish')
  local t0 = sys.monotonic()
  local code = require('usagi.cli').main('run', table.move(arg, 2, #arg, 1, {}))
  local whole = sys.monotonic() - t0
  assert(code == 0, 'the run failed')
  local parts = {}
  for _, k in ipairs { 'open', 'log', 'checkpoint', 'finish' } do
    parts[#parts + 1] = ('%s=%.6f/%d'):format(k, spent[k], calls[k])
  end
  print(('whole=%.6f %s'):format(whole, table.concat(parts, ' ')))
  return
end

local rounds = math.tointeger(tonumber(arg[1] or '7')) or 7
local threads = arg[2] or '1'
local extra = table.move(arg, 3, #arg, 1, {})
local exe = sys.exe()
local here = arg[0]
local out = os.tmpname()
os.remove(out)

-- One process; returns its wall time and, for a saved run, what it spent
-- in each saving call.
local function time_run(save, i)
  local argv = { exe }
  if save then
    for _, a in ipairs { here, '--account', 'experiments/binary_addition.lua', '--out', out, '--name', 'r' .. i } do
      argv[#argv + 1] = a
    end
  else
    for _, a in ipairs { 'run', 'experiments/binary_addition.lua', '--no-save' } do argv[#argv + 1] = a end
  end
  for _, a in ipairs { '--threads', threads, '--seed', '1' } do argv[#argv + 1] = a end
  for _, a in ipairs(extra) do argv[#argv + 1] = a end
  local report = os.tmpname()
  local t0 = sys.monotonic()
  local pid = sys.spawn(argv, { stdout = report, stderr = '/dev/null' })
  local _, how, code = sys.wait(pid)
  local wall = sys.monotonic() - t0
  assert(how == 'exit' and code == 0, 'run failed: ' .. table.concat(argv, ' '))
  local f = io.open(report)
  local text = f:read('a')
  f:close()
  os.remove(report)
  if not save then return wall end
  local parts = { whole = tonumber(text:match('whole=([%d.]+)')) }
  for k, s, n in text:gmatch('(%a+)=([%d.]+)/(%d+)') do parts[k] = { s = tonumber(s), n = tonumber(n) } end
  return wall, parts
end

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local plain, saved, inside = {}, {}, {}
for i = 1, rounds do
  local w, parts
  if i % 2 == 1 then
    plain[i] = time_run(false, i); w, parts = time_run(true, i)
  else
    w, parts = time_run(true, i); plain[i] = time_run(false, i)
  end
  saved[i], inside[i] = w, parts
end
os.execute("rm -rf '" .. out .. "'")

local mp, ms = median(plain), median(saved)
local ratios = {}                            -- each round's pair, run back to back
for i = 1, rounds do ratios[i] = saved[i] / plain[i] end
print(('binary addition, %d rounds, %s thread(s)%s'):format(rounds, threads,
  #extra > 0 and (', ' .. table.concat(extra, ' ')) or ''))
print('whole processes:')
print(('  --no-save          median %.3f s'):format(mp))
print(('  results + ckpts    median %.3f s'):format(ms))
print(('  overhead           %+.1f%% (of the medians), %+.1f%% (median of the rounds\' ratios)')
  :format(100 * (ms / mp - 1), 100 * (median(ratios) - 1)))
print('inside the saved run (medians):')
local shares, total = {}, {}
for i = 1, rounds do
  local p = inside[i]
  total[i] = p.open.s + p.log.s + p.checkpoint.s + p.finish.s
  shares[i] = total[i] / p.whole
end
for _, k in ipairs { 'open', 'log', 'checkpoint', 'finish' } do
  local s, per = {}, {}
  for i = 1, rounds do
    s[i] = inside[i][k].s
    per[i] = inside[i][k].n > 0 and inside[i][k].s / inside[i][k].n or 0
  end
  print(('  %-11s %5d calls  %8.2f ms  (%.3f ms per call)'):format(k, inside[1][k].n, 1e3 * median(s), 1e3 * median(per)))
end
print(('  all of them        %8.2f ms = %.2f%% of the run'):format(1e3 * median(total), 100 * median(shares)))
