-- usagi.runs -- a finished run as a model in use: the trained model built
-- again from what the run kept, in eval mode, with its vocabulary, and
-- the `usagi infer` command that asks it.
--
--   local m = usagi.runs.load('runs/attention_dates/20260101-120000')  -- or .../checkpoints/best.h5
--   m:infer('march 3, 1999')      --> '1999-03-03'
--   m.model, m.vocab, m.config    -- the nn module (eval mode), its data.Vocab, the run's config
--
-- An experiment takes part by declaring, beside config and run,
--   model = function(cfg, data) ... end         build the (untrained) model
--   infer = function(model, input, ctx) ... end  answer one input
--   infer_options = { n = 20, ... }              options of `usagi infer` (defaults)
--   infer_help = 'what an input is'             shown by `usagi infer RUN --help`
-- and by building its model with run:model(data) (or run:keep_data(data)) in its
-- run function: data (sizes, a data.Vocab, the ids of special tokens) goes
-- to /infer of results.h5, the final parameters to /params. Loading runs
-- the experiment's script to get model and infer back (the script named in
-- results.h5, else experiments/<name>.lua), never code from the file.
local usagi = require 'usagi'
local store = require 'usagi.store'
local Vocab = require 'usagi.vocab'
local sys = usagi.sys

local M = {}

-- ==== What a run keeps: /infer ==========================================

local function name_of(k)
  if math.type(k) == 'integer' then return ('[%d]'):format(k) end
  return k
end

local key_of = require('usagi.util').key_of

-- check_kept(fn, t): every key a name or an integer, every value one that
-- results.h5 holds (a number, string, boolean, tensor, data.Vocab, or a
-- plain table of those), so a bad value fails when it is kept, not at the
-- end of the run.
function M.check_kept(fn, t, path, seen)
  path, seen = path or '', seen or {}
  if seen[t] then error(('%s: data%s refers to itself; it must be a tree'):format(fn, path), 3) end
  seen[t] = true
  for k, v in pairs(t) do
    if not (math.type(k) == 'integer' or (type(k) == 'string' and k:match('^[%w_.%-]+$'))) then
      error(('%s: keys must be names (letters, digits, _ . -) or integers, got %s'):format(fn, tostring(k)), 3)
    end
    local here, kind = ('%s.%s'):format(path, tostring(k)), type(v)
    if kind == 'table' and not Vocab.is_vocab(v) and not usagi.is_tensor(v) then
      if getmetatable(v) ~= nil then
        error(('%s: data%s is an object; keep numbers, strings, booleans, tensors, data.Vocab '
          .. 'or plain tables of those'):format(fn, here), 3)
      end
      M.check_kept(fn, v, here, seen)
    elseif not (kind == 'number' or kind == 'string' or kind == 'boolean' or Vocab.is_vocab(v)
                or usagi.is_tensor(v)) then
      error(('%s: data%s is a %s; keep numbers, strings, booleans, tensors, data.Vocab or plain '
        .. 'tables of those'):format(fn, here, kind), 3)
    end
  end
  seen[t] = nil
end

local function write_tree(f, path, t)
  f:group(path)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, p = t[k], path .. '/' .. name_of(k)
    if Vocab.is_vocab(v) then v:write(f, p)
    elseif usagi.is_tensor(v) then f:write(p, v)
    elseif type(v) == 'table' then write_tree(f, p, v)
    else f:attr(path, name_of(k), v) end
  end
end

-- write_kept(f, data): data as /infer of the open results file f (again
-- from scratch when it is there already).
function M.write_kept(f, data)
  if f:exists('/infer') then f:remove('/infer') end
  write_tree(f, '/infer', data)
end

local function read_tree(f, path)
  local t = {}
  for name, v in pairs(f:attrs(path)) do t[key_of(name)] = v end
  for _, name in ipairs(f:list(path)) do
    local p = path .. '/' .. name
    if Vocab.is_group(f, p) then t[key_of(name)] = Vocab.read(f, p)
    elseif f:kind(p) == 'group' then t[key_of(name)] = read_tree(f, p)
    else t[key_of(name)] = f:read(p) end
  end
  return t
