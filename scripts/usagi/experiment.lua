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
-- `usagi run experiments/x.lua [options]` (or `usagi experiments/x.lua
-- [options]`, the same) parses the command line, checks each override
-- against the default's type, seeds usagi's generator, makes the run's
-- directory (usagi.run) and calls run. Loaded with `require`/`dofile` it
-- only returns the spec, so tests and sweeps can run it with
-- run_experiment(spec, opts). Optional fields of the spec:
--   checkpoint = { every = 1000, every_epochs = 1, keep = 3, best = 'accuracy', mode = 'max' }
-- (mode 'min', the default, keeps the checkpoint with the lowest value);
-- and, for `usagi infer` and usagi.runs.load (experiments/README.md):
--   model = function(cfg, data) -> the model (run:model(data) calls it)
--   infer = function(model, input, ctx) -> the answer to one input
--   infer_options = { n = 10 }, infer_help = 'what an input is'.
local usagi = require 'usagi'

local M = {}

-- ==== Command line =======================================================

M.options_help = [[
options:
  --seed N              the run's seed (default 0)
  --set key=value       override a config key (repeatable; key=value alone works too)
  --smoke               the experiment's tiny config, for tests
  --out DIR             where runs go (default runs): DIR/<experiment>/<run-id>/
  --name NAME           the run id (default: the start time)
  --resume RUN_DIR      continue a run from its newest readable checkpoint
  --threads N           the core's threads (default: all cores)
  --checkpoint-every N  steps between checkpoints (0: none; default from the script)
  --checkpoint-epochs N a checkpoint after every N epochs of run:epochs (0: none)
  --keep K              checkpoints kept besides the best (default 3)
  --best METRIC[:min|max]
                        also keep checkpoints/best.h5, the checkpoint at which
                        METRIC's last value was lowest (min, the default) or highest
  --no-save             run in memory: no directory, results or checkpoints
  --dist-check          under mpirun: check after every step that every rank
                        holds the same parameters, bit for bit (a collective)
  --bucket-mb X         under mpirun: gradients are averaged in buckets of X MiB (25)
  -h, --help            this text and the config keys]]

local function usage(spec)
  local keys = {}
  for k in pairs(spec.config) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = { ('usage: usagi run %s [options]'):format(arg and arg[0] or spec.name), '',
    M.options_help, '', 'config keys (default):' }
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

local function int_arg(spec, flag, text, min, max)
  local v = math.tointeger(tonumber(text or ''))
  if not v or v < min or (max and v > max) then
    local range = max and ('between %d and %d'):format(min, max) or ('>= %d'):format(min)
    error(('%s: %s needs an integer %s, got %s'):format(spec.name, flag, range, tostring(text)), 0)
  end
  return v
end

-- 'acc', 'acc:min' or 'acc:max' -> the metric and the mode, as --best
-- takes it and as checkpoint = { best = ... } in a script means it.
local function parse_best(who, v)
  local name, mode = type(v) == 'string' and v:match('^([%w_.%-]+)$'), 'min'
  if not name and type(v) == 'string' then name, mode = v:match('^([%w_.%-]+):(%a+)$') end
  if not name or (mode ~= 'min' and mode ~= 'max') then
    error(('%s needs METRIC, METRIC:min or METRIC:max, got %s'):format(who,
      type(v) == 'string' and ('%q'):format(v) or tostring(v)), 0)
  end
  return name, mode
end

-- The spec's checkpoint table with best = 'acc:max' split as --best
-- splits it (best = 'acc', mode = 'max'), so that a script and the
-- command line mean the same; a copy, checked, or nil.
local function checkpoint_of(spec)
  local ck = spec.checkpoint
  if ck == nil then return nil end
  if type(ck) ~= 'table' then
    error(('%s: checkpoint must be a table {every, every_epochs, keep, best, mode}, got %s')
      :format(spec.name, type(ck)), 0)
  end
  local out = {}
  for k, v in pairs(ck) do out[k] = v end
  if ck.best ~= nil then
    local name, mode = parse_best(spec.name .. ': checkpoint.best', ck.best)
    if ck.best:find(':') and ck.mode ~= nil and ck.mode ~= mode then
      error(('%s: checkpoint.best %q and checkpoint.mode %q disagree'):format(spec.name, ck.best, ck.mode), 0)
    end
    out.best, out.mode = name, ck.best:find(':') and mode or ck.mode
  end
  if out.mode ~= nil and out.mode ~= 'min' and out.mode ~= 'max' then
    error(('%s: checkpoint.mode must be \'min\' or \'max\', got %s'):format(spec.name, tostring(out.mode)), 0)
  end
  return out
