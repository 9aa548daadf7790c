-- usagi.doc -- help(x): the short doc of every public function, class and
-- plugin of usagi, and the list of them that a test walks to prove that
-- none lacks one (tests/lua/doc_spec.lua).
--
-- Where a doc comes from, in this order:
--   1. the doc of an op declared in an op table (host/ops/README.md); a text
--      registered with doc.add (the C binding's other functions, written
--      in scripts/usagi/doc_binding.lua); for a plugin's C function fam.fn,
--      the comment block starting `-- fam.fn(` at the end of its Lua face;
--   2. for a Lua function, the comment block right above its definition in
--      its source file (or in a plugin's embedded face, kept by the plugin
--      registry), the way the library is already written; for a class, the
--      comment above its __init;
--   3. a tensor method without a text of its own: usagi.<name>'s text (t:f(...)
--      is usagi.f(t, ...)); an in-place t:f_ refers to f.
-- So docs live beside the code they describe, and a new public function
-- without a comment fails the spec.
--
--   help()                 where to start
--   help(nn.LSTM)          signature, options, equations' reference
--   help 'Tensor:mm'       by name; help(t) for a tensor, help(m) for a module
local usagi = require 'usagi'

local doc = {}
local texts = {}                -- name -> text (doc.add)

-- doc.add(prefix, {name = text, ...}): register texts for prefix .. name.
function doc.add(prefix, t)
  for k, v in pairs(t) do texts[prefix .. k] = v end
end

-- ==== Comments above a definition ========================================

local sources = {}              -- chunk source -> its lines (or false)