end

-- read_kept(f) -> the data write_kept wrote, its Vocabs as data.Vocab; {}
-- when the run kept none.
function M.read_kept(f)
  if not f:exists('/infer') then return {} end
  return read_tree(f, '/infer')
end

-- ==== Finding a run's pieces ============================================

local function parent(p)
  local d = p:match('^(.*)/[^/]*$')
  if d == nil then return '.' end
  return d == '' and '/' or d
end

-- The repository root, from this file's path (scripts/usagi/runs.lua).
local function repo_root()
  local file = debug.getinfo(1, 'S').source:match('^@(.*)$') or ''
  return parent(parent(parent(file)))
end

-- A file usagi did not just write is read whole in a child first
-- (usagi.h5.verify): a damaged one is an error here, not a crash.
local function verified(fn, path)
  local fine, why = usagi.h5.verify(path)
  if not fine then error(('%s: %s cannot be read: %s'):format(fn, path, tostring(why)), 0) end
end

-- where(path) -> dir (the run directory), checkpoint (a checkpoint file
-- named by path, or nil).
local function where(fn, path)
  if type(path) ~= 'string' or path == '' then
    error(('%s: path must be a run directory or a checkpoint file, got %s'):format(fn, tostring(path)), 0)
  end
  path = path:gsub('(.)/+$', '%1')
  local kind = sys.kind(path)
  if kind == 'directory' then
    if not sys.kind(path .. '/results.h5') then
      error(('%s: %s is not a run directory (it has no results.h5); give runs/<experiment>/<run-id>')
        :format(fn, path), 0)
    end
    return path, nil
  elseif kind == 'file' then
    if path:match('results%.h5$') then return parent(path), nil end
    local cdir = parent(path)
    if not cdir:match('checkpoints$') then
      error(('%s: %s is neither a run directory, its results.h5 nor a file of its checkpoints/')
        :format(fn, path), 0)
    end
    return parent(cdir), path
  end
  error(('%s: no run at %s (no such directory or file)'):format(fn, path), 0)
end