end

-- parse_args(spec, args) -> opts {seed, set, smoke, out, name, resume,
-- threads, checkpoint_every, checkpoint_epochs, keep, best, best_mode, help}
function M.parse_args(spec, args)
  local opts = { set = {}, out = 'runs' }
  local with_value = { ['--seed'] = true, ['--set'] = true, ['--out'] = true, ['--name'] = true,
    ['--resume'] = true, ['--threads'] = true, ['--checkpoint-every'] = true, ['--keep'] = true,
    ['--best'] = true, ['--checkpoint-epochs'] = true, ['--bucket-mb'] = true }
  local i, out_given, no_save = 1, false, false
  while i <= #args do
    local a, v = args[i], args[i + 1]
    if with_value[a] and v == nil then error(('%s: %s needs a value'):format(spec.name, a), 0) end
    if a == '--seed' then opts.seed = int_arg(spec, a, v, -math.maxinteger)
    elseif a == '--set' or (a:match('^[%w_]+=') and not with_value[a]) then
      local kv = a == '--set' and v or a
      local k, val = kv:match('^([%w_]+)=(.*)$')
      if not k then error(('%s: --set needs key=value, got %q'):format(spec.name, kv), 0) end
      opts.set[k] = convert(spec, k, val)
      if a ~= '--set' then i = i - 1 end
    elseif a == '--out' then
      if v == '' then error(('%s: --out needs a directory, got an empty string'):format(spec.name), 0) end
      opts.out, out_given = v, true
    elseif a == '--name' then
      if not v:match('^[%w_.,=+%-]+$') then
        error(('%s: --name must be letters, digits and _ . , = + -, got %q'):format(spec.name, v), 0)
      end
      opts.name = v
    elseif a == '--resume' then opts.resume = v
    elseif a == '--threads' then opts.threads = int_arg(spec, a, v, 1, 1024)
    elseif a == '--checkpoint-every' then opts.checkpoint_every = int_arg(spec, a, v, 0)
    elseif a == '--checkpoint-epochs' then opts.checkpoint_epochs = int_arg(spec, a, v, 0)
    elseif a == '--keep' then opts.keep = int_arg(spec, a, v, 1)
    elseif a == '--best' then
      opts.best, opts.best_mode = parse_best(spec.name .. ': --best', v)
    elseif a == '--bucket-mb' then
      opts.bucket_mb = tonumber(v)
      if not opts.bucket_mb or opts.bucket_mb <= 0 then
        error(('%s: --bucket-mb needs a positive number, got %s'):format(spec.name, tostring(v)), 0)
      end
    elseif a == '--dist-check' then opts.dist_check = true; i = i - 1
    elseif a == '--smoke' then opts.smoke = true; i = i - 1
    elseif a == '--no-save' then no_save = true; i = i - 1
    elseif a == '--help' or a == '-h' then opts.help = true; i = i - 1
    else
      error(('%s: unknown argument %q\n%s'):format(spec.name, a, usage(spec)), 0)
    end
    i = i + 2
  end
  if no_save and (out_given or opts.resume) then
    error(('%s: --no-save keeps nothing on disk, so it cannot go with %s')
      :format(spec.name, out_given and '--out' or '--resume'), 0)
  end
  if no_save then opts.out = false end
  if opts.resume and (next(opts.set) or opts.seed or opts.smoke) then
    error(('%s: --resume continues a run with its own config and seed; --set, --seed and --smoke cannot change them')
      :format(spec.name), 0)
  end
  opts.seed = opts.seed or 0
  return opts
end

-- ==== Running ============================================================

-- Reading a key that is not in the config is an error that names it (a
-- typo such as cfg.hiden would otherwise be a silent nil). Writing a new
-- key works, and pairs() sees the keys as before.
local function strict(cfg)
  return setmetatable(cfg, {
    __index = function(t, k)
      error(('the config has no key %s (its keys: %s); give it a default in config = {...}')
        :format(type(k) == 'string' and ('%q'):format(k) or tostring(k), valid_keys(t)), 2)
    end,
  })
end

-- config_of(spec, opts) -> the config of a run: the spec's defaults, the
-- smoke config with opts.smoke, then opts.set (--set key=value).
function M.config_of(spec, opts)
  local cfg = {}
  for k, v in pairs(spec.config) do cfg[k] = v end
  if opts.smoke then for k, v in pairs(spec.smoke or {}) do cfg[k] = v end end
  for k, v in pairs(opts.set or {}) do cfg[k] = v end
  return cfg
