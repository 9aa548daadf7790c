-- The REPL's Lua side (scripts/usagi/repl.lua) as plain functions: what a
-- value prints as, what Tab offers, the short traceback and the :commands.
-- tests/cli/repl.sh drives the same through a real pseudo-terminal.
local usagi = require 'usagi'
local R = require 'usagi.repl'
local nn = require 'usagi.nn'

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

-- what R.print writes, captured
local function printed(...)
  local out, old = {}, print
  _G.print = function(...) out[#out + 1] = table.concat({ ... }, '\t') end
  local ok, err = pcall(R.print, ...)
  _G.print = old
  assert(ok, err)
  return table.concat(out, '\n')
end

describe('repl: printing', function()
  it('prints a tensor with its values, dtype and shape', function()
    local s = R.format(usagi.tensor { { 1, 2 }, { 3, 4 } })
    assert.truthy(s:find('[usagi.Tensor f32 (2, 2)]', 1, true))
    assert.truthy(s:find('3', 1, true) and s:find('4', 1, true))
  end)

  it('prints a module as its tree with parameter counts', function()
    local m = nn.Sequential { nn.Linear(2, 3), nn.Tanh() }
    local s = R.format(m)
    assert.truthy(s:find('Sequential(  -- 9 params', 1, true), s)
    assert.truthy(s:find('(1): Linear(in_features=2, out_features=3, bias=true)  -- 9 params', 1, true), s)
    assert.truthy(s:find('(2): Tanh()', 1, true), s)
  end)

  it('prints nested tables with quoted strings, sorted keys and cycles marked', function()
    local t = { 1, 'two', { a = true }, z = 3, b = 'x' }
    assert.are.equal('{ 1, "two", { a = true }, b = "x", z = 3 }', R.format(t))
    t.self = t
    assert.truthy(R.format(t):find('self = <cycle: table: 0x', 1, true), R.format(t))
  end)

  it('shows a tensor inside a table on one line: small 1-D ones with values', function()
    local s = R.format { b = usagi.tensor { 0.5, -2 }, w = usagi.zeros(2, 3),
                         i = usagi.tensor({ 7 }, { dtype = 'i32' }) }
    assert.are.equal('{\n  b = {0.5, -2} [usagi.Tensor f32 (2,)],\n  i = {7} [usagi.Tensor i32 (1,)],\n'
      .. '  w = [usagi.Tensor f32 (2, 3)]\n}', s)
  end)

  it('limits the depth of nested tables', function()
    local s = R.format { a = { b = { c = { d = { e = 1 } } } } }
    assert.are.equal('{ a = { b = { c = {...} } } }', s)
  end)

  it('shows a long table one entry a line, and elides past 30 entries', function()
    local t = {}
    for i = 1, 40 do t[i] = i * 1000 end
    local s = R.format(t)
    assert.truthy(s:find('\n', 1, true))
    assert.truthy(s:find('... (10 more)', 1, true), s)
    assert.falsy(s:find('31000', 1, true))
  end)

  it('prints several results, tab-separated on one line or one under the other', function()
    assert.are.equal('1\tx\ttrue\tnil', printed(1, 'x', true, nil))
    local s = printed(2, usagi.zeros(2))
    assert.truthy(s:find('^2\n'), s)
    assert.truthy(s:find('[usagi.Tensor f32 (2,)]', 1, true), s)
  end)

  it('says where a Lua function was written and that a C one is builtin', function()
    assert.are.equal('function (builtin)', R.format(usagi.zeros))
    assert.truthy(R.format(nn.Module.parameters):match('^function %(nn%.lua:%d+%)$'))
  end)
end)

describe('repl: completion', function()
  it('completes globals and keywords', function()
    local start, c = R.complete('x = usa')
    assert.are.equal(5, start)
    assert.are.same({ 'usagi' }, c)
    local _, k = R.complete('whi')
    assert.truthy(has(k, 'while'))
  end)

  it('completes table fields, loading usagi\'s lazy modules', function()
    local start, c = R.complete('usagi.nn.Lin')
    assert.are.equal(1, start)
    assert.are.same({ 'usagi.nn.Linear' }, c)
    local _, m = R.complete('usagi.ma')
    assert.truthy(has(m, 'usagi.matmul') and has(m, 'usagi.max') and has(m, 'usagi.manual_seed'))
  end)

  it('completes tensor methods through the metatable', function()
    rawset(_G, 'repl_spec_t', usagi.zeros(2, 3))
    local _, c = R.complete('repl_spec_t:num')
    assert.are.same({ 'repl_spec_t:numel' }, c)
    local _, f = R.complete('repl_spec_t.gr')
    assert.are.same({ 'repl_spec_t.grad', 'repl_spec_t.grad_fn' }, f)
    rawset(_G, 'repl_spec_t', nil)
  end)

  it('completes module methods inherited from nn.Module, and fields', function()
    rawset(_G, 'repl_spec_m', nn.Linear(2, 2))
    local _, c = R.complete('repl_spec_m:named_p')
    assert.are.same({ 'repl_spec_m:named_parameters' }, c)
    local _, f = R.complete('repl_spec_m.wei')
    assert.are.same({ 'repl_spec_m.weight' }, f)
    local _, meth = R.complete('repl_spec_m:')
    assert.falsy(has(meth, 'repl_spec_m:weight'))          -- ':' offers methods only
    rawset(_G, 'repl_spec_m', nil)
  end)

  it('completes string methods', function()
    local _, c = R.complete('("a"):up')
    assert.are.same({}, c)                                  -- not a name chain: nothing
    rawset(_G, 'repl_spec_s', 'abc')
    local _, s = R.complete('repl_spec_s:up')
    assert.are.same({ 'repl_spec_s:upper' }, s)
    rawset(_G, 'repl_spec_s', nil)
  end)

  it('completes require-able module names inside require\'s string', function()
    local start, c = R.complete("require 'usagi.re")
    assert.are.equal(10, start)
    assert.truthy(has(c, 'usagi.repl') and has(c, 'usagi.recurrent') and has(c, 'usagi.run') == false)
    local _, p = R.complete('require("usagi.ls')
    assert.truthy(has(p, 'usagi.lstm'))                     -- a plugin, from package.cpath
  end)

  it('completes file paths inside other strings', function()
    local start, c = R.complete("dofile('tests/lua/repl_sp")
    assert.are.equal(9, start)
    assert.are.same({ 'tests/lua/repl_spec.lua' }, c)
    local _, d = R.complete('x = "scripts/usa')
    assert.are.same({ 'scripts/usagi/' }, d)
  end)

  it('completes :commands, paths after :load and modules after :reload', function()
    local start, c = R.complete(':re')
    assert.are.equal(1, start)
    assert.are.same({ ':reload' }, c)
    local _, p = R.complete(':load tests/lua/repl_sp')
    assert.are.same({ 'tests/lua/repl_spec.lua' }, p)
    local s2, m = R.complete(':reload usagi.ls')
    assert.are.equal(9, s2)
    assert.truthy(has(m, 'usagi.lstm'))
  end)

  it('offers nothing for an unknown base or after a call', function()
    local _, c = R.complete('no_such_global.x')
    assert.are.same({}, c)
    local _, d = R.complete('usagi.zeros(2):')
    assert.are.same({}, d)
  end)
end)

describe('repl: errors', function()
  it('keeps the user\'s frames and counts the library\'s', function()
    local f = load([[
      local function inner() return usagi.zeros(2, 3):mm(usagi.zeros(2, 3)) end
      return inner()
    ]], '=stdin')
    local user = load('local f = ... ; local Bad = usagi.nn.Module:extend \'Bad\'\n'
      .. 'function Bad:forward() f() end\nreturn (usagi.nn.Sequential { Bad() }(1))', '=stdin')
    local ok, msg = xpcall(user, R.msghandler, f)
    assert.is_false(ok)
    assert.truthy(msg:find('mm: inner sizes differ', 1, true), msg)
    assert.truthy(msg:find('stdin:1: in function', 1, true), msg)
    assert.truthy(msg:find('stdin:2: in function', 1, true), msg)
    assert.truthy(msg:find('frame', 1, true) and msg:find('in usagi)', 1, true), msg)
    assert.falsy(msg:find('nn.lua', 1, true), msg)           -- no frames inside the library
    assert.falsy(msg:find('[C]', 1, true), msg)
  end)

  it('makes a message of a non-string error', function()
    local ok, msg = xpcall(function() error({}) end, R.msghandler)
    assert.is_false(ok)
    assert.truthy(msg:find('error object is a table value', 1, true), msg)
  end)
end)

describe('repl: commands', function()
  it(':time runs an expression once, prints the time and returns its values', function()
    local out, old = {}, io.stdout
    local fake = { write = function(self, ...) for _, s in ipairs { ... } do out[#out + 1] = s end return self end }
    io.stdout = fake   -- luacheck: ignore
    local ok, a, b = pcall(R.command, ':time 1 + 1, "x"')
    io.stdout = old    -- luacheck: ignore
    assert(ok, a)
    assert.are.equal(2, a)
    assert.are.equal('x', b)
    assert.truthy(table.concat(out):match('^time: [%d.]+ %S*s wall, [%d.]+ %S*s CPU\n$'), table.concat(out))
  end)

  it(':load runs a file in the session', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'w'))
    f:write('repl_spec_loaded = 41 + 1\n')
    f:close()
    R.command(':load ' .. path)
    os.remove(path)
    assert.are.equal(42, rawget(_G, 'repl_spec_loaded'))
    rawset(_G, 'repl_spec_loaded', nil)
  end)

  it(':reload merges a Lua module\'s new functions into the loaded table', function()
    local plot = require 'usagi.plot'
    local lines = plot.lines
    plot.lines = nil
    local old = io.stdout
    io.stdout = { write = function(self) return self end }   -- luacheck: ignore
    local ok, err = pcall(R.command, ':reload usagi.plot')
    io.stdout = old                                           -- luacheck: ignore
    assert(ok, err)
    assert.are.equal(plot, require 'usagi.plot')              -- the same table, refreshed
    assert.are.equal('function', type(plot.lines))
    assert.are_not.equal(lines, plot.lines)
  end)

  local function quietly(f, ...)
    local old = io.stdout
    io.stdout = { write = function(self) return self end }   -- luacheck: ignore
    local ok, err = pcall(f, ...)
    io.stdout = old                                           -- luacheck: ignore
    assert(ok, err)
  end

  it(':reload opens a plugin again beside the old one, which keeps working', function()
    local hello = require 'usagi.hello'
    local iota = hello.iota
    quietly(R.command, ':reload usagi.hello')
    assert.are.equal(hello, require 'usagi.hello')
    assert.are_not.equal(iota, hello.iota)                    -- the new library's function
    assert.are.same({ 1, 2, 3 }, hello.iota(3):totable())
    assert.are.same({ 1, 2 }, iota(2):totable())              -- the old one is still loaded
    local n = 0
    for _, p in ipairs(usagi.plugins()) do if p.name == 'hello' then n = n + 1 end end
    assert.are.equal(1, n)
  end)

  it(':reload of a plugin puts its new classes into nn; old modules still run', function()
    require 'usagi.lstm'
    local Old = nn.LSTM
    local m = Old(2, 3)
    quietly(R.command, ':reload usagi.lstm')
    assert.are_not.equal(Old, nn.LSTM)
    local x = usagi.randn(4, 1, 2)
    local out = nn.LSTM(2, 3)(x)
    assert.are.equal(3, out:size(3))
    assert.are.equal(3, m(x):size(3))
  end)

  it('names an unknown command and a missing argument', function()
    local ok, err = pcall(R.command, ':frobnicate x')
    assert.is_false(ok)
    assert.truthy(err:find('unknown command :frobnicate', 1, true), err)
    ok, err = pcall(R.command, ':load')
    assert.is_false(ok)
    assert.truthy(err:find(':load: give a file', 1, true), err)
    ok, err = pcall(R.command, ':reload no.such.module')
    assert.is_false(ok)
    assert.truthy(err:find('no module no.such.module', 1, true), err)
  end)
end)