-- The newest step checkpoint of a run, or nil.
local function newest_checkpoint(dir)
  local ok, names = pcall(sys.listdir, dir .. '/checkpoints')
  if not ok then return nil end
  local steps = {}
  for _, n in ipairs(names) do if n:match('^step%-%d+%.h5$') then steps[#steps + 1] = n end end
  table.sort(steps)
  return steps[#steps] and dir .. '/checkpoints/' .. steps[#steps]
end

-- The experiment's spec: opts.spec, else the script the run was started
-- with, else experiments/<name>.lua here or in this repository.
local function find_spec(fn, name, attrs, opts)
  if opts.spec then return opts.spec end
  local tried, list = {}, {}
  local function add(p) if p and p ~= '' and not tried[p] then tried[p] = true; list[#list + 1] = p end end
  add(opts.script)
  add(attrs.script)
  add(('experiments/%s.lua'):format(name))
  add(('%s/experiments/%s.lua'):format(repo_root(), name))
  for _, p in ipairs(list) do
    if sys.kind(p) == 'file' then
      local experiment = require 'usagi.experiment'
      local saved_arg = _G.arg
      _G.arg = { [0] = p }
      experiment.loading = true
      local ok, spec = pcall(dofile, p)
      experiment.loading = false
      _G.arg = saved_arg
      if not ok then error(('%s: the experiment script %s fails to load: %s'):format(fn, p, tostring(spec)), 0) end
      if type(spec) == 'table' and spec.name == name then return spec end
    end
  end
  error(('%s: cannot find the script of experiment %s (tried %s); give it with {script = PATH}')
    :format(fn, tostring(name), table.concat(list, ', ')), 0)
end

-- ==== Loading ============================================================

-- A loaded run (runs.load makes it): m.model, m.vocab, m.data, m.config,
-- m.experiment, m.dir, m.source, and m:infer(input [, opts]).
local Loaded = {}
Loaded.__index = Loaded
M.Loaded = Loaded

-- runs.load(path [, opts]) -> a loaded run m: m.model (the trained model,
-- in eval mode), m.vocab (its data.Vocab, when the run kept one), m.data
-- (all it kept), m.config, m.experiment, m.dir, m.source (the file the
-- parameters came from), and m:infer(input [, opts]). path is a run
-- directory, its results.h5, or one of its checkpoints (best.h5: the best
-- model rather than the last). opts: best = true (checkpoints/best.h5),
-- spec (the experiment, when its script is not to be found), script.
-- A run without final parameters (killed, stopped, failed) loads from its
-- newest checkpoint, which m.source names.
function M.load(path, opts)
  local fn = 'usagi.runs.load'
  opts = opts or {}
  if type(opts) ~= 'table' then error(('%s: opts must be a table, got %s'):format(fn, type(opts)), 2) end
  local dir, checkpoint = where(fn, path)
  if opts.best then
    checkpoint = dir .. '/checkpoints/best.h5'
    if not sys.kind(checkpoint) then
      error(('%s: %s has no checkpoints/best.h5 (the experiment or --best names no metric to keep the best by)')
        :format(fn, dir), 0)
    end
  end
  local results = dir .. '/results.h5'
  verified(fn, results)
  local attrs, config, kept, params
  do
    local f <close> = usagi.h5.open(results, 'r')
    attrs = f:attrs('/')
    config = f:exists('/config') and store.read_tree(f, '/config') or {}
    kept = M.read_kept(f)
    if not checkpoint and f:exists('/params') then params = store.read_tree(f, '/params') end
  end
  local source = results
  if not params then
    checkpoint = checkpoint or newest_checkpoint(dir)
    if not checkpoint then
      error(('%s: %s has no trained parameters: its status is %s, results.h5 holds no /params and '
        .. 'checkpoints/ is empty'):format(fn, dir, tostring(attrs.status)), 0)
    end
    verified(fn, checkpoint)
    local tree = store.load(checkpoint)
    if type(tree.objects) ~= 'table' or type(tree.objects.model) ~= 'table' then
      error(('%s: %s is not a checkpoint of a model (it holds no objects/model)'):format(fn, checkpoint), 0)
    end
    params, source = tree.objects.model, checkpoint
    if type(tree.config) == 'table' then config = tree.config end
  end
  local name = attrs.experiment
  local spec = find_spec(fn, name, attrs, opts)
  if type(spec.model) ~= 'function' then
    error(('%s: the experiment %s declares no model, so its runs cannot be loaded (an experiment '
      .. 'declares model = function(cfg, data) and infer = function(model, input, ctx); '
      .. 'experiments/README.md says how)'):format(fn, tostring(name)), 0)
  end
  local built, model = pcall(spec.model, config, kept)
  if not built then
    local why = tostring(model):gsub('^[^\n:]*:%d+: ', '')
    if next(kept) == nil then
      error(('%s: %s keeps nothing for inference (results.h5 has no /infer: the run was made before '
        .. 'its experiment kept it), and %s\'s model(cfg, data) cannot do without (%s); run the '
        .. 'experiment again'):format(fn, dir, name, why), 0)
    end
    error(('%s: %s\'s model(cfg, data) fails on what %s kept: %s'):format(fn, name, dir, why), 0)
  end
  if type(model) ~= 'table' or type(model.load_state_dict) ~= 'function' then
    error(('%s: %s\'s model(cfg, data) must return a model with load_state_dict, got %s')
      :format(fn, name, type(model)), 0)
  end
  local ok, err = pcall(model.load_state_dict, model, params)
  if not ok then
    error(('%s: the parameters in %s do not fit the model %s builds: %s'):format(fn, source, name,
      tostring(err):gsub('^[^\n]-%.lua:%d+: ', '')), 0)
  end
  if type(model.eval) == 'function' then model:eval() end
  return setmetatable({ model = model, vocab = kept.vocab, data = kept, config = config, experiment = name,
                        spec = spec, dir = dir, source = source, attrs = attrs }, Loaded)
end

-- The options of an experiment's infer: its infer_options with the given
-- ones over them, each converted to the type of its default.
local function options_of(self, given)
  local defaults, out = self.spec.infer_options or {}, {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given or {}) do
    local d = defaults[k]
    if d == nil then
      local keys = {}
      for key in pairs(defaults) do keys[#keys + 1] = key end
      table.sort(keys)
      error(('%s infer: unknown option %s (it has: %s)'):format(self.experiment, tostring(k),
        #keys > 0 and table.concat(keys, ', ') or 'none'), 0)
    end
    if type(d) == 'number' and type(v) ~= 'number' then
      local n = tonumber(v)
      if not n or (math.type(d) == 'integer' and math.type(n) ~= 'integer' and n ~= math.floor(n)) then
        error(('%s infer: %s must be %s, got %q'):format(self.experiment, k,
          math.type(d) == 'integer' and 'an integer' or 'a number', tostring(v)), 0)
      end
      v = math.type(d) == 'integer' and math.tointeger(n) or n
    elseif type(d) == 'boolean' and type(v) ~= 'boolean' then
      if v == 'true' or v == '1' then v = true elseif v == 'false' or v == '0' then v = false
      else error(('%s infer: %s must be true or false, got %q'):format(self.experiment, k, tostring(v)), 0) end
    elseif type(d) == 'string' then v = tostring(v) end
    out[k] = v
  end
  return out
end

-- m:infer(input [, opts]) -> the experiment's answer to input (its infer
-- says what an input is: a date, a prompt, a sentence, an image file),
-- computed without a graph. opts: seed (usagi.manual_seed first, so a
-- sampled answer repeats), out (the directory for pictures, default
-- <run>/infer), options (the experiment's infer_options, by name), index
-- (the input's number among several: its files are name-<index>.ext),
-- quiet (the notes, such as the path of a picture, are not written to
-- stderr; m.notes keeps them).
function Loaded:infer(input, opts)
  opts = opts or {}
  if type(opts) ~= 'table' then error('Loaded:infer: opts must be a table, got ' .. type(opts), 2) end
  if type(self.spec.infer) ~= 'function' then
    error(('%s declares no infer = function(model, input, ctx): its model loads (m.model) but '
      .. 'answers nothing by itself'):format(self.experiment), 0)
  end
  local out, notes = opts.out or (self.dir .. '/infer'), {}
  local ctx = { config = self.config, data = self.data, vocab = self.vocab, dir = self.dir,
                out = out, options = options_of(self, opts.options), run = self, notes = notes }
  -- ctx.path(name) -> a path for a file the answer writes, in out; the
  -- k-th of several inputs (opts.index) writes name-k.ext
  function ctx.path(name)
    local ok, err = pcall(sys.mkdir, out)
    if not ok then error(('%s infer: cannot make %s: %s'):format(self.experiment, out, tostring(err)), 0) end
    if opts.index then
      local stem, ext = name:match('^(.*)(%.[^.]*)$')
      name = ('%s-%d%s'):format(stem or name, opts.index, ext or '')
    end
    return out .. '/' .. name
  end
  -- ctx.note(text): a line for the user besides the answer (stderr in the CLI)
  function ctx.note(text) notes[#notes + 1] = text end
  self.notes = notes
  if opts.seed ~= nil then usagi.manual_seed(opts.seed) end
  local res = table.pack(pcall(usagi.no_grad, function() return self.spec.infer(self.model, input, ctx) end))
  if not opts.quiet then
    for _, note in ipairs(notes) do io.stderr:write(note, '\n') end
  end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

function Loaded:__tostring()
  return ('usagi.runs: %s of %s (parameters from %s)'):format(self.dir, tostring(self.experiment), self.source)
end

-- ==== usagi infer ========================================================

M.help = [[
usagi infer RUN_DIR|CHECKPOINT.h5 [INPUT...] [--best] [--seed N] [--out DIR] [--KEY VALUE]...
The trained model of a run, answering each INPUT (what an input is depends
on the experiment: a date, a sum, a prompt, a sentence, a word, an image
file; '-' reads inputs from stdin, one a line; after '--' every argument is
an input, even one that starts with '-'). The model is built again from what the run kept in results.h5 (its
config, parameters and vocabulary); --best takes checkpoints/best.h5
instead of the final parameters, as does a checkpoint file given for the
run. --seed N (default 0) seeds the sampling, so an answer repeats;
pictures go to --out DIR (default RUN_DIR/infer). The experiment's own
options (--n 50, --temperature 0.5, ...) are listed by
`usagi infer RUN_DIR --help`. Example:
  usagi run experiments/attention_dates.lua --smoke
  usagi infer runs/attention_dates/<run-id> 'september 27, 1994']]

-- The experiment's part of --help: what an input is, its options.
local function wrap(text, width)
  local lines, line = {}, ''
  for word in text:gmatch('%S+') do
    if line ~= '' and #line + 1 + #word > width then lines[#lines + 1], line = line, word
    else line = line == '' and word or line .. ' ' .. word end
  end
  if line ~= '' then lines[#lines + 1] = line end
  return table.concat(lines, '\n')
end

local function experiment_help(m)
  local lines = { wrap(('%s: %s'):format(m.experiment, m.spec.infer_help or 'no infer_help in its script'), 78) }
  local opts = m.spec.infer_options or {}
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  if #keys > 0 then
    lines[#lines + 1] = 'options (default):'
    for _, k in ipairs(keys) do lines[#lines + 1] = ('  --%-16s %s'):format(k, tostring(opts[k])) end
  end
  return table.concat(lines, '\n')
end

-- Print an answer: a string, a number, or a list of lines.
local function print_answer(a)
  if type(a) == 'table' then
    for _, line in ipairs(a) do print(tostring(line)) end
  elseif a ~= nil then
    print(tostring(a))
  end
end

-- main(args) -> exit code: `usagi infer ...` (usagi.cli hands it over).
function M.main(args)
  local path, inputs, options, opts, help, dashdash = nil, {}, {}, { seed = 0 }, false, false
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == '-h' or a == '--help' then help = true
    elseif a == '--best' then opts.best = true
    elseif a == '--' then
      for j = i + 1, #args do inputs[#inputs + 1] = args[j] end
      dashdash = true
      break
    elseif a:match('^%-%-[%w_]+$') then
      local v = args[i + 1]
      if v == nil then io.stderr:write(('usagi infer: %s needs a value\n'):format(a)); return 2 end
      local k = a:sub(3)
      if k == 'seed' then
        opts.seed = math.tointeger(tonumber(v))
        if not opts.seed then io.stderr:write(('usagi infer: --seed needs an integer, got %q\n'):format(v)); return 2 end
      elseif k == 'out' then opts.out = v
      else options[k] = v end
      i = i + 1
    elseif not path then path = a
    else inputs[#inputs + 1] = a end
    i = i + 1
  end
  if not path then
    if help then print(M.help); return 0 end
    io.stderr:write('usage: usagi infer RUN_DIR [INPUT...] [options]; usagi infer --help says more\n')
    return 2
  end
  local ok, m = pcall(M.load, path, { best = opts.best })
  if not ok then
    io.stderr:write('usagi infer: ', (tostring(m):gsub('^usagi%.runs%.load: ', '')), '\n')
    return 1
  end
  if help then print(M.help); print(''); print(experiment_help(m)); return 0 end
  opts.options = options
  -- '-' reads the inputs from stdin, one a line (after `--` it is an input)
  local from_stdin = {}
  for _, input in ipairs(inputs) do
    if input == '-' and not dashdash then
      for line in io.stdin:lines() do from_stdin[#from_stdin + 1] = line end
    else from_stdin[#from_stdin + 1] = input end
  end
  inputs = from_stdin
  if #inputs == 0 then inputs[1] = false end            -- the experiment's answer to no input
  for k, input in ipairs(inputs) do
    opts.index = #inputs > 1 and k or nil
    local fine, answer = pcall(m.infer, m, input or nil, opts)
    if not fine then
      io.stderr:write('usagi infer: ', (tostring(answer):gsub('^[^\n:]*:%d+: ', '')), '\n')
      return 1
    end
    print_answer(answer)
  end
  return 0
end

return M