end

-- The error of a run as the REPL shows one: the message, then the frames
-- of the user's code, innermost first, with runs of frames inside usagi as
-- one line each. A message raised inside the library loses its position
-- there; the user's frames say where it came from.
local function user_traceback(e)
  local R = require 'usagi.repl'
  if type(e) == 'string' then
    local lib = debug.getinfo(1, 'S').source:match('^@(.*/)[^/]*$')
    if lib and e:sub(1, #lib) == lib then e = e:gsub('^[^:]*:%d+: ', '', 1) end
  end
  return R.msghandler(e)            -- a tail call: its frames start at the error
end

-- A signal that stopped the code at once (in the set-up, or a second one
-- in a step that did not end): the run's status is 'interrupted', and
-- --resume goes on from its last checkpoint, or starts it again.
local function stopped_at_once(run, sig)
  local where = run.dir and ('; resume with usagi run --resume %s%s'):format(run.dir,
    run.last_checkpoint and (' (from %s)'):format(run.last_checkpoint:match('[^/]+$')) or '') or ''
  run.interrupted = ('stopped by SIG%s after step %d, %s%s'):format(sig, run.step or 0,
    run.step_ended and 'in the middle of the next' or 'before its first step ended', where)
  return run.interrupted
end

-- The thread count recorded in a run directory's results.h5, or nil.
local function threads_of(dir)
  local ok, n = require('usagi.run').read_results(dir, function(f) return f:attr('/', 'threads') end)
  n = ok and math.tointeger(n)
  return n and n >= 1 and n or nil
end

-- run_experiment(spec, opts) -> run, result. opts as parse_args gives,
-- plus quiet; without opts.out the run stays in memory (no directory),
-- unless opts.resume names the directory of the run to go on with.
function M.run_experiment(spec, opts)
  opts = opts or {}
  -- a resumed run keeps the thread count it ran with, unless --threads says
  -- otherwise: BLAS splits its sums by the threads, so the bits follow them
  local threads = opts.threads or (opts.resume and threads_of(opts.resume))
  if threads then usagi.set_num_threads(threads) end
  local out = opts.out
  if out == nil then out = opts.resume and 'runs' or false end   -- a resume writes in its own directory
  local given = spec
  spec = setmetatable({ checkpoint = checkpoint_of(given) }, { __index = given })
  local run = require('usagi.run').open(spec, M.config_of(spec, opts), {
    seed = opts.seed or 0, out = out, name = opts.name, resume = opts.resume,
    checkpoint_every = opts.checkpoint_every, checkpoint_epochs = opts.checkpoint_epochs,
    keep = opts.keep, best = opts.best,
    best_mode = opts.best_mode, quiet = opts.quiet,
    script = opts.script, argv = opts.argv, smoke = opts.smoke,
    dist = opts.dist, dist_check = opts.dist_check, bucket_mb = opts.bucket_mb, threads = threads })
  usagi.manual_seed(run.seed)
  if run.dir and not opts.quiet then io.stderr:write(('%s: run %s\n'):format(spec.name, run.dir)) end
  -- A signal ends the run at a step's end, with a checkpoint (run_progress.lua,
  -- Run:_stop_if_signalled), not in the middle of a step or a write.
  -- Until the first step ends there is nothing to checkpoint, so a signal
  -- in the set-up (reading data, building the model) stops it at once;
  -- not under mpirun, where the ranks must agree on the step they stop at
  -- (one rank stopping alone would leave the others in a collective).
  if opts.out then usagi.sys.trap((run.world or 1) == 1) end
  local config = run.config
  if type(config) == 'table' and getmetatable(config) == nil then strict(config) end
  local ok, result = xpcall(spec.run, function(e)
    if run.diverged or run.stopped or run.interrupted then return e end
    local mt = getmetatable(e)
    if type(e) == 'table' and type(mt) == 'table' and mt.plain then return e end   -- usagi.data's missing set
    -- (a library frame that re-raised it may have put a position in front)
    local sig = type(e) == 'string' and e:match('interrupted by SIG(%u+)$')
    if sig then return stopped_at_once(run, sig) end
    return user_traceback(e)
  end, run, run.config)
  local status = ok and 'ok' or run.interrupted and 'interrupted' or run.diverged and 'diverged'
    or 'error: ' .. tostring(result):match('^[^\n]*')
  -- a run that never ended a step is still in at_once: its finish waits
  usagi.sys.trap(false)
  local finished, err = pcall(run.finish, run, status)
  usagi.sys.untrap()
  if not ok then error(result, 0) end
  if not finished then error(err, 0) end
  return run, result
