-- usagi.cli -- the commands of the usagi executable besides the
-- interpreter: run, sweep, show, compare and plot. host/cli/main.c hands
-- `usagi <command> args...` to main(command, args) and exits with the code
-- it returns (0 ok, 1 failed, 2 bad usage).
local usagi = require 'usagi'
local store = require 'usagi.store'
local cmp = require 'usagi.compare'
local sys = usagi.sys

local M = {}

M.commands_help = [[
usagi run SCRIPT.lua [options]       a reproducible run: runs/<experiment>/<run-id>/
usagi sweep SCRIPT.lua --grid k=a,b [--grid ...] [--seeds 1,2,3] [-j N] [options]
                                     one run per combination, then a table
usagi show RUN_DIR|FILE.h5           config, provenance and metrics of a run
usagi compare RUN_DIR... [--each]    differing config keys, final metrics (mean ± std
                                     over seeds)
usagi plot RUN_DIR... [--metric NAME]... [--x step|epoch|seconds] [--logy] [--smooth W]
           -o FILE.svg|FILE.png      metric curves, runs overlaid
usagi data list|get|verify|path [NAME...]  the data sets: download, import, check
usagi infer RUN_DIR [INPUT...]       the run's trained model answers each input
`usagi run SCRIPT.lua --help` lists the options and the script's config keys.]]

-- `usagi COMMAND --help`
local help = {
  run = [==[
usagi run SCRIPT.lua [--seed N] [--set key=value]... [--smoke] [--out DIR]
                     [--name NAME] [--threads N] [--checkpoint-every N]
                     [--checkpoint-epochs N] [--keep K] [--best METRIC[:min|max]]
                     [--no-save] [--resume RUN_DIR]
A reproducible run of an experiment script: runs/<experiment>/<run-id>/ gets
results.h5 (provenance, config, metrics, final parameters), run.log and
checkpoints/. `usagi run SCRIPT.lua --help` lists the script's config keys.
`mpirun -np N usagi run SCRIPT.lua ...` makes N ranks of one data-parallel run
(the gradients averaged over the ranks, rank 0 writes; --dist-check,
--bucket-mb X).]==],
  sweep = [[
usagi sweep SCRIPT.lua --grid key=v1,v2,... [--grid ...] [--seeds 1,2,3] [-j N]
                       [run options]
One run per combination of the grids (the first key varies slowest), N at a
time with the machine's threads shared between them, each its own run named
<stamp>_<key=value,...>; their output goes to runs/<experiment>/sweep-<stamp>.log.
Ends with the table of `usagi compare`. --seeds (or --grid seed=...) runs each
combination once per seed, and the table then gives mean ± std over the seeds,
with n. Other options (--smoke, --seed, --set, --out, --threads, ...) pass to
every run. Example:
  usagi sweep experiments/binary_addition.lua --grid activation=sigmoid,tanh,relu \
      --grid init=normal,xavier,he --seeds 1,2,3 -j 2
Under MPI, `mpirun -np R usagi sweep ...` deals the combinations out to the
R ranks (combination i to rank (i-1) % R; each runs whole runs, -j at a
time, on its share of its machine's cores); their runs come back to rank 0
(no shared filesystem needed), which prints the table.]],
  show = [[
usagi show RUN_DIR|FILE.h5
The provenance (status, times, commit, seed, threads, BLAS, plugins, host,
command line), the config and, per metric, the last, min and max values.]],
  compare = [[
usagi compare RUN_DIR... [--each]
One row per run: its experiment, the config keys whose values differ between
the runs (and the seed), the last value of every metric, and the status; "-"
marks a value a run does not have. Runs that differ only in their seed (a
sweep with --seeds) share one row: mean ± std of each metric over the seeds
that finished, with n. --each gives every run its own row all the same.]],
  plot = [[
usagi plot RUN_DIR... [--metric NAME]... [--x step|epoch|seconds] [--logy] [--smooth W]
           -o FILE.svg|FILE.png [--title TEXT]
Curves of the metrics against the step, the seconds since the run started, or
the epoch (the run's logged epoch metric, steps in between spread evenly),
the runs overlaid and labelled by
the config values (and seed) that set them apart, numbers in numeric order.
Past ten curves the colours come again with dashes, then dots; the runs of
one combination over several seeds share a colour and a legend row. --logy: a log
y axis. --smooth W: the moving average TensorBoard draws, weight W in [0, 1).
Without --metric, the first metric with "loss" in its name. The file type
follows the extension of -o.]],
}

local function die(code, fmt, ...)
  io.stderr:write(fmt:format(...), '\n')
  return code
end

-- ==== Reading runs =======================================================

local function results_path(p)
  if sys.kind(p) == 'directory' then return p:gsub('/+$', '') .. '/results.h5' end
  return p
end

-- A metric's values and steps (or seconds: group) must be lists of the
-- same length, or show, compare and plot would fail later with an index error.
local function check_metric(path, k, values, steps, group)
  if values:dim() ~= 1 then
    error(('%s: /metrics/%s is %s, not a list of values'):format(path, k, tostring(values:size())), 0)
  end
  if steps and (steps:dim() ~= 1 or steps:numel() ~= values:numel()) then
    error(('%s: /%s/%s has %d entries for the %d of /metrics/%s'):format(path, group or 'steps', k, steps:numel(),
      values:numel(), k), 0)
  end
end

-- The lock on a run's directory, which usagi.run holds for the run's life
-- and the system drops when the process dies (SIGKILL included): 'held',
-- 'free', or nil when it cannot be told.
local function lock_state(dir)
  local ok, lock = pcall(sys.lock, dir)
  if not ok then return nil end
  if not lock then return 'held' end
  lock:unlock()
  return 'free'
end

-- A run whose results.h5 says 'running' while nobody holds its directory's
-- lock was killed: it shows as 'killed'.
local function status_of(dir, status)
  if status ~= 'running' or not dir or sys.kind(dir) ~= 'directory' then return status end
  return lock_state(dir) == 'free' and 'killed' or status
end

-- Whether the run that owns path (a run directory or its results.h5) is
-- alive.
local function live(p)
  return lock_state(sys.kind(p) == 'directory' and p or p:match('^(.*)/[^/]*$') or '.') == 'held'
end

local read_run

-- load_run(path) -> {dir, path, attrs, config, metrics = {name = {values, steps}}}.
-- The file is read in a child process first (usagi.h5.verify), so a corrupt
-- one is an error here, not a crash of libhdf5 in this process. A live run
-- may be read in the middle of its flush; then the read is tried again.
function M.load_run(p)
  for attempt = 1, 20 do
    local ok, r = pcall(read_run, p)
    if ok then return r end
    if attempt == 20 or not live(p) then error(r, 0) end
    sys.sleep(0.02 * attempt)
  end
end

function read_run(p)
  local path = results_path(p)
  if not sys.kind(path) then error(('%s: no such run directory or file'):format(p), 0) end
  local fine, why = usagi.h5.verify(path)
  if not fine then error(why, 0) end
  local f <close> = usagi.h5.open(path, 'r')
  local r = { path = path, dir = p, attrs = f:attrs('/'), metrics = {}, names = {} }
  r.config = f:exists('/config') and store.read_tree(f, '/config') or {}
  local writing = r.attrs.status == 'running'
  if f:exists('/metrics') then
    for _, k in ipairs(f:list('/metrics')) do
      local steps = f:exists('/steps/' .. k) and f:read('/steps/' .. k) or nil
      local seconds = f:exists('/seconds/' .. k) and f:read('/seconds/' .. k) or nil
      local values = f:read('/metrics/' .. k)
      -- a run that is writing may be read between a value and its step
      if writing and steps and values:dim() == 1 and steps:dim() == 1 then
        local n = math.min(values:numel(), steps:numel(), seconds and seconds:dim() == 1 and seconds:numel() or math.huge)
        values, steps = values:narrow(1, 1, n), steps:narrow(1, 1, n)
        if seconds and seconds:dim() == 1 then seconds = seconds:narrow(1, 1, n) end
      end
      check_metric(path, k, values, steps)
      if seconds then check_metric(path, k, values, seconds, 'seconds') end
      r.metrics[k] = { values = values, steps = steps, seconds = seconds }
      r.names[#r.names + 1] = k
    end
  end
  r.id = r.attrs.run_id or p:match('([^/]+)/?$')
  if path ~= p then r.attrs.status = status_of(p, r.attrs.status) end
  return r
end

local fmt, print_table = cmp.fmt, cmp.print_table

local function stats(m)
  local v = m.values
  local n = v:numel()
  if n == 0 then return nil end
  local last, lo, hi = v[n], math.huge, -math.huge
  for j = 1, n do
    local x = v[j]
    if x < lo then lo = x end
    if x > hi then hi = x end
  end
  return { last = last, min = lo, max = hi, n = n, step = m.steps and m.steps[n] }
end

local function sorted(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- ==== show, compare ======================================================

local function show(args)
  if #args ~= 1 then return die(2, 'usage: usagi show RUN_DIR|FILE.h5') end
  local r = M.load_run(args[1])
  local a = r.attrs
  print(('%s  %s  status %s'):format(a.experiment or '?', r.path, a.status or '?'))
  print(('started %s  finished %s  steps %s'):format(a.started or '?', a.finished or '-', fmt(a.steps or '-')))
  print(('usagi %s  commit %s%s  seed %s  threads %s'):format(a.usagi_version or '?',
    tostring(a.git_commit or '?'):sub(1, 12), a.git_dirty and ' (dirty)' or '', fmt(a.seed or '?'),
    fmt(a.threads or '?')))
  print(('blas %s'):format(a.blas or '?'))
  if a.plugins and a.plugins ~= '' then print('plugins ' .. a.plugins) end
  print(('host %s  command %s'):format(a.host or '?', a.command_line or '?'))
  if a.resumed_from then print(('resumed from %s at %s'):format(a.resumed_from, a.resumed_at or '?')) end
  print('')
  local rows = {}
  for _, k in ipairs(sorted(r.config)) do rows[#rows + 1] = { k, fmt(r.config[k]) } end
  print_table({ 'config', 'value' }, rows)
  print('')
  rows = {}
  for _, k in ipairs(r.names) do
    local s = stats(r.metrics[k])
    if s then rows[#rows + 1] = { k, fmt(s.last), fmt(s.min), fmt(s.max), tostring(s.n), fmt(s.step) } end
  end
  print_table({ 'metric', 'last', 'min', 'max', 'entries', 'last step' }, rows)
  return 0
end

-- compare_runs(runs [, opts]): the table of `usagi compare` (usagi.compare).
function M.compare_runs(runs, opts) cmp.print(runs, opts) end

-- runs_given(paths, cmd) -> the paths that can be runs: a shell glob such
-- as runs/exp/* also brings a sweep's log, which is left out with a note
-- rather than failing the whole command.
local function runs_given(paths, cmd)
  local keep = {}
  for _, p in ipairs(paths) do
    if sys.kind(p) == 'file' and not p:match('%.h5$') then
      io.stderr:write(('usagi %s: leaving out %s: not a run (a run directory or an .h5 file)\n')
        :format(cmd, p))
    else
      keep[#keep + 1] = p
    end
  end
  return keep
end

-- load_runs(paths) -> the runs that read, and a row {id, error} for each
-- that did not: one unreadable run does not hide the others.
function M.load_runs(paths)
  local runs = {}
  for _, p in ipairs(paths) do
    local ok, r = pcall(M.load_run, p)
    if not ok then
      r = { id = p:match('([^/]+)/?$') or p, dir = p, unreadable = true, attrs = { status = 'unreadable: ' ..
        tostring(r):gsub('^[^\n]-%.lua:%d+: ', '') }, config = {}, metrics = {}, names = {} }
    end
    runs[#runs + 1] = r
  end
  return runs
end

local function compare(args)
  local dirs, each = {}, false
  for _, a in ipairs(args) do
    if a == '--each' then each = true
    elseif a:sub(1, 1) == '-' then return die(2, 'usagi compare: unknown option %s\n%s', a, help.compare)
    else dirs[#dirs + 1] = a end
  end
  dirs = runs_given(dirs, 'compare')
  if #dirs < 1 then return die(2, 'usage: usagi compare RUN_DIR... [--each]') end
  local runs = M.load_runs(dirs)
  M.compare_runs(runs, { each = each })
  for _, r in ipairs(runs) do
    if r.unreadable then return 1 end
  end
  return 0
end

-- ==== plot ===============================================================

-- The x of each entry of a metric: its step, the seconds the run had been
-- going, its epoch (fractional: steps between two logged epochs are spread
-- evenly between them, past the last one at the pace of the last epoch), or
-- nil and the reason.
local function x_of(r, m, xaxis)
  if xaxis == 'step' then return m.steps end
  if xaxis == 'seconds' then
    if not m.seconds then return nil, ('%s keeps no times for its metrics (a run of an older usagi)'):format(r.dir) end
    return m.seconds
  end
  if not m.steps then return nil, ('%s keeps no steps for its metrics'):format(r.dir) end
  local e = r.metrics.epoch
  if not e or e.values:numel() == 0 or not e.steps then
    return nil, ('%s logs no epoch metric; --x epoch needs run:log { epoch = ... } at the end of each epoch')
      :format(r.dir)
  end
  local ks, ke = { 0 }, { 0 }                  -- knots: step -> epoch
  for j = 1, e.values:numel() do
    if e.steps[j] > ks[#ks] then ks[#ks + 1], ke[#ke + 1] = e.steps[j], e.values[j] end
  end
  local xs, k = {}, 2
  for j = 1, m.steps:numel() do
    local s = m.steps[j]
    k = 2
    while k < #ks and s > ks[k] do k = k + 1 end
    if #ks < 2 then xs[j] = ke[1]
    else xs[j] = ke[k - 1] + (s - ks[k - 1]) * (ke[k] - ke[k - 1]) / (ks[k] - ks[k - 1]) end
  end
  return xs
end

-- The exponential moving average TensorBoard draws, with its bias at the
-- start taken out: s_t = w s_{t-1} + (1 - w) y_t, divided by 1 - w^t.
local function smooth(ys, w)
  local out, s, n = {}, 0, 0
  for j = 1, ys:numel() do
    local y = ys[j]
    if y == y and y ~= math.huge and y ~= -math.huge then
      n, s = n + 1, w * s + (1 - w) * y
      out[j] = s / (1 - w ^ n)
    else out[j] = 0 / 0 end
  end
  return out
end

local plot_usage = 'usage: usagi plot RUN_DIR... [--metric NAME]... [--x step|epoch|seconds] [--logy] [--smooth W] '
  .. '-o FILE.svg|FILE.png [--title TEXT]'

local function plot(args)
  local dirs, metrics, out, title, xaxis, logy, w = {}, {}, nil, nil, 'step', false, nil
  local i = 1
  while i <= #args do
    local a, v = args[i], args[i + 1]
    if a == '--metric' or a == '-m' then metrics[#metrics + 1] = v; i = i + 1
    elseif a == '-o' or a == '--output' then out = v; i = i + 1
    elseif a == '--title' then title = v; i = i + 1
    elseif a == '--logy' then logy = true
    elseif a == '--x' then
      if v ~= 'step' and v ~= 'epoch' and v ~= 'seconds' then
        return die(2, 'usagi plot: --x must be step, epoch or seconds, got %s', tostring(v))
      end
      xaxis = v; i = i + 1
    elseif a == '--smooth' then
      w = tonumber(v or '')
      if not w or w < 0 or w >= 1 then
        return die(2, 'usagi plot: --smooth needs a weight in [0, 1) (0.9 smooths a lot), got %s', tostring(v))
      end
      i = i + 1
    elseif a:sub(1, 1) == '-' then return die(2, 'usagi plot: unknown option %s\n%s', a, plot_usage)
    else dirs[#dirs + 1] = a end
    i = i + 1
  end
  dirs = runs_given(dirs, 'plot')
  if #dirs == 0 or not out then return die(2, plot_usage) end
  local runs = {}
  for _, p in ipairs(dirs) do runs[#runs + 1] = M.load_run(p) end
  if #metrics == 0 then             -- default: the first metric with loss in its name
    for _, k in ipairs(runs[1].names) do if k:find('loss') then metrics[1] = k; break end end
    metrics[1] = metrics[1] or runs[1].names[1]
    if not metrics[1] then return die(1, 'usagi plot: %s has no metrics', runs[1].path) end
  end
  -- a run is labelled by the config values (and seed) that set it apart,
  -- else its id; the legend lists them with numbers in numeric order
  local differ = cmp.differing(runs)
  for _, r in ipairs(runs) do
    local parts = {}
    for _, k in ipairs(differ) do parts[#parts + 1] = k .. '=' .. fmt(cmp.value(r, k)) end
    r.label = #parts > 0 and table.concat(parts, ' ') or r.id
  end
  table.sort(runs, function(a, b)
    for _, k in ipairs(differ) do
      local x, y = fmt(cmp.value(a, k)), fmt(cmp.value(b, k))
      if x ~= y then return cmp.less(x, y) end
    end
    return cmp.less(a.id, b.id)
  end)
  -- the seeds of one combination share its colour and one legend row
  local groups, group_of = {}, {}
  local by_seed = #metrics == 1 and differ[#differ] == 'seed'
  for _, r in ipairs(runs) do
    local parts = {}
    for _, k in ipairs(differ) do
      if k ~= 'seed' then parts[#parts + 1] = k .. '=' .. fmt(cmp.value(r, k)) end
    end
    local key = table.concat(parts, ' ')
    if not groups[key] then groups[#groups + 1] = key; groups[key] = { n = 0, label = key } end
    groups[key].n = groups[key].n + 1
    group_of[r] = groups[key]
  end
  by_seed = by_seed and #groups < #runs
  local plot_mod, series, first = require('usagi.plot'), {}, {}
  for gi, key in ipairs(groups) do groups[key].index = gi end
  for _, r in ipairs(runs) do
    for _, k in ipairs(metrics) do
      local m = r.metrics[k]
      if not m then return die(1, 'usagi plot: %s has no metric %q (it has: %s)', r.path, k, table.concat(r.names, ', ')) end
      local label = #runs > 1 and r.label or k
      if #runs > 1 and #metrics > 1 then label = r.label .. ' ' .. k end
      local x, why = x_of(r, m, xaxis)
      if not x then return die(1, 'usagi plot: %s', why) end
      local se = { label = label, x = x, y = w and w > 0 and smooth(m.values, w) or m.values }
      if by_seed then
        local g = group_of[r]
        local pal, styles = plot_mod.palette, plot_mod.styles
        se.color = pal[(g.index - 1) % #pal + 1]
        se.style = styles[(g.index - 1) // #pal % #styles + 1]
        se.label = ('%s (%d seed%s)'):format(g.label ~= '' and g.label or 'all', g.n, g.n == 1 and '' or 's')
        se.legend = not first[g]
        first[g] = true
      end
      series[#series + 1] = se
    end
  end
  local path = plot_mod.lines {
    series = series, path = out, xlabel = xaxis, logy = logy,
    ylabel = table.concat(metrics, ', ') .. (w and w > 0 and (' (smoothed %g)'):format(w) or ''),
    title = title or ('%s: %s'):format(runs[1].attrs.experiment or '', table.concat(metrics, ', ')),
  }
  print(path)
  return 0
end

-- ==== run, sweep =========================================================

local experiment = require 'usagi.experiment'

-- The spec a script returns, without running it.
local function load_spec(script, args)
  if not script then error('usage: usagi run SCRIPT.lua [options]', 0) end
  if not sys.kind(script) then error(('usagi: cannot open %s: no such file'):format(script), 0) end
  _G.arg = { [0] = script, table.unpack(args) }
  experiment.loading = true
  -- an error in the script shows its frames as the REPL does
  local ok, spec = xpcall(dofile, function(e) return require('usagi.repl').msghandler(e) end, script)
  experiment.loading = false
  if not ok then error({ script_error = spec }, 0) end
  if type(spec) ~= 'table' or type(spec.run) ~= 'function' then
    error(('usagi: %s does not return usagi.experiment{...}'):format(script), 0)
  end
  return spec
end

local function run(args)
  local script = args[1]
  local rest = table.move(args, 2, #args, 1, {})
  local ok, spec = pcall(load_spec, script, rest)
  if not ok and type(spec) == 'table' then return die(2, '%s', spec.script_error) end
  if not ok then return die(2, '%s\n%s', spec, M.commands_help) end
  return experiment.main(spec, rest, script)
end

-- The combinations of the grids, the first key varying slowest.
local function combinations(grids)
  local out = { {} }
  for _, g in ipairs(grids) do
    local next_out = {}
    for _, partial in ipairs(out) do
      for _, v in ipairs(g.values) do
        local c = table.move(partial, 1, #partial, 1, {})
        c[#c + 1] = { key = g.key, value = v, option = g.option }
        next_out[#next_out + 1] = c
      end
    end
    out = next_out
  end
  return out
end

local function sweep(args)
  local script, grids, jobs, pass = args[1], {}, 1, {}
  local out, i = 'runs', 2
  while i <= #args do
    local a, v = args[i], args[i + 1]
    if a == '--grid' then
      local k, list = (v or ''):match('^([%w_]+)=(.+)$')
      if not k then return die(2, 'usagi sweep: --grid needs key=v1,v2,..., got %s', tostring(v)) end
      local values = {}
      for x in list:gmatch('[^,]+') do values[#values + 1] = x end
      grids[#grids + 1] = { key = k, values = values }
      i = i + 1
    elseif a == '--seeds' then
      local values = {}
      for x in (v or ''):gmatch('[^,]+') do values[#values + 1] = x end
      if #values == 0 then return die(2, 'usagi sweep: --seeds needs a list of seeds, 1,2,3, got %s', tostring(v)) end
      grids[#grids + 1] = { key = 'seed', values = values }
      i = i + 1
    elseif a == '-j' or a == '--jobs' then
      jobs = math.tointeger(tonumber(v or ''))
      if not jobs or jobs < 1 then return die(2, 'usagi sweep: -j needs a positive integer, got %s', tostring(v)) end
      i = i + 1
    elseif a == '--name' or a == '--resume' then
      return die(2, 'usagi sweep: %s is chosen by the sweep for each run', a)
    else
      if a == '--out' then out = v end
      pass[#pass + 1] = a
    end
    i = i + 1
  end
  local ok, spec = pcall(load_spec, script, {})
  if not ok and type(spec) == 'table' then return die(2, '%s', spec.script_error) end
  if not ok then return die(2, '%s\n%s', spec, M.commands_help) end
  if #grids == 0 then return die(2, 'usagi sweep: give at least one --grid key=v1,v2,... or --seeds 1,2,3') end
  -- a grid over 'seed' sets the run's seed, unless the config has a key of that name
  local seeded = false
  for _, g in ipairs(grids) do
    g.option = g.key == 'seed' and (spec.config or {}).seed == nil and '--seed' or nil
    if g.option then
      if seeded then return die(2, 'usagi sweep: the seeds are given twice (--seeds and --grid seed=...)') end
      seeded = true
    end
  end
  for _, a in ipairs(pass) do
    if seeded and a == '--seed' then return die(2, 'usagi sweep: --seed and --seeds both set the seed; give one') end
  end
  -- check every value now, not halfway through the sweep
  for _, g in ipairs(grids) do
    for _, v in ipairs(g.values) do
      local okv, err = pcall(experiment.parse_args, spec, g.option and { g.option, v } or { '--set', g.key .. '=' .. v })
      if not okv then return die(2, 'usagi sweep: %s', err) end
    end
  end
  -- over MPI: this rank's share of the combinations (one rank without it)
  local dist = require('usagi.run').launched_dist()
  if dist and dist.size() == 1 then dist = nil end
  local rank, world = dist and dist.rank() or 0, dist and dist.size() or 1
  local threads = 0
  for _, a in ipairs(pass) do if a == '--threads' then threads = 1 end end
  local per_run = math.max(1, usagi.get_num_threads() // (jobs * (dist and dist.local_size() or 1)))
  local stamp = os.date('!%Y%m%d-%H%M%S', math.floor(sys.time()))
  if dist then stamp = dist.broadcast_string(stamp, 0) end   -- one name for all ranks' runs
  local base = ('%s/%s'):format(out, spec.name)
  sys.mkdir(base)
  local log = ('%s/sweep-%s%s.log'):format(base, stamp, dist and ('-rank%d'):format(rank) or '')
  local all, todo, running, dirs, failed = combinations(grids), {}, {}, {}, 0
  for i, combo in ipairs(all) do
    if (i - 1) % world == rank then todo[#todo + 1] = combo end
  end
  local tag = dist and ('rank %d: '):format(rank) or ''
  if rank == 0 then
    print(('%s: %d runs, %d at a time%s; their output goes to %s'):format(spec.name, #all, jobs,
      dist and (' on each of %d ranks'):format(world) or '',
      dist and ('%s/sweep-%s-rank*.log'):format(base, stamp) or log))
  end
  local exe, started, done = sys.exe(), 0, 0
  local function start(combo)
    local name_parts, argv = {}, { exe, 'run', script }
    -- a child is a run of its own, not a rank of this job's world
    if dist then argv = { 'env', 'USAGI_DIST=off', exe, 'run', script } end
    for _, kv in ipairs(combo) do
      name_parts[#name_parts + 1] = kv.key .. '=' .. kv.value
      if kv.option then argv[#argv + 1] = kv.option; argv[#argv + 1] = kv.value
      else argv[#argv + 1] = '--set'; argv[#argv + 1] = kv.key .. '=' .. kv.value end
    end
    local name = stamp .. '_' .. table.concat(name_parts, ',')
    argv[#argv + 1] = '--name'; argv[#argv + 1] = name
    for _, a in ipairs(pass) do argv[#argv + 1] = a end
    if threads == 0 then argv[#argv + 1] = '--threads'; argv[#argv + 1] = tostring(per_run) end
    local pid = sys.spawn(argv, { stdout = log, stderr = log })
    started = started + 1
    dirs[started] = base .. '/' .. name
    running[pid] = { index = started, label = table.concat(name_parts, ' '), t0 = sys.monotonic() }
  end
  local next_combo = 1
  while next_combo <= #todo or next(running) do
    while next_combo <= #todo and started - done < jobs do start(todo[next_combo]); next_combo = next_combo + 1 end
    local pid, how, code = sys.wait()
    local r = pid and running[pid]
    if r then
      running[pid] = nil
      done = done + 1
      local status = (how == 'exit' and code == 0) and 'ok' or ('failed (%s %d)'):format(how, code)
      if status ~= 'ok' then failed = failed + 1 end
      print(('%s[%d/%d] %-40s %s  %.1f s'):format(tag, done, #todo, r.label, status, sys.monotonic() - r.t0))
      io.stdout:flush()
    end
  end
  if dist then                             -- every rank's runs are done
    -- a rank whose share ended first waits here for whole runs of the
    -- others: no deadline on this wait (usagi.dist naps meanwhile)
    local limit = dist.timeout()
    dist.set_timeout(0)
    failed = math.tointeger(dist.allreduce_number(failed, 'sum'))
    dist.set_timeout(limit)
    dirs = {}
    local items = {}
    for i, combo in ipairs(all) do
      local parts = {}
      for _, kv in ipairs(combo) do parts[#parts + 1] = kv.key .. '=' .. kv.value end
      dirs[#dirs + 1] = base .. '/' .. stamp .. '_' .. table.concat(parts, ',')
      items[#items + 1] = { owner = (i - 1) % world, path = dirs[#dirs], skip = { checkpoints = true } }
    end
    -- the other ranks' runs and logs come to rank 0 (no shared filesystem
    -- needed); their checkpoints stay where they ran
    for r = 1, world - 1 do
      items[#items + 1] = { owner = r, path = ('%s/sweep-%s-rank%d.log'):format(base, stamp, r) }
    end
    require('usagi.run_ship').gather(dist, items)
    if rank ~= 0 then return failed > 0 and 1 or 0 end
  end
  print('')
  -- every combination has its row, with its error when it cannot be read
  local runs = M.load_runs(dirs)
  if #runs > 0 then M.compare_runs(runs) end
  local unread = 0
  for _, r in ipairs(runs) do if r.unreadable then unread = unread + 1 end end
  if failed > 0 then return die(1, '%d of %d runs failed; see %s', failed, #all, log) end
  if unread > 0 then return die(1, '%d of %d runs could not be read (see the table); see %s', unread, #all, log) end
  return 0
end

-- ==== Dispatch ===========================================================

-- `usagi data ...`: usagi.data_get (the data set registry and cache).
local function data_command(args) return require('usagi.data_get').main(args) end
help.data = require('usagi.data_get').help

-- `usagi infer` lives with the loading of runs (scripts/usagi/runs.lua).
local function infer(args) return require('usagi.runs').main(args) end

-- `usagi kernel`: the Jupyter kernel (scripts/usagi/kernel.lua).
local function kernel(args) return require('usagi.kernel').main(args) end
help.kernel = require('usagi.kernel_install').help

local commands = { run = run, sweep = sweep, show = show, compare = compare, plot = plot,
                   data = data_command, infer = infer, kernel = kernel }

function M.is_command(name) return commands[name] ~= nil end

function M.main(command, args)
  local fn = commands[command]
  if not fn then return die(2, 'usagi: unknown command %s\n%s', tostring(command), M.commands_help) end
  if args[1] == '-h' or args[1] == '--help' then print(help[command] or require('usagi.runs').help); return 0 end
  local ok, code = pcall(fn, args)
  if not ok then return die(1, 'usagi %s: %s', command, (tostring(code):gsub('^[^\n]-%.lua:%d+: ', ''))) end
  return code
end

return M
