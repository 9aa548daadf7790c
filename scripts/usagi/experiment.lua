-- usagi.experiment -- an experiment is a name, a default config, a tiny
-- "smoke" config for tests, and a run function:
--
--   return usagi.experiment {
--     name = 'binary_addition',
--     config = { hidden = 16, lr = 0.1, iterations = 10000 },
--     smoke = { iterations = 200 },
--     run = function(run, cfg) ... run:log { loss = l } ... end,
--   }
--
-- Run as a script (`usagi experiments/x.lua [--seed N] [--set key=value]...
-- [--smoke]`, or through scripts/run), it parses the command line, checks
-- each override against the default's type, seeds usagi's generator and
-- calls run. Loaded with `require`/`dofile` it only returns the spec, so
-- other tools (tests, sweeps) can run it with run_experiment(spec, opts).
local usagi = require 'usagi'

local M = {}

-- ==== Progress ===========================================================

local Run = {}
Run.__index = Run

-- a terminal on stderr: redraw the bar in place; else (CI, a pipe) print lines
local tty = os.getenv('TERM') and os.getenv('TERM') ~= 'dumb' and not os.getenv('CI')
  and os.execute('test -t 2') == true

local function now()
  local ok, system = pcall(require, 'system')
  if ok and system.gettime then return system.gettime() end
  return os.clock()
end

