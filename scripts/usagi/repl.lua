-- usagi.repl -- the Lua side of the REPL: how values print, what Tab
-- completes, the short traceback of an error, the :commands and help.
-- host/cli/main.c reads the lines (libedit: editing, history, Ctrl-C) and
-- calls these; nothing here touches the terminal, so all of it is tested
-- as plain functions (tests/lua/repl_spec.lua) and on a pseudo-terminal
-- (tests/cli/repl_pty.py).
--
--   R.format(v)         the text the prompt shows for one value
--   R.print(...)        what the prompt prints after a call (every result)
--   R.complete(text)    start, {candidates} for the text left of the cursor
--   R.msghandler(err)   the error with the frames of the user's code
--   R.command(line)     :load FILE, :time EXPR, :reload NAME, :help
--   R.start()           the globals of a session: help (usagi.help)
local usagi = require 'usagi'

local R = {}
local COMMANDS            -- the :commands, below

-- Where usagi's own Lua library lives (this file's folder): its frames
-- are left out of tracebacks, as are the plugins' faces and the REPL.
local LIBDIR = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') or '?'

-- ==== Printing =============================================================

local MAX_DEPTH = 3        -- nested tables deeper than this print as {...}
local MAX_ITEMS = 30       -- entries shown per table
local MAX_STRING = 200     -- characters of a string inside a table
local MAX_INLINE = 8       -- a tensor inside a table shows its values up to this many (1-D)

local function is_module(v)
  local nn = package.loaded['usagi.nn']
  return nn ~= nil and nn.is_module(v)
end

local function is_identifier(k)
  return type(k) == 'string' and k:match('^[%a_][%w_]*$') ~= nil
end

-- Where a Lua function was written ('nn.lua:61'), or 'builtin' for C.
local function where(f)
  local info = debug.getinfo(f, 'S')
  if info.what == 'C' then return 'builtin' end
  local src = info.source:gsub('^[@=]', ''):match('[^/]*$')
  return src .. ':' .. info.linedefined
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == 'table' and rawget(mt, '__tostring') ~= nil
end

-- Keys in a stable order: 1..n first, then the rest sorted by type and text.
local function ordered_keys(t)
  local n, keys, rest = #t, {}, {}
  for i = 1, n do keys[i] = i end
  for k in pairs(t) do
    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == 'number' or type(a) == 'string' then return a < b end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys, n
end

local format