end

-- main(spec, args, script) -> exit code: what `usagi run` does.
function M.main(spec, args, script)
  local ok, opts = pcall(M.parse_args, spec, args)
  if not ok then io.stderr:write(opts, '\n'); return 2 end
  if opts.help then print(usage(spec)); return 0 end
  opts.script = script
  opts.argv = { 'usagi', 'run', script }
  for _, a in ipairs(args) do opts.argv[#opts.argv + 1] = a end
  local ran, err = pcall(M.run_experiment, spec, opts)
  if not ran then
    err = tostring(err)
    io.stderr:write(err:find('^usagi ') and '' or spec.name .. ': ', err, '\n')
    -- stopped by a signal, at a step all ranks agreed on: the shell's code
    local sig = err:match('^stopped by SIG(%u+) after step')
    if sig then return ({ HUP = 129, INT = 130, TERM = 143 })[sig] or 1 end
    -- one rank's failure stops them all: the others would wait forever
    -- in their next collective
    local dist = package.loaded['usagi.dist']
    local ok, ranks = pcall(function() return dist and dist.size() end)
    if ok and ranks and ranks > 1 then io.stderr:flush(); dist.abort(1) end
    return 1
  end
  return 0
end

-- usagi.experiment(spec) -> the experiment `usagi run FILE` runs (and
-- `usagi FILE`); a script returns it. The spec:
--   name        string     runs go to runs/<name>/<run-id>/
--   config      table      the defaults, every key a run reads: numbers,
--                          strings, booleans; --set key=value overrides one
--                          (checked against the default's type); reading a
--                          key that is not there is an error naming it
--   smoke       table      overrides for --smoke, the seconds-long config
--                          of the tests (its keys must be in config)
--   checkpoint  table      optional: every = N steps, every_epochs = N,
--                          keep = K (3), best = 'metric' or 'metric:max'
--                          (checkpoints/best.h5, as --best), mode = 'min'|'max'
--   run         function(run, cfg): the experiment; run is a usagi.run.Run
--                          (help 'Run:log', 'Run:progress', 'Run:batches',
--                          'Run:track'), cfg the config of this run
--   model       function   optional: function(cfg, data) -> the untrained
--                          model; the run builds it with run:model(data),
--                          which keeps data (sizes, a data.Vocab) in
--                          results.h5 for usagi.runs.load
--   infer       function   optional: function(model, input, ctx) -> the
--                          answer to one input (`usagi infer RUN INPUT`);
--                          infer_options (defaults) and infer_help go with it
-- experiments/binary_addition.lua is a whole one to copy; attention_dates.lua
-- declares model and infer.
function M.experiment(spec)
  assert(type(spec) == 'table' and type(spec.name) == 'string' and type(spec.config) == 'table'
         and type(spec.run) == 'function',
         'usagi.experiment: expects {name = string, config = table, run = function}')
  for _, k in ipairs { 'model', 'infer' } do
    if spec[k] ~= nil and type(spec[k]) ~= 'function' then
      error(('usagi.experiment: %s of %s must be a function, got %s'):format(k, spec.name, type(spec[k])), 2)
    end
  end
  if spec.infer ~= nil and spec.model == nil then
    error(('usagi.experiment: %s declares infer without model; usagi infer builds the model with it')
      :format(spec.name), 2)
  end
  for k in pairs(spec.smoke or {}) do
    if spec.config[k] == nil then
      error(('usagi.experiment: smoke key %q is not in the config of %s'):format(k, spec.name), 2)
    end
  end
  local ok, err = pcall(checkpoint_of, spec)
  if not ok then error('usagi.experiment: ' .. err, 2) end
  -- Run now when the calling file is the script usagi was started with:
  -- its source is arg[0]; or, after `return usagi.experiment {...}` (a tail
  -- call, so the script's frame is gone), the caller is the host itself --
  -- a C frame without a name, where require and dofile have theirs.
  local caller = debug.getinfo(2, 'Sn')
  local main = caller and (caller.source == '@' .. tostring(arg and arg[0]) or
    (debug.getinfo(1, 't').istailcall and caller.what == 'C' and caller.name == nil))
  if arg and arg[0] and main and not M.loading then
    local code = M.main(spec, arg, arg[0])
    if code ~= 0 then os.exit(code) end
  end
  return spec
end

return M