local function fmt_time(s)
  if s ~= s or s == math.huge then return '--:--' end
  s = math.floor(s + 0.5)
  if s >= 3600 then return ('%d:%02d:%02d'):format(s // 3600, s % 3600 // 60, s % 60) end
  return ('%02d:%02d'):format(s // 60, s % 60)
end

-- run:progress(n [, label]) iterates i = 1..n drawing a bar on stderr
-- (redrawn in place on a terminal, a line every 10% otherwise) with the
-- rate, the elapsed time, the ETA and the last values given to run:log.
function Run:progress(n, label)
  local t0, i, last_draw, last_decile = now(), 0, -1, -1
  local function draw(final)
    local t = now() - t0
    local rate = i / math.max(t, 1e-9)
    local width = 24
    local filled = math.floor(width * i / n)
    local metrics = {}
    for _, k in ipairs(self.last_keys or {}) do
      local v = self.last[k]
      metrics[#metrics + 1] = type(v) == 'number' and ('%s %.4g'):format(k, v) or (k .. ' ' .. tostring(v))
    end
    local line = ('%s [%s%s] %d/%d %.0f it/s %s<%s %s'):format(label or self.name,
      ('#'):rep(filled), ('.'):rep(width - filled), i, n, rate, fmt_time(t),
      fmt_time((n - i) / math.max(rate, 1e-9)), table.concat(metrics, ' '))
    if tty then io.stderr:write('\r', line, final and '\n' or '') else io.stderr:write(line, '\n') end
    io.stderr:flush()
  end
  return function()
    if i >= n then
      if n > 0 and (tty or last_decile < 10) then draw(true) end
      return nil
    end
    i = i + 1
    local decile = (10 * i) // n
    if tty then
      local t = now()
      if t - last_draw > 0.1 then draw(false); last_draw = t end
    elseif decile > last_decile and decile < 10 then
      draw(false)
      last_decile = decile
    end
    return i
  end
end

-- run:log{key = value, ...}: keeps the history of each metric (run.metrics)
-- and the latest values for the progress bar.
function Run:log(values)
  local keys = {}
  for k in pairs(values) do keys[#keys + 1] = k end
  table.sort(keys)
  self.last, self.last_keys = values, keys
  for _, k in ipairs(keys) do
    self.metrics[k] = self.metrics[k] or {}
    table.insert(self.metrics[k], values[k])
  end
end

-- run:print(...): a line of output that does not tear the progress bar
function Run:print(...)
  if tty then io.stderr:write('\r\27[K') end
  print(...)
end

-- ==== Command line =======================================================

local function usage(spec)
  local keys = {}
  for k in pairs(spec.config) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = { ('usage: usagi %s [--seed N] [--set key=value]... [--smoke]'):format(arg and arg[0] or spec.name),
    '', 'config keys (default):' }
  for _, k in ipairs(keys) do lines[#lines + 1] = ('  %-16s %s'):format(k, tostring(spec.config[k])) end
  return table.concat(lines, '\n')
end

local function valid_keys(config)
  local keys = {}
  for k in pairs(config) do keys[#keys + 1] = k end
  table.sort(keys)
  return table.concat(keys, ', ')
end

-- Convert the text of --set key=value to the type of the default.
local function convert(spec, key, text)
  local default = spec.config[key]
  if default == nil then
    error(('%s: unknown config key %q; valid keys: %s'):format(spec.name, key, valid_keys(spec.config)), 0)
  end
  local kind = type(default)
  if kind == 'number' then
    local v = tonumber(text)
    if not v then error(('%s: %s must be a number, got %q'):format(spec.name, key, text), 0) end
    if math.type(default) == 'integer' and math.type(v) ~= 'integer' then
      if v ~= math.floor(v) then error(('%s: %s must be an integer, got %q'):format(spec.name, key, text), 0) end
      v = math.tointeger(v)
    end
    return v
  elseif kind == 'boolean' then
    if text == 'true' or text == '1' then return true end
    if text == 'false' or text == '0' then return false end
    error(('%s: %s must be true or false, got %q'):format(spec.name, key, text), 0)
  end
  return text
end

function M.parse_args(spec, args)
  local opts = { set = {}, seed = 0 }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == '--seed' then
      opts.seed = math.tointeger(tonumber(args[i + 1] or '')) or
        error(('%s: --seed needs an integer'):format(spec.name), 0)
      i = i + 1
    elseif a == '--set' then
      local kv = args[i + 1] or ''
      local k, v = kv:match('^([%w_]+)=(.*)$')
      if not k then error(('%s: --set needs key=value, got %q'):format(spec.name, kv), 0) end
      opts.set[k] = convert(spec, k, v)
      i = i + 1
    elseif a == '--smoke' then
      opts.smoke = true
    elseif a == '--help' or a == '-h' then
      opts.help = true
    elseif a:match('^[%w_]+=') then
      local k, v = a:match('^([%w_]+)=(.*)$')
      opts.set[k] = convert(spec, k, v)
    else
      error(('%s: unknown argument %q\n%s'):format(spec.name, a, usage(spec)), 0)
    end
    i = i + 1
  end
  return opts
end

-- ==== Running ============================================================

function M.config_of(spec, opts)
  local cfg = {}
  for k, v in pairs(spec.config) do cfg[k] = v end
  if opts.smoke then for k, v in pairs(spec.smoke or {}) do cfg[k] = v end end
  for k, v in pairs(opts.set or {}) do cfg[k] = v end
  return cfg
end

function M.run_experiment(spec, opts)
  opts = opts or {}
  local cfg = M.config_of(spec, opts)
  usagi.manual_seed(opts.seed or 0)
  local run = setmetatable({ name = spec.name, seed = opts.seed or 0, metrics = {}, last = {},
                             config = cfg, quiet = opts.quiet }, Run)
  if opts.quiet then
    run.progress = function(_, n)
      local i = 0
      return function() i = i + 1; if i <= n then return i end end
    end
    run.print = function() end
  end
  local result = spec.run(run, cfg)
  return run, result
end

function M.experiment(spec)
  assert(type(spec) == 'table' and type(spec.name) == 'string' and type(spec.config) == 'table'
         and type(spec.run) == 'function',
         'usagi.experiment: expects {name = string, config = table, run = function}')
  for k in pairs(spec.smoke or {}) do
    if spec.config[k] == nil then
      error(('usagi.experiment: smoke key %q is not in the config of %s'):format(k, spec.name), 2)
    end
  end
  -- Run now when the calling file is the script usagi was started with:
  -- its source is arg[0]; or, after `return usagi.experiment {...}` (a tail
  -- call, so the script's frame is gone), the caller is the host itself --
  -- a C frame without a name, where require and dofile have theirs.
  local caller = debug.getinfo(2, 'Sn')
  local main = caller and (caller.source == '@' .. tostring(arg and arg[0]) or
    (debug.getinfo(1, 't').istailcall and caller.what == 'C' and caller.name == nil))
  if arg and arg[0] and main then
    local ok, opts = pcall(M.parse_args, spec, arg)
    if not ok then io.stderr:write(opts, '\n'); os.exit(2) end
    if opts.help then print(usage(spec)); return spec end
    M.run_experiment(spec, opts)
  end
  return spec
end

return M