local function lines_of(source)
  if sources[source] ~= nil then return sources[source] end
  local text
  local path = source:match('^@(.*)$')
  if path then
    local f = io.open(path, 'r')
    if f then text = f:read('a'); f:close() end
  else
    local family = source:match('^=usagi%.([%w_]+) %(Lua face%)$')
    for _, p in ipairs(family and usagi.plugins() or {}) do
      if p.name == family then text = p.face end
    end
  end
  local lines = false
  if text then
    lines = {}
    for l in (text .. '\n'):gmatch('(.-)\r?\n') do lines[#lines + 1] = l end
  end
  sources[source] = lines
  return lines
end

-- The comment block ending right above line n (without the '-- '), or nil.
local function comment_above(lines, n)
  local out = {}
  for i = n - 1, 1, -1 do
    local l = lines[i]
    local c = l and l:match('^%s*%-%-(.*)$')
    if not c or c:match('^%s*====') or c:match('^%[%[') then break end
    table.insert(out, 1, (c:gsub('^ ', '')))
  end
  if #out == 0 then return nil end
  return table.concat(out, '\n')
end

-- The doc comment of a Lua function, or nil.
local function comment_of(f)
  local info = debug.getinfo(f, 'S')
  if info.what ~= 'Lua' or info.linedefined < 1 then return nil end
  local lines = lines_of(info.source)
  return lines and comment_above(lines, info.linedefined)
end

-- The opening comment of a file (its lines): what the file is for.
local function header_of(lines)
  if not lines then return nil end
  local out = {}
  for _, l in ipairs(lines) do
    local c = l:match('^%-%-(.*)$')
    if not c then break end
    out[#out + 1] = c:gsub('^ ', '')
  end
  return #out > 0 and table.concat(out, '\n') or nil
end

-- The opening comment of a plugin's face: what the plugin is.
local function face_header(family)
  return header_of(lines_of('=usagi.' .. family .. ' (Lua face)'))
end

-- The Lua modules of the library, under the names help gives them, and
-- the module each one is: help(usagi.data) and help 'usagi.run' print the
-- opening comment of its file.
local MODULES = {
  { 'nn', 'usagi.nn' }, { 'nn.init', 'usagi.nn_init' }, { 'optim', 'usagi.optim' },
  { 'usagi.data', 'usagi.data' }, { 'usagi.plot', 'usagi.plot' }, { 'usagi.store', 'usagi.store' },
  { 'usagi.run', 'usagi.run' },
}
local MODULE_OF = {}
for _, m in ipairs(MODULES) do MODULE_OF[m[1]] = m[2] end

local function module_header(mod)
  local path = package.searchpath(mod, package.path)
  return path and header_of(lines_of('@' .. path))
end

-- A plugin's C function fam.fn: the comment block in its face that starts
-- with `-- fam.fn(` (the faces end with one per C function).
local function face_comment(fam, fn)
  local lines = lines_of('=usagi.' .. fam .. ' (Lua face)')
  local head = '-- ' .. fam .. '.' .. fn .. '('
  for i, l in ipairs(lines or {}) do
    if l:sub(1, #head) == head then
      local out = {}
      for j = i, #lines do
        local c = lines[j]:match('^%-%- ?(.*)$')
        if not c or c == '' then break end
        out[#out + 1] = c
      end
      return table.concat(out, '\n')
    end
  end
end

-- ==== The public surface ===================================================

local function sorted(t)
  local ks = {}
  for k in pairs(t) do if type(k) == 'string' then ks[#ks + 1] = k end end
  table.sort(ks)
  return ks
end

local function is_class(v)
  return type(v) == 'table' and rawget(v, '__index') == v
end

-- The class a class inherits from: nn's `super`, or the __index of its
-- metatable (optimizers, schedulers).
local function parent_of(c)
  local p = rawget(c, 'super')
  if p == nil and type(getmetatable(c)) == 'table' then p = rawget(getmetatable(c), '__index') end
  return type(p) == 'table' and p ~= c and p or nil
end

-- doc.plugin_names() -> the families of every plugin on package.cpath
-- (usagi/<family>.so), sorted: what doc_spec loads before it checks.
function doc.plugin_names()
  local out, seen = {}, {}
  for template in package.cpath:gmatch('[^;]+') do
    local dir = template:match('^(.-)%?%.so$')
    local ok, list = pcall(usagi.sys.listdir, dir and (dir ~= '' and dir or './') .. 'usagi')
    for _, f in ipairs(ok and list or {}) do
      local fam = f:match('^([%w_]+)%.so$')
      if fam and not seen[fam] then seen[fam] = true; out[#out + 1] = fam end
    end
  end
  table.sort(out)
  return out
end

-- Tables of usagi's Lua library whose functions and classes are public,
-- as prefix -> module (nn's plugin classes arrive as plugins load).
local function libraries()
  return {
    { 'nn.', require 'usagi.nn' }, { 'nn.init.', require 'usagi.nn_init' },
    { 'optim.', require 'usagi.optim' }, { 'usagi.data.', require 'usagi.data' },
    { 'usagi.plot.', require 'usagi.plot' }, { 'usagi.store.', require 'usagi.store' },
    { 'usagi.run.', require 'usagi.run' }, { 'usagi.runs.', require 'usagi.runs' },
  }
end

-- Reachable but not for users, left out of the list: the C kernels the
-- optimizers call, and the hooks a class factory gives each optimizer and
-- scheduler class (check/update/lr_at, called by step()).
local PRIVATE = { ['usagi._optim'] = true }
local HOOKS = { check = true, update = true, lr_at = true }

-- doc.public() -> a sorted list of {name, value}: every public function,
-- class and class method of usagi, its Lua library and the plugins that
-- are loaded (doc_spec loads them all first).
function doc.public()
  local out, seen = {}, {}
  local named = {}
  local function add(name, v)
    -- a lazy name (usagi.experiment) is in usagi's table once it was used
    if PRIVATE[name] or named[name] then return end
    named[name] = true
    out[#out + 1] = { name, v }
    if is_class(v) and not seen[v] then
      seen[v] = true
      local cname = name:gsub('%.([%w_]+)$', '.%1')
      for _, k in ipairs(sorted(v)) do
        local m = rawget(v, k)
        if type(m) == 'function' and not k:match('^_') and not HOOKS[k] then add(cname .. ':' .. k, m) end
      end
    end
  end
  for _, k in ipairs(sorted(usagi)) do
    local v = usagi[k]
    if type(v) == 'function' then add('usagi.' .. k, v) end
  end
  for _, sub in ipairs { 'h5', 'image', 'sys' } do
    for _, k in ipairs(sorted(usagi[sub])) do
      if type(usagi[sub][k]) == 'function' then add('usagi.' .. sub .. '.' .. k, usagi[sub][k]) end
    end
  end
  add('usagi.gradcheck', usagi.gradcheck)
  add('usagi.experiment', usagi.experiment)
  add('usagi.help', usagi.help)
  for _, m in ipairs(MODULES) do add(m[1], require(m[2])) end
  local mt = getmetatable(usagi.zeros(1))
  for _, k in ipairs(sorted(mt.__methods)) do add('Tensor:' .. k, mt.__methods[k]) end
  add('Tensor.grad', mt.__fields.grad)
  for _, lib in ipairs(libraries()) do
    for _, k in ipairs(sorted(lib[2])) do
      local v = lib[2][k]
      if type(v) == 'function' or is_class(v) then add(lib[1] .. k, v) end
    end
  end
  for _, p in ipairs(usagi.plugins()) do
    local ok, m = pcall(require, 'usagi.' .. p.name)
    if ok and type(m) == 'table' then
      add('usagi.' .. p.name, m)
      for _, k in ipairs(sorted(m)) do
        -- functions, and classes such as word2vec.Model with their methods
        if type(m[k]) == 'function' or is_class(m[k]) then add('usagi.' .. p.name .. '.' .. k, m[k]) end
      end
    end
  end
  local nn = require 'usagi.nn'
  for _, k in ipairs(sorted(nn)) do
    if is_class(nn[k]) and not seen[nn[k]] then add('nn.' .. k, nn[k]) end
  end
  return out
end

-- ==== Finding a doc ========================================================

local names_by_value         -- value -> every public name it has (aliases)
local find_name              -- a name typed at help -> its entry (below)

local function aliases(v)
  if not names_by_value then
    names_by_value = {}
    for _, e in ipairs(doc.public()) do
      local l = names_by_value[e[2]] or {}
      l[#l + 1] = e[1]
      names_by_value[e[2]] = l
    end
  end
  return names_by_value[v] or {}
end

-- The comment above the line that made class `cls` (Module:extend 'Name',
-- or a factory called with 'Name'), in the file of its methods.
local function class_comment(cls)
  local name = rawget(cls, '__name')
  -- The sources of the class's own methods (not the copied metamethods),
  -- in a fixed order: a class may gather methods from several files
  -- (usagi.run's Run), and the one that names it holds its comment.
  local fs, srcs, seen = {}, {}, {}
  fs[#fs + 1] = rawget(cls, '__init')
  fs[#fs + 1] = rawget(cls, 'forward')
  for _, k in ipairs(sorted(cls)) do if not k:match('^__') then fs[#fs + 1] = rawget(cls, k) end end
  for _, f in ipairs(fs) do
    if type(f) == 'function' then
      local info = debug.getinfo(f, 'S')
      if info.what == 'Lua' and not seen[info.source] then
        seen[info.source] = true
        srcs[#srcs + 1] = info.source
      end
    end
  end
  if type(name) == 'string' then
    for _, src in ipairs(srcs) do
      local lines = lines_of(src) or {}
      for i, l in ipairs(lines) do
        if l:find("'" .. name .. "'", 1, true) or l:find('"' .. name .. '"', 1, true) then
          local c = comment_above(lines, i)
          if c then return c end
        end
      end
    end
  end
  -- a base class: `local X = {}`, X being the local behind a public name
  -- (optim.LRScheduler = Scheduler), in the file that binds that name
  -- (`M.Run = Run`), else in the first
  local names = {}
  for _, n in ipairs(aliases(cls)) do names[n:match('[%w_]+$')] = true end
  local function binds(lines, locals)
    local found = false
    for _, l in ipairs(lines) do
      local x = l:match('^[%w_.]+%.[%w_]+%s*=%s*([%w_]+)%s*$')
      if x and names[l:match('^[%w_.]+%.([%w_]+)')] then locals[x], found = true, true end
    end
    return found
  end
  local order = {}
  for _, src in ipairs(srcs) do
    local lines, locals = lines_of(src) or {}, {}
    for n in pairs(names) do locals[n] = true end
    table.insert(order, binds(lines, locals) and 1 or #order + 1, { lines, locals })
  end
  for _, o in ipairs(order) do
    local lines, locals = o[1], o[2]
    for i, l in ipairs(lines) do
      local x = l:match('^local%s+([%w_]+)%s*=%s*{')
      if x and locals[x] then
        local c = comment_above(lines, i)
        if c then return c end
      end
    end
  end
end

local text_of

-- A method without a comment that overrides one of its parent's (forward,
-- extra_repr, ...) has the parent's doc.
local function inherited(name, v)
  local cname, m = name:match('^(.*):([%w_]+)$')
  if not cname then return nil end
  for _, e in ipairs(doc.public()) do
    if e[1] == cname and is_class(e[2]) then
      local p = parent_of(e[2])
      while p do
        if rawget(p, m) then
          local pname = aliases(p)[1]
          local t = pname and text_of(pname .. ':' .. m, rawget(p, m))
          if t then return t end
        end
        p = parent_of(p)
      end
    end
  end
end

-- The texts of the ops declared in op tables (host/ops/, and plugins'),
-- taken when asked: a plugin loaded later adds its own.
local ops_seen = 0
-- The sentence on dtypes under an op's doc, from the rule its table
-- declares (host/ops/README.md).
local function dtype_line(op)
  local tensor_result, asks = false, false
  for _, o in ipairs(op.overloads) do
    tensor_result = tensor_result or o.returns ~= 'boolean' and o.returns ~= 'index'
    for _, a in ipairs(o.args) do
      if a[1] == 'dtype' or a[1] == 'dtypeopt' then asks = true end
      for _, f in ipairs(a.options or {}) do if f[2] == 'dtype' then asks = true end end
    end
  end
  local takes = op.dtypes == 'float' and 'Dtypes: f32 or f64 (i32 is refused)'
    or 'Dtypes: f32, f64 or i32'
  if not tensor_result then return takes .. '.' end
  local result = asks and 'the result has the dtype asked for'
    or ({ float = "the result has the inputs' dtype", any = "the result has the inputs' dtype",
      to_float = "the result has the inputs' dtype, f32 for i32" })[op.dtypes]
    or 'the result is ' .. op.dtypes
  return takes .. '; ' .. result .. '.'
end

local function add_op_texts()
  local all = usagi.op_table()
  for i = ops_seen + 1, #all do
    local op = all[i]
    -- a method of a plugin's userdata goes by its metatable's name
    local key = op.class and op.class .. ':' .. op.name
      or (op.module == 'usagi' and 'usagi.' or 'usagi.' .. op.module .. '.') .. op.name
    texts[key] = op.doc .. '\n' .. dtype_line(op)
    for _, alias in ipairs(op.aliases or {}) do texts['Tensor:' .. alias] = texts[key] end
  end
  ops_seen = #all
end

local function own_text(name, v)
  add_op_texts()
  if texts[name] then return texts[name] end
  if MODULE_OF[name] then return module_header(MODULE_OF[name]) end
  local family = name:match('^usagi%.([%w_]+)$')
  if family and type(v) == 'table' and family ~= 'nn' then
    for _, p in ipairs(usagi.plugins()) do
      if p.name == family then return face_header(family) end
    end
  end
  local fam, fn = name:match('^usagi%.([%w_]+)%.([%w_]+)$')
  if fam and type(v) == 'function' and debug.getinfo(v, 'S').what == 'C' then
    local t = face_comment(fam, fn)
    if t then return t end
  end
  local method = name:match('^Tensor:([%w_]+)$')
  if method then
    add_op_texts()
    if texts['usagi.' .. method] then return texts['usagi.' .. method] end
    local base = method:match('^(.-)_$')
    if base and base ~= '' and (texts['usagi.' .. base] or texts['Tensor:' .. base]) then
      return ('t:%s(...) -> t: %s in place.\n%s'):format(method, base,
        texts['usagi.' .. base] or texts['Tensor:' .. base])
    end
  end
  if type(v) == 'function' then return comment_of(v) end
  if is_class(v) then
    local init = rawget(v, '__init')
    return init and comment_of(init) or class_comment(v)
  end
end

function text_of(name, v)
  local t = own_text(name, v)
  if t then return t end
  for _, other in ipairs(v ~= nil and aliases(v) or {}) do
    if other ~= name then
      t = own_text(other, v)
      if t then return t end
    end
  end
  return inherited(name, v)
end

-- doc.text(name [, value]) -> the doc of a public name, or nil.
function doc.text(name, v)
  return text_of(name, v)
end

-- Name of a value on the public list (first one, for aliases).
local by_value
local function name_of(v)
  if not by_value then
    by_value = {}
    for _, e in ipairs(doc.public()) do
      if by_value[e[2]] == nil then by_value[e[2]] = e[1] end
    end
    -- the methods an op table gives a plugin's userdata (vocab:sample_negatives)
    local registry = debug.getregistry()
    for _, op in ipairs(usagi.op_table()) do
      local mt = op.class and registry[op.class]
      if type(mt) == 'table' and type(mt[op.name]) == 'function' and by_value[mt[op.name]] == nil then
        by_value[mt[op.name]] = op.class .. ':' .. op.name
      end
    end
  end
  return by_value[v]
end

local function methods_line(cls)
  local ms = {}
  local c = cls
  while c do
    for _, k in ipairs(sorted(c)) do
      if type(rawget(c, k)) == 'function' and not k:match('^_') and not HOOKS[k] and k ~= 'extend' then
        ms[k] = true
      end
    end
    c = parent_of(c)
  end
  local list, lines, line = sorted(ms), {}, 'methods:'
  if #list == 0 then return nil end
  for i, k in ipairs(list) do
    local w = ' ' .. k .. (i < #list and ',' or '')
    if #line + #w > 78 then lines[#lines + 1] = line; line = ' ' end
    line = line .. w
  end
  lines[#lines + 1] = line
  return table.concat(lines, '\n')
end

local OVERVIEW = [[
usagi -- tensors, autograd, nn and optim, with model families as plugins.

Where to start:
  t = usagi.tensor{{1, 2}, {3, 4}}   a tensor (also zeros, ones, randn, arange, eye ...)
  t:<Tab>                           its methods; help(usagi.mm) or help 'Tensor:mm' for one
  nn = usagi.nn                     layers, containers, criterions: help(nn.Linear)
  optim = usagi.optim               SGD, Adam, ...: help(optim.Adam)
  nn.LSTM, usagi.word2vec           plugins load on first use; help(nn.LSTM) gives its options
                                    and equations; also rnn gru birnn attention seq2seq vae
  usagi.plugins()                   the plugins loaded
  help 'Run:log', help 'usagi.run'  a short name, a module; help(usagi.experiment): the spec
  usagi.data, usagi.plot            data sets, charts; usagi.save / usagi.load for HDF5

At the prompt:
  an expression prints its value; Tab completes names, methods, modules, paths
  Ctrl-C stops a running computation (your variables stay); Ctrl-D leaves
  :load FILE   :time EXPR   :reload NAME   :help   (see :help)
  help(x) for any function, class, module, tensor or plugin of usagi]]

-- The family of the plugin whose face defined v (a function or class), or nil.
local function plugin_of(v)
  local f = type(v) == 'function' and v or type(v) == 'table' and (rawget(v, '__init') or rawget(v, 'forward'))
  if type(f) ~= 'function' then return nil end
  local info = debug.getinfo(f, 'S')
  return info.source:match('^=usagi%.([%w_]+) %(Lua face%)$')
end

-- The plugins that load on first use (nn.LSTM, usagi.word2vec), from the
-- __lazy lists of usagi's and nn's metatables: help finds their names
-- before anything has loaded them. (Loading usagi.dist starts no MPI;
-- its first function call does.)
local function on_demand()
  local mods, seen = {}, {}
  for _, t in ipairs { usagi, require 'usagi.nn' } do
    local mt = getmetatable(t)
    for _, mod in pairs(type(mt) == 'table' and type(rawget(mt, '__lazy')) == 'table' and mt.__lazy or {}) do
      if mod:match('^usagi%.[%w_]+$') and not seen[mod]
         and package.searchpath(mod, package.cpath) then
        seen[mod] = true
        mods[#mods + 1] = mod
      end
    end
  end
  table.sort(mods)
  return mods
end

local function exact(name)
  for _, e in ipairs(doc.public()) do if e[1] == name then return e end end
end

-- The public entry a name typed at help means, or nil and the list of
-- names it could mean: the full name ('usagi.run.Run:log'), the same
-- under usagi. ('log' is usagi.log), or the end of one full name
-- ('Run:log', 'run:log', 'LSTM', 'most_similar'), plugins loaded on demand.
find_name = function(name)
  local e = exact(name) or exact('usagi.' .. name)
  if e then return e end
  local before = #usagi.plugins()
  for _, mod in ipairs(on_demand()) do pcall(require, mod) end
  if #usagi.plugins() ~= before then by_value, names_by_value = nil, nil end
  e = exact(name) or exact('usagi.' .. name)
  if e then return e end
  local function ends(full, tail)
    return #full > #tail and full:sub(-#tail) == tail and full:sub(-#tail - 1, -#tail - 1):match('[.:]')
  end
  for _, fold in ipairs { false, true } do
    local hits, values = {}, {}
    for _, c in ipairs(doc.public()) do
      local full = fold and c[1]:lower() or c[1]
      if ends(full, fold and name:lower() or name) and not values[c[2]] then
        values[c[2]] = true
        hits[#hits + 1] = c
      end
    end
    if #hits == 1 then return hits[1] end
    if #hits > 1 then
      local names = {}
      for i, c in ipairs(hits) do names[i] = c[1] end
      return nil, names
    end
  end
end

-- usagi.help([x]) (help at the prompt): print the doc of x -- a function,
-- class, module, tensor or plugin, or a name such as 'Tensor:mm' -- or,
-- without x, where to start.
function doc.help(x)
  by_value, names_by_value = nil, nil     -- plugins loaded since add classes
  if x == nil then print(OVERVIEW); return end
  local name, v = nil, x
  if type(x) == 'string' then
    name = x:gsub('^usagi%.nn$', 'nn'):gsub('^usagi%.optim$', 'optim'):gsub('^usagi%.nn%.', 'nn.')
      :gsub('^usagi%.optim%.', 'optim.'):gsub('^t:', 'Tensor:')
    local found, several = find_name(name)
    if several then
      print(("help: '%s' names several: %s; help 'NAME' with one of them"):format(x,
        table.concat(several, ', ')))
      return
    end
    if found == nil then
      print(("help: no doc for '%s'; help() lists where to start"):format(x))
      return
    end
    name, v = found[1], found[2]
  elseif usagi.is_tensor(x) then
    print(tostring(x):match('[^\n]*$') .. '\n' .. 'A tensor: help \'Tensor:name\' for a method; '
      .. 'usagi.' .. '<Tab> and t:<Tab> list them.')
    return
  else
    local nn = package.loaded['usagi.nn']
    if type(x) == 'table' and nn and nn.is_module(x) and not is_class(x) then v = getmetatable(x) end
    if type(x) == 'table' and not is_class(x) and getmetatable(x) and is_class(getmetatable(x)) then
      v = getmetatable(x)
    end
    name = name_of(v)
  end
  local text = name and text_of(name, v)
  if not text then
    print(("help: no doc for this %s; help() lists where to start"):format(type(x)))
    return
  end
  local out = { name, text }
  local fam = plugin_of(v)
  if fam and not name:match('^usagi%.[%w_]+$') then
    out[#out + 1] = ("From the plugin usagi.%s: help 'usagi.%s' gives its equations, "
      .. 'modules/%s/README.md derives them.'):format(fam, fam, fam)
  end
  if is_class(v) then out[#out + 1] = methods_line(v) end
  print(table.concat(out, '\n'))
end

doc.add('', require 'usagi.doc_binding')

return doc