-- A table as a Lua constructor, nested up to MAX_DEPTH, on one line when
-- short, else one entry a line; a table met again on the way down prints
-- as <cycle: table: 0x...>.
local function format_table(t, depth, seen, indent)
  if seen[t] then return '<cycle: ' .. tostring(t) .. '>' end
  if depth > MAX_DEPTH then return next(t) == nil and '{}' or '{...}' end
  seen[t] = true
  local keys, n = ordered_keys(t)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > MAX_ITEMS then parts[#parts + 1] = ('... (%d more)'):format(#keys - MAX_ITEMS); break end
    local v = format(t[k], depth + 1, seen, indent .. '  ', true)
    if math.type(k) == 'integer' and k >= 1 and k <= n then parts[#parts + 1] = v
    elseif is_identifier(k) then parts[#parts + 1] = k .. ' = ' .. v
    else parts[#parts + 1] = '[' .. format(k, depth + 1, seen, indent .. '  ', true) .. '] = ' .. v end
  end
  seen[t] = nil
  if #parts == 0 then return '{}' end
  local one = '{ ' .. table.concat(parts, ', ') .. ' }'
  if #one <= 78 - #indent and not one:find('\n') then return one end
  return '{\n' .. indent .. '  ' .. table.concat(parts, ',\n' .. indent .. '  ') .. '\n' .. indent .. '}'
end

-- format(v) -> the text the prompt shows for v: tensors with their values,
-- dtype and shape (inside a table, on one line: the values of a small 1-D
-- one, else dtype and shape only); modules as their tree with parameter
-- counts; tables nested; functions with where they were written; strings
-- as they are at the top level and quoted inside a table.
function format(v, depth, seen, indent, nested)
  depth, seen, indent = depth or 1, seen or {}, indent or ''
  local ty = type(v)
  if ty == 'string' then
    if not nested then return v end
    if #v > MAX_STRING then return ('%q'):format(v:sub(1, MAX_STRING)) .. ('..(%d bytes)'):format(#v) end
    return (('%q'):format(v):gsub('\\\n', '\\n'))
  elseif ty == 'function' then
    return ('function (%s)'):format(where(v))
  elseif usagi.is_tensor(v) then
    local s = tostring(v)
    if not nested then return s end
    local footer = s:match('[^\n]*$')            -- [usagi.Tensor f32 (2, 3)]
    if v:numel() > MAX_INLINE or v:dim() > 1 then return footer end
    local vals = {}
    for i, x in ipairs(v:dim() == 0 and { v:item() } or v:totable()) do
      vals[i] = math.type(x) == 'integer' and tostring(x) or ('%.4g'):format(x)
    end
    return '{' .. table.concat(vals, ', ') .. '} ' .. footer
  elseif ty == 'table' and (is_module(v) or has_tostring(v)) then
    local ok, s = pcall(tostring, v)
    s = ok and s or ('<' .. tostring(rawget(getmetatable(v), '__name') or 'table') .. ': tostring failed>')
    return nested and s:gsub('\n', '\n' .. indent) or s
  elseif ty == 'table' then
    return format_table(v, depth, seen, indent)
  end
  return tostring(v)
end
R.format = function(v) return format(v) end

-- R.print(...): every result; on one line, tab-separated, when each is
-- one line (as lua.c), else one under the other.
function R.print(...)
  local n, out, multi = select('#', ...), {}, false
  for i = 1, n do
    out[i] = format((select(i, ...)))
    multi = multi or out[i]:find('\n') ~= nil
  end
  print(table.concat(out, multi and '\n' or '\t'))
end

-- ==== Completion ===========================================================

local KEYWORDS = { 'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function',
  'goto', 'if', 'in', 'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until',
  'while' }

-- Names reachable from v with '.', or callable with ':' (methods only):
-- its own fields, and the fields its metatables' __index tables lend it up
-- the chain (module classes, optimizers, strings); tensors through their
-- metatable's __methods and __fields.
local function fields_of(v, methods_only)
  local names, seen = {}, {}
  local function add(k, val)
    if type(k) == 'string' and is_identifier(k) and not seen[k]
       and (not methods_only or type(val) == 'function') then
      seen[k] = true
      names[#names + 1] = k
    end
  end
  local function walk(t, hops)
    if type(t) ~= 'table' or hops > 10 then return end
    for k, val in pairs(t) do add(k, val) end
    local mt = getmetatable(t)
    if type(mt) == 'table' then
      -- names that load on first use (usagi.word2vec, nn.LSTM) complete
      -- before they are loaded
      local lazy = rawget(mt, '__lazy')
      if type(lazy) == 'table' and not methods_only then
        for k in pairs(lazy) do add(k, true) end
      end
      walk(rawget(mt, '__index'), hops + 1)
    end
  end
  if usagi.is_tensor(v) then
    local mt = getmetatable(v)
    for k, f in pairs(mt.__methods) do add(k, f) end
    if not methods_only then for k in pairs(mt.__fields) do add(k, true) end end
  elseif type(v) == 'table' then
    walk(v, 0)
  else
    local mt = getmetatable(v)
    if type(mt) == 'table' then walk(rawget(mt, '__index'), 0) end
  end
  return names
end

-- R.resolve(chain) -> the value named by a chain 'a.b.c' or 'a.b:c' (from
-- the globals), or nil; indexing runs __index (usagi's lazy modules load),
-- guarded by pcall. The kernel's inspect uses it too.
local function resolve(chain)
  local v = _G
  for name in chain:gmatch('[^.:]+') do
    local ok, nv = pcall(function() return v[name] end)
    if not ok or nv == nil then return nil end
    v = nv
  end
  return v
end

-- Names that require() takes: every ?.lua / ?.so / ?/init.lua on the
-- package paths, walked one folder level per dot.
local function module_names(prefix)
  local out, seen = {}, {}
  local dir_part = prefix:match('^(.*)%.') or ''
  local sub = dir_part:gsub('%.', '/')
  for _, path in ipairs { package.path, package.cpath } do
    for template in path:gmatch('[^;]+') do
      local root, ext = template:match('^(.-)%?(.*)$')
      if root and ext and not ext:find('/') then
        local dir = root .. (sub ~= '' and (sub .. '/') or '')
        local ok, list = pcall(usagi.sys.listdir, dir == '' and '.' or dir)
        for _, f in ipairs(ok and list or {}) do
          local name = f:sub(1, #f - #ext)
          if #f > #ext and f:sub(-#ext) == ext and is_identifier(name) then
            name = (dir_part ~= '' and (dir_part .. '.') or '') .. name
            if not seen[name] then seen[name] = true; out[#out + 1] = name end
          end
        end
      end
    end
  end
  return out
end

-- Paths for the text of a string: the entries of its folder, folders with
-- a trailing '/'.
local function path_names(text)
  local dir, base = text:match('^(.*/)([^/]*)$')
  if not dir then dir, base = '', text end
  local ok, list = pcall(usagi.sys.listdir, dir == '' and '.' or dir)
  local out = {}
  for _, f in ipairs(ok and list or {}) do
    if f:sub(1, #base) == base and (base:sub(1, 1) == '.' or f:sub(1, 1) ~= '.') then
      out[#out + 1] = dir .. f .. (usagi.sys.kind(dir .. f) == 'directory' and '/' or '')
    end
  end
  return out
end

-- The quote an unfinished string of `text` opened, and where its text
-- starts; nil when the cursor is not inside a string.
local function open_string(text)
  local i, quote, start = 1, nil, nil
  while i <= #text do
    local c = text:sub(i, i)
    if quote then
      if c == '\\' then i = i + 1
      elseif c == quote then quote = nil end
    elseif c == '"' or c == "'" then quote, start = c, i + 1
    elseif c == '-' and text:sub(i, i + 1) == '--' then return nil end
    i = i + 1
  end
  if quote then return start end
end

local function filter(names, prefix)
  local out = {}
  for _, n in ipairs(names) do
    if n:sub(1, #prefix) == prefix and (#prefix > 0 or n:sub(1, 1) ~= '_') then   -- _private on request
      out[#out + 1] = n
    end
  end
  table.sort(out)
  return out
end

-- R.complete(text) -> start, candidates: what may replace text from byte
-- `start` to its end (the cursor). Inside a string, a module name when the
-- string is require's argument, else a file path; after `a.b.` the fields
-- of a.b, after `x:` the methods of x; else globals and keywords.
function R.complete(text)
  local cmd = text:match('^%s*:(%a*)$')
  if cmd then
    local names = {}
    for k in pairs(COMMANDS) do names[#names + 1] = ':' .. k end
    return #text - #cmd, filter(names, ':' .. cmd)
  end
  local arg = text:match('^%s*:load%s+(.*)$')
  if arg then return #text - #arg + 1, path_names(arg) end
  arg = text:match('^%s*:reload%s+(.*)$')
  if arg then return #text - #arg + 1, filter(module_names(arg), arg) end
  local s = open_string(text)
  if s then
    local inside = text:sub(s)
    if text:sub(1, s - 2):match('require%s*%(?%s*$') then
      return s, filter(module_names(inside), inside)
    end
    return s, path_names(inside)
  end
  local expr = text:match('[%a_][%w_%.:]*$') or ''
  local start = #text - #expr + 1
  if expr == '' and text:match('[.:]$') then return start, {} end   -- after f(x). : not a name
  local base, sep, last = expr:match('^(.*)([.:])([%w_]*)$')
  if not base then
    local names = fields_of(_G)
    for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
    return start, filter(names, expr)
  end
  if base:find(':') then return start, {} end
  local v = resolve(base)
  if v == nil then return start, {} end
  local names = filter(fields_of(v, sep == ':'), last)
  local prefix = base .. sep
  for i, n in ipairs(names) do names[i] = prefix .. n end
  return start, names
end

-- ==== Errors ===============================================================

local function in_library(info)
  local src = info.source
  return info.what == 'C' or src:sub(1, #LIBDIR + 2) == '@' .. LIBDIR .. '/'
      or src:match('^=usagi%..* %(Lua face%)$') ~= nil
end

-- R.msghandler(err) -> the message, then the frames of the user's code
-- (the prompt's lines, the user's files) from the innermost out; runs of
-- frames inside usagi's library, its plugins and C are one line each.
function R.msghandler(err)
  if type(err) ~= 'string' then              -- as lua.c: __tostring, else the type
    local mt = getmetatable(err)
    local ok, s = false, nil
    if type(mt) == 'table' and mt.__tostring then ok, s = pcall(tostring, err) end
    err = ok and type(s) == 'string' and s or ('(error object is a ' .. type(err) .. ' value)')
  end
  local lines, skipped = { err, 'traceback (innermost first):' }, 0
  local level = 2
  while true do
    local info = debug.getinfo(level, 'Slnft')
    if not info then break end
    if info.source == '@' .. LIBDIR .. '/repl.lua' and info.name == 'command' then break end
    if info.what == 'C' then                 -- error(), pcall(): nothing to read there
    elseif in_library(info) then
      skipped = skipped + 1
    else
      if skipped > 0 then
        lines[#lines + 1] = ('  (%d frame%s in usagi)'):format(skipped, skipped == 1 and '' or 's')
        skipped = 0
      end
      local name = info.name
      if not name then                       -- a tail call: the global's name, if it is one
        for k, v in pairs(_G) do if v == info.func and type(k) == 'string' then name = k end end
      end
      local what = info.what == 'main' and 'main chunk'
          or name and ("function '" .. name .. "'") or 'function'
      lines[#lines + 1] = ('  %s:%d: in %s'):format(info.short_src, info.currentline, what)
    end
    level = level + 1
  end
  if #lines == 2 then lines[2] = nil end
  return table.concat(lines, '\n')
end

-- ==== :commands ============================================================

local function run_chunk(f, ...)
  return f(...)
end

-- A chunk from text: `return <text>` first, as the prompt does.
local function compile(text, name)
  local f = load('return ' .. text .. ';', '=' .. name)
  if f then return f end
  local g, err = load(text, '=' .. name)
  if not g then error(err, 0) end
  return g
end

local function fmt_seconds(s)
  if s < 1e-3 then return ('%.1f µs'):format(s * 1e6) end
  if s < 1 then return ('%.2f ms'):format(s * 1e3) end
  return ('%.3f s'):format(s)
end

-- new, put in package.loaded[name]: merged into the table already there
-- (if any), so every reference to it sees the new fields.
local function merge(name, new)
  local old = package.loaded[name]
  if type(old) == 'table' and type(new) == 'table' and old ~= new then
    for k, v in pairs(new) do old[k] = v end
    new = old
  end
  package.loaded[name] = new
  return new
end

-- The module's new value, merged into the table already loaded so that
-- every reference to it (locals, usagi.nn, other modules) sees the new
-- functions; instances made before keep the classes they were made with.
local function reload_lua(name)
  local old = package.loaded[name]
  package.loaded[name] = nil
  local ok, new = pcall(require, name)
  package.loaded[name] = old
  if not ok then error(new, 0) end
  return merge(name, new)
end

-- A native plugin, reloaded from its file as it is now (after a rebuild):
-- the .so is copied to a fresh temporary name, since dlopen hands back the
-- library already loaded under the old name, and opened beside the old
-- one. The old one stays loaded until usagi exits -- never unloaded -- so
-- the tensors, autograd nodes and objects made through it keep working.
-- usagi.load_plugin checks the file (a truncated one would kill the
-- session inside dlopen) and the ABI before the entry point runs: a
-- plugin refused leaves the old one in place. The face runs again and puts its new classes
-- into nn; the new functions are merged into the loaded table. Objects
-- made before keep their classes.
local function reload_plugin(name, path)
  local f = assert(io.open(path, 'rb'))
  local bytes = f:read('a')
  f:close()
  local tmp = os.tmpname()
  f = assert(io.open(tmp, 'wb'))
  f:write(bytes)
  f:close()
  local open, err = usagi.load_plugin(tmp, name)
  os.remove(tmp)                        -- the mapping outlives the name
  if not open then
    local at, stop = err:find(tmp, 1, true)  -- dlopen's messages name the copy
    if at then err = err:sub(1, at - 1) .. path .. err:sub(stop + 1) end
    error((':reload: %s from %s: %s'):format(name, path, err), 0)
  end
  return merge(name, open(name, path))
end

COMMANDS = {
  load = { 'FILE', 'run a Lua file in this session (its globals stay)', function(arg)
    if arg == '' then error(':load: give a file, as :load experiments/tensor_demo.lua', 0) end
    local f, err = loadfile(arg)
    if not f then error(':load: ' .. err, 0) end
    return run_chunk(f)
  end },
  time = { 'EXPR', 'run EXPR once and print its wall-clock and CPU time', function(arg)
    if arg == '' then error(':time: give an expression or a statement, as :time m(x)', 0) end
    local f = compile(arg, 'stdin')
    local c0, t0 = os.clock(), usagi.sys.monotonic()
    local res = table.pack(f())
    local t, c = usagi.sys.monotonic() - t0, os.clock() - c0
    io.stdout:write(('time: %s wall, %s CPU\n'):format(fmt_seconds(t), fmt_seconds(c)))
    return table.unpack(res, 1, res.n)
  end },
  reload = { 'NAME', 'reload a Lua module or a rebuilt plugin', function(arg)
    if arg == '' then error(':reload: give a module name, as :reload usagi.nn', 0) end
    if package.searchpath(arg, package.path) then
      reload_lua(arg)
    else
      local so = package.searchpath(arg, package.cpath)
      if not so then error((':reload: no module %s on package.path or package.cpath'):format(arg), 0) end
      reload_plugin(arg, so)
    end
    io.stdout:write(('reloaded %s\n'):format(arg))
  end },
  help = { '', 'list these commands', function()
    for _, name in ipairs { 'load', 'time', 'reload', 'help' } do
      local c = COMMANDS[name]
      io.stdout:write(('  :%-14s %s\n'):format(name .. (c[1] ~= '' and ' ' .. c[1] or ''), c[2]))
    end
  end },
}
R.commands = COMMANDS

-- R.command(':name arg') runs one of COMMANDS; its results print as an
-- expression's do.
function R.command(line)
  local name, arg = line:match('^%s*:(%a*)%s*(.-)%s*$')
  local c = COMMANDS[name or '']
  if not c then error(('unknown command %s (try :help)'):format(line:match('^%s*(%S*)')), 0) end
  return c[3](arg)
end

-- ==== The session ==========================================================

-- R.start(): help() as a global, unless the user has one.
function R.start()
  if rawget(_G, 'help') == nil then rawset(_G, 'help', usagi.help) end
end

R.resolve = resolve

return R
