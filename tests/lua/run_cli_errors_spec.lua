-- What `usagi run` says when a run goes wrong: an error shows the message
-- and the user's frames, as the REPL does, not the library's; a --set typo
-- is one line; Ctrl-C (SIGINT) in a run's set-up stops it at once with
-- status 'interrupted', and --resume then runs it to its end.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local sys = usagi.sys

local function has(text, needle)
  assert.is_truthy(text:find(needle, 1, true), ('"%s" lacks "%s"'):format(text, needle))
end
local function lacks(text, needle)
  assert.is_falsy(text:find(needle, 1, true), ('"%s" has "%s"'):format(text, needle))
end

local function write(path, text)
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
end

local function attrs(path)
  local f <close> = usagi.h5.open(path, 'r')
  return f:attrs('/')
end

describe('usagi run', function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.rmrf(dir) end)

  it("shows an error's message and the user's frames, not the library's", function()
    local script = dir .. '/bad.lua'
    write(script, table.concat({
      'local function build(cfg)',
      '  local m = usagi.nn.Linear(cfg.hidden, 3)',
      '  local y = m(usagi.zeros(2, 5))',
      '  return y',
      'end',
      'return usagi.experiment {',
      "  name = 'bad', config = { hidden = 4 },",
      '  run = function(run, cfg) local y = build(cfg); return y end,',
      '}', '' }, '\n'))
    local code, out = h.usagi_cli('run', script, '--out', dir .. '/runs')
    assert.are.equal(1, code)
    has(out, "bad: linear: w must be (out, in) with in = x's last size, got x (2, 5) and w (3, 4)")
    has(out, 'traceback (innermost first):')
    has(out, 'bad.lua:3: in ')
    has(out, 'bad.lua:8: in ')
    for _, lib in ipairs { 'stack traceback', 'nn_layers.lua', 'experiment.lua', 'cli.lua', '[C]' } do
      lacks(out, lib)
    end
    local runs = sys.listdir(dir .. '/runs/bad')
    local a = attrs(dir .. '/runs/bad/' .. runs[1] .. '/results.h5')
    assert.are.equal("error: linear: w must be (out, in) with in = x's last size, got x (2, 5) and w (3, 4)",
      a.status)
  end)

  it("shows an error in the script's own top level with its frames, without the usage text", function()
    local script = dir .. '/top.lua'
    write(script, 'local function f(x) return x.z + 1 end\nlocal y = f({})\n'
      .. "return usagi.experiment { name = 'top', config = {}, run = function() end }\n")
    local code, out = h.usagi_cli('run', script)
    assert.are.equal(2, code)
    has(out, "top.lua:1: attempt to perform arithmetic on a nil value (field 'z')\ntraceback (innermost first):")
    has(out, "top.lua:1: in function 'f'")
    has(out, 'top.lua:2: in main chunk')
    lacks(out, 'usagi sweep SCRIPT.lua')
    lacks(out, 'cli.lua')
  end)

  it('says a --set typo in one line, and a config key read but not there names it', function()
    local code, out = h.usagi_cli('run', 'experiments/binary_addition.lua', '--set', 'hiden=3')
    assert.are.equal(2, code)
    assert.are.equal(1, select(2, out:gsub('\n', '')), out)
    has(out, 'binary_addition: unknown config key "hiden"; valid keys: ')
    lacks(out, 'traceback')
    lacks(out, '\n\t')
    local script = dir .. '/typo.lua'
    write(script, "return usagi.experiment { name = 'typo', config = { hidden = 4 },\n"
      .. '  run = function(run, cfg) return cfg.hiden + 1 end }\n')
    code, out = h.usagi_cli('run', script, '--no-save')
    assert.are.equal(1, code)
    has(out, 'typo: ' .. script .. ':2: the config has no key "hiden" (its keys: hidden)')
  end)

  it("stops at Ctrl-C in a run's set-up: status interrupted, exit 130, then --resume ends it", function()
    local script, go, started = dir .. '/slow.lua', dir .. '/go', dir .. '/started'
    write(script, table.concat({
      'local sys = usagi.sys',
      'return usagi.experiment {',
      "  name = 'slow', config = { n = 4 },",
      '  run = function(run, cfg)',
      ('    io.open(%q, "w"):close()'):format(started),
      '    local t0 = sys.monotonic()          -- a set-up that takes its time (10 s at most)',
      ('    while not sys.kind(%q) and sys.monotonic() - t0 < 10 do end'):format(go),
      '    run:track { state = {} }',
      '    for i in run:progress(cfg.n, { carry = {} }) do run:log { loss = i } end',
      '  end,',
      '}', '' }, '\n'))
    local out = dir .. '/child.out'
    local pid = sys.spawn({ sys.exe(), 'run', script, '--out', dir .. '/runs', '--name', 'r' },
      { stdout = out, stderr = out })
    local t0 = sys.monotonic()
    while not sys.kind(started) and sys.monotonic() - t0 < 60 do sys.sleep(0.01) end
    sys.sleep(0.1)
    sys.kill(pid, 'INT')
    local _, how, code = sys.wait(pid)
    local text = sys.read(out)
    assert.are.same({ 'exit', 130 }, { how, code }, text)
    has(text, 'slow: stopped by SIGINT after step 0, before its first step ended; resume with usagi run --resume')
    lacks(text, 'traceback')
    local run_dir = dir .. '/runs/slow/r'
    assert.are.equal('interrupted', attrs(run_dir .. '/results.h5').status)
    write(go, '')
    local rc, rtext = h.usagi_cli('run', script, '--resume', run_dir)
    assert.are.equal(0, rc, rtext)
    local a = attrs(run_dir .. '/results.h5')
    assert.are.equal('ok', a.status)
  end)
end)
