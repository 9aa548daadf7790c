-- h5_spec.lua -- usagi.h5 from Lua: files, datasets of every dtype, groups,
-- attributes of every kind, extendable datasets, <close> and GC closing, a
-- closed file, bad arguments, error messages that name function, file and
-- path, and interop: h5py (Debian's /usr/bin/python3) reads what usagi
-- wrote and writes what usagi reads, and h5dump reads usagi's files.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local h5 = usagi.h5

-- Scratch files, removed after each test.
local made = {}
local function tmp(ext)
  local base = os.tmpname()
  local p = base .. (ext or '.h5')
  made[#made + 1] = base
  made[#made + 1] = p
  return p
end
local function cleanup()
  collectgarbage(); collectgarbage()   -- files dropped without close
  for _, p in ipairs(made) do os.remove(p) end
  made = {}
end

-- A directory that exists: where os.tmpname puts its files.
local function a_dir()
  local p = tmp('')
  return p:match('^(.*)/[^/]*$')
end

local function write_text(path, s)
  local fp = assert(io.open(path, 'wb')); fp:write(s); fp:close()
end

-- f raises an error whose message names fn, the file and the object path.
local function fails_at(f, fn, file, obj, needle)
  local head = obj and ("%s: '%s' '%s': "):format(fn, file, obj) or ("%s: '%s': "):format(fn, file)
  h.raises(f, head, needle)
end

describe('usagi.h5 files', function()
  after_each(cleanup)

  it('opens in r, w and a; exposes path and mode; prints itself', function()
    local p = tmp()
    local f = h5.open(p, 'w')
    assert.are.equal(p, f.path)
    assert.are.equal('w', f.mode)
    assert.are.equal(("h5.File('%s', 'w')"):format(p), tostring(f))
    f:write('/x', usagi.ones(2))
    f:close()
    assert.are.equal(("h5.File('%s', 'w') (closed)"):format(p), tostring(f))
    assert.are.equal(p, f.path)   -- still readable after close
    f:close()                     -- idempotent
    local r = h5.open(p)          -- default 'r'
    assert.are.equal('r', r.mode)
    h.expect(r:read('/x'), 'f32', { 2 }, { 1, 1 })
    r:close()
    local a = h5.open(p, 'a')
    a:write('/y', usagi.zeros(1))
    assert.are.same({ 'x', 'y' }, a:list())
    a:close()
    local fresh = tmp()
    h5.open(fresh, 'a'):close()   -- 'a' creates a missing file
    assert.is_true(h5.is_hdf5(fresh))
  end)

  it('says why a file cannot be opened', function()
    local missing = tmp()
    fails_at(function() h5.open(missing) end, 'h5.open', missing, nil, 'no such file')
    fails_at(function() h5.open(missing, 'rw') end, 'h5.open', missing, nil,
             "mode must be 'r', 'w' or 'a', got 'rw'")
    local text = tmp('.txt')
    write_text(text, 'not hdf5 at all\n')
    fails_at(function() h5.open(text) end, 'h5.open', text, nil, 'not an HDF5 file')
    fails_at(function() h5.open(text, 'a') end, 'h5.open', text, nil, 'not an HDF5 file')
    assert.are.equal('not hdf5 at all\n', io.open(text):read('a'))   -- never clobbered by 'a'
    local dir = a_dir()
    fails_at(function() h5.open(dir) end, 'h5.open', dir, nil, 'is a directory')
    local nodir = missing .. '.d/x.h5'
    fails_at(function() h5.open(nodir, 'w') end, 'h5.open', nodir, nil, 'cannot create')
    -- a truncated copy of a good file
    local good = tmp()
    local f = h5.open(good, 'w')
    f:write('/a', usagi.randn(50, 50))
    f:close()
    local bytes = io.open(good, 'rb'):read('a')
    local cut = tmp()
    write_text(cut, bytes:sub(1, #bytes // 2))
    fails_at(function() h5.open(cut) end, 'h5.open', cut, nil, 'truncated file')
    write_text(cut, '\137HDF\r\n\26\n' .. ('\0\255'):rep(600))
    fails_at(function() h5.open(cut) end, 'h5.open', cut, nil, 'cannot open')
  end)

  it('is_hdf5 never raises for a file that is not HDF5', function()
    local text = tmp('.txt')
    write_text(text, 'hello')
    assert.is_false(h5.is_hdf5(text))
    assert.is_false(h5.is_hdf5(tmp()))   -- missing
    assert.is_false(h5.is_hdf5(a_dir()))
    local p = tmp()
    h5.open(p, 'w'):close()
    assert.is_true(h5.is_hdf5(p))
    h.raises(function() h5.is_hdf5(nil) end, 'h5.is_hdf5: path must be a string, got nil')
  end)

  it('<close> closes at the end of the block', function()
    local p, kept = tmp(), nil
    do
      local f <close> = h5.open(p, 'w')
      f:write('/x', usagi.arange(0, 4, 1))
      kept = f
    end
    assert.is_truthy(tostring(kept):find('(closed)', 1, true))
    h.raises(function() kept:read('/x') end, 'h5.read: file is closed', p)
    -- an error inside the block closes it too
    local ok = pcall(function()
      local f <close> = h5.open(p, 'a')
      kept = f
      error('boom')
    end)
    assert.is_false(ok)
    assert.is_truthy(tostring(kept):find('(closed)', 1, true))
    local g <close> = h5.open(p, 'w')   -- nothing holds the file: truncating works
    assert.are.same({}, g:list('/'))
  end)

  it('the GC closes a file nobody closed', function()
    local p = tmp()
    do
      local f = h5.open(p, 'w')
      f:write('/x', usagi.ones(3))
    end
    collectgarbage(); collectgarbage()
    -- an open file could not be truncated; the data reached the disk
    local r = h5.open(p, 'r')
    h.expect(r:read('/x'), 'f32', { 3 }, { 1, 1, 1 })
    r:close()
    local w = h5.open(p, 'w')
    w:close()
  end)

  it('every method on a closed file raises naming the method', function()
    local p = tmp()
    local f = h5.open(p, 'w')
    f:close()
    local calls = {
      read = function() f:read('/x') end, write = function() f:write('/x', usagi.ones(1)) end,
      exists = function() f:exists('/x') end, kind = function() f:kind('/x') end,
      list = function() f:list() end, group = function() f:group('/g') end,
      remove = function() f:remove('/x') end, shape = function() f:shape('/x') end,
      dtype = function() f:dtype('/x') end, attr = function() f:attr('/', 'a') end,
      attrs = function() f:attrs('/') end, append = function() f:append('/m', 1) end,
      flush = function() f:flush() end,
    }
    for name, call in pairs(calls) do
      h.raises(call, ('h5.%s: file is closed'):format(name))
    end
  end)

  it('bad arguments raise errors, not crashes', function()
    local p = tmp()
    local f <close> = h5.open(p, 'w')
    f:write('/x', usagi.ones(2))
    h.raises(function() h5.open() end, 'h5.open: path must be a string, got no value')
    h.raises(function() h5.open(p, 3) end, 'h5.open: mode must be a string, got number')
    h.raises(function() f:read() end, 'h5.read: path must be a string, got no value')
    h.raises(function() f:read(3) end, 'h5.read: path must be a string, got number')
    h.raises(function() f:read('') end, 'h5.read:', 'path must be a non-empty string')
    h.raises(function() f.read(nil, '/x') end, 'h5.read: self must be an h5.File, got nil')
    h.raises(function() f.read({}, '/x') end, 'h5.read: self must be an h5.File, got table')
    h.raises(function() f:write('/y', 3) end, ("h5.write: '%s' '/y': value must be a usagi.Tensor, got number"):format(p))
    h.raises(function() f:write('/y') end, 'value must be a usagi.Tensor, got no value')
    h.raises(function() f:attr('/', 7) end, 'h5.attr: name must be a string, got number')
    h.raises(function() f:attr('/', 'a', print) end, ("h5.attr: '%s' '/' attribute 'a': value must be"):format(p), 'got function')
    h.raises(function() f:attr('/', 'a', { x = 1 }) end, 'must be an array of strings')
    h.raises(function() f:attr('/', 'a', { 'x', 2 }) end, 'element 2 is number')
    h.raises(function() f:attr('/', 'a', 'a\0b') end, "must not contain '\\0'")
    h.raises(function() f:append('/m', 'x') end, ("h5.append: '%s' '/m': value must be a number or a usagi.Tensor, got string"):format(p))
    h.raises(function() f:append('/m', true) end, 'got boolean')
    h.raises(function() f:list(false) end, 'h5.list: path must be a string, got boolean')
    h.raises(function() f:group() end, 'h5.group: path must be a string')
    -- the file is intact after all of that
    h.expect(f:read('/x'), 'f32', { 2 }, { 1, 1 })
  end)
end)

describe('usagi.h5 datasets and groups', function()
  after_each(cleanup)

  it('round-trips every dtype at ranks 0..4, views included', function()
    local p = tmp()
    local f = h5.open(p, 'w')
    local shapes = { {}, { 3 }, { 2, 3 }, { 2, 1, 3 }, { 2, 2, 1, 2 } }
    for _, dt in ipairs { 'f32', 'f64', 'i32' } do
      for r, shape in ipairs(shapes) do
        local n = 1
        for _, s in ipairs(shape) do n = n * s end
        local t = (usagi.arange(0, n, 1) * 3 - 4):to(dt)
        t = #shape == 0 and t:view({}) or t:view(shape)   -- (n=1) -> 0-dim
        local name = ('/%s/r%d'):format(dt, r - 1)
        f:write(name, t)
        h.expect(f:read(name), dt, shape, h.flat(t:totable()))
        assert.are.same(shape, f:shape(name))
        assert.are.equal(dt, f:dtype(name))
      end
      local m = usagi.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt)
      f:write('/view/' .. dt, m:t())                        -- non-contiguous
      h.expect(f:read('/view/' .. dt), dt, { 3, 2 }, { 1, 4, 2, 5, 3, 6 })
    end
    f:write('/empty', usagi.zeros(2, 0, 3))
    h.expect(f:read('/empty'), 'f32', { 2, 0, 3 }, {})
    f:close()
    local r <close> = h5.open(p)
    assert.are.same({ 'empty', 'f32', 'f64', 'i32', 'view' }, r:list())
    assert.are.same({ 'r0', 'r1', 'r2', 'r3', 'r4' }, r:list('/f64'))
  end)

  it('overwrites a dataset, in place or with a new dtype and shape', function()
    local f <close> = h5.open(tmp(), 'w')
    f:write('/a/b', usagi.zeros(2, 2))
    f:write('/a/b', usagi.ones(2, 2))
    h.expect(f:read('/a/b'), 'f32', { 2, 2 }, { 1, 1, 1, 1 })
    f:write('/a/b', usagi.tensor({ 7, 8, 9 }, 'i32'))
    h.expect(f:read('/a/b'), 'i32', { 3 }, { 7, 8, 9 })
  end)

  it('exists, kind, list, group and remove', function()
    local p = tmp()
    local f <close> = h5.open(p, 'w')
    f:write('/g/x', usagi.ones(1))
    f:group('/g/sub/deeper')
    f:group('/g/sub')   -- exists: fine
    assert.is_true(f:exists('/g/x'))
    assert.is_true(f:exists('/'))
    assert.is_false(f:exists('/nope/x'))
    assert.is_false(f:exists('/g/x/under'))
    assert.are.equal('group', f:kind('/g'))
    assert.are.equal('dataset', f:kind('/g/x'))
    assert.is_nil(f:kind('/zz'))
    assert.are.same({ 'sub', 'x' }, f:list('/g'))
    fails_at(function() f:list('/g/x') end, 'h5.list', p, '/g/x', 'is a dataset, not a group')
    fails_at(function() f:group('/g/x') end, 'h5.group', p, '/g/x', 'is a dataset')
    fails_at(function() f:read('/g') end, 'h5.read', p, '/g', 'is a group, not a dataset')
    fails_at(function() f:read('/g/nope') end, 'h5.read', p, '/g/nope', 'no such dataset')
    fails_at(function() f:shape('/g/nope') end, 'h5.shape', p, '/g/nope', 'no such dataset')
    fails_at(function() f:dtype('/g') end, 'h5.dtype', p, '/g', 'is a group')
    fails_at(function() f:write('/g', usagi.ones(1)) end, 'h5.write', p, '/g', 'is a group')
    fails_at(function() f:remove('/zz') end, 'h5.remove', p, '/zz', 'no such object')
    f:remove('/g/sub')
    assert.are.same({ 'x' }, f:list('/g'))
    f:remove('/g')
    assert.are.same({}, f:list())
  end)

  it('refuses writes to a read-only file', function()
    local p = tmp()
    h5.open(p, 'w'):close()
    local f <close> = h5.open(p, 'r')
    fails_at(function() f:write('/x', usagi.ones(1)) end, 'h5.write', p, '/x', "read-only (mode 'r')")
    fails_at(function() f:group('/g') end, 'h5.group', p, '/g', 'read-only')
    fails_at(function() f:attr('/', 'a', 1) end, 'h5.attr', p, '/', 'read-only')
    fails_at(function() f:append('/m', 1) end, 'h5.append', p, '/m', 'read-only')
    f:flush()   -- nothing to do, no error
  end)
end)

describe('usagi.h5 attributes', function()
  after_each(cleanup)

  it('keeps the Lua type of each value on files, groups and datasets', function()
    local p = tmp()
    local f = h5.open(p, 'w')
    f:write('/d', usagi.ones(2))
    f:group('/g')
    local w = usagi.tensor { { 1, 2 }, { 3, 4 } }
    for _, obj in ipairs { '/', '/g', '/d' } do
      f:attr(obj, 'seed', 42)
      f:attr(obj, 'big', 9007199254740993)   -- 2^53 + 1: no trip through a double
      f:attr(obj, 'lr', 0.1)
      f:attr(obj, 'whole', 2.0)              -- a float that looks whole stays a float
      f:attr(obj, 'name', 'héllo')
      f:attr(obj, 'yes', true)
      f:attr(obj, 'no', false)
      f:attr(obj, 'w', w)
      f:attr(obj, 'ids', usagi.tensor({ 1, 2, 3 }, 'i32'))
      f:attr(obj, 'plugins', { 'rnn', 'lstm' })
      f:attr(obj, 'gone', 1)
      f:attr(obj, 'gone', nil)               -- an explicit nil deletes
    end
    f:close()
    f = h5.open(p, 'a')
    for _, obj in ipairs { '/', '/g', '/d' } do
      assert.are.equal(42, f:attr(obj, 'seed'))
      assert.are.equal('integer', math.type(f:attr(obj, 'seed')))
      assert.are.equal(9007199254740993, f:attr(obj, 'big'))
      assert.are.equal(0.1, f:attr(obj, 'lr'))
      assert.are.equal('float', math.type(f:attr(obj, 'whole')))
      assert.are.equal('héllo', f:attr(obj, 'name'))
      assert.are.equal(true, f:attr(obj, 'yes'))
      assert.are.equal(false, f:attr(obj, 'no'))
      h.expect(f:attr(obj, 'w'), 'f32', { 2, 2 }, { 1, 2, 3, 4 })
      h.expect(f:attr(obj, 'ids'), 'i32', { 3 }, { 1, 2, 3 })
      assert.are.same({ 'rnn', 'lstm' }, f:attr(obj, 'plugins'))
      assert.is_nil(f:attr(obj, 'gone'))
      assert.is_nil(f:attr(obj, 'never'))
      local all = f:attrs(obj)
      local names = {}
      for k in pairs(all) do names[#names + 1] = k end
      table.sort(names)
      assert.are.same({ 'big', 'ids', 'lr', 'name', 'no', 'plugins', 'seed', 'w', 'whole', 'yes' }, names)
      assert.are.equal(false, all.no)
      assert.are.equal(42, all.seed)
    end
    f:attr('/', 'seed', 'replaced by a string')
    assert.are.equal('replaced by a string', f:attr('/', 'seed'))
    fails_at(function() f:attr('/nope', 'a') end, 'h5.attr', p, '/nope', 'no such object')
    fails_at(function() f:attr('/nope', 'a', 1) end, 'h5.attr', p, '/nope', 'no such object')
    fails_at(function() f:attrs('/nope') end, 'h5.attrs', p, '/nope', 'no such object')
    fails_at(function() f:attr('/', 'huge', usagi.zeros(200, 100)) end, 'h5.attr', p, '/',
             'too big for an attribute')
    f:close()
  end)
end)

describe('usagi.h5 extendable datasets', function()
  after_each(cleanup)

  it('appends numbers, rows and blocks of rows, and checks them', function()
    local p = tmp()
    local f = h5.open(p, 'w')
    for i = 1, 100 do assert.are.equal(i, f:append('/metrics/loss', 1 / i)) end
    assert.are.equal(1, f:append('/metrics/grad', usagi.tensor { 1, 2 }))
    assert.are.equal(3, f:append('/metrics/grad', usagi.tensor { { 3, 4 }, { 5, 6 } }))
    assert.are.equal(1, f:append('/metrics/step', usagi.tensor({ 7 }, 'i32'):select(1, 1)))
    assert.are.equal(2, f:append('/metrics/step', 8))   -- a number into an i32 series
    f:flush(true)
    -- errors name the dataset and leave it as it was
    fails_at(function() f:append('/metrics/grad', usagi.tensor { 1, 2, 3 }) end, 'h5.append', p,
             '/metrics/grad', 'with rows of (2,), got a row of (3,)')
    fails_at(function() f:append('/metrics/grad', usagi.tensor({ 1, 2 }, 'f64')) end, 'h5.append',
             p, '/metrics/grad', 'the dataset is f32, the value f64')
    fails_at(function() f:append('/metrics/step', 1.5) end, 'h5.append', p, '/metrics/step',
             'not an i32 integer')
    fails_at(function() f:append('/metrics', 1) end, 'h5.append', p, '/metrics', 'is a group')
    f:write('/fixed', usagi.zeros(2, 'f64'))
    fails_at(function() f:append('/fixed', 1) end, 'h5.append', p, '/fixed', 'not extendable')
    f:close()
    f = h5.open(p, 'a')
    local loss = f:read('/metrics/loss')
    assert.are.equal('f64', loss:dtype())
    assert.are.same({ 100 }, f:shape('/metrics/loss'))
    assert.are.equal(1 / 7, loss[7])
    h.expect(f:read('/metrics/grad'), 'f32', { 3, 2 }, { 1, 2, 3, 4, 5, 6 })
    h.expect(f:read('/metrics/step'), 'i32', { 2 }, { 7, 8 })
    assert.are.equal(101, f:append('/metrics/loss', 0))   -- continues after reopening
    f:close()
  end)
end)

-- ==== Interop: h5py and h5dump =============================================

local PY = '/usr/bin/python3'
local SCRIPT = 'tests/reference/h5_interop.py'

local function have_h5py()
  return os.execute(PY .. ' -c "import h5py" >/dev/null 2>&1') == true
end
local function have_h5dump()
  return os.execute('h5dump --version >/dev/null 2>&1') == true
end

-- Run a shell command; its output and whether it exited 0.
local function run(cmd)
  local pipe = assert(io.popen(cmd .. ' 2>&1'))
  local out = pipe:read('a')
  local ok = pipe:close()
  return out, ok == true
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The file tests/reference/h5_interop.py `check` expects.
local function write_for_python(p)
  local f <close> = h5.open(p, 'w')
  f:write('/f32', usagi.tensor { { 1, 2, 3 }, { 4, 5, 6.5 } })
  f:write('/f64', usagi.tensor({ 0.1, -2, 1e300 }, 'f64'))
  f:write('/i32', usagi.tensor({ { -7, 0 }, { 2147483647, -2147483648 } }, 'i32'))
  f:write('/scalar', usagi.tensor { 2.5 }:select(1, 1))
  f:write('/empty', usagi.zeros(0, 3))
  f:write('/deep/nested/t', usagi.tensor { { 1, 2, 3 }, { 4, 5, 6 } }:t())
  f:attr('/', 'seed', 42)
  f:attr('/', 'big', 9007199254740993)
  f:attr('/', 'lr', 0.1)
  f:attr('/', 'name', 'héllo wörld')
  f:attr('/', 'yes', true)
  f:attr('/', 'no', false)
  f:attr('/', 'weights', usagi.tensor { { 1, 2 }, { 3, 4 } })
  f:attr('/', 'plugins', { 'rnn', 'lstm' })
  f:attr('/deep', 'kind', 'group attr')
  f:attr('/f32', 'units', 'nats')
  f:attr('/f32', 'ids', usagi.tensor({ 1, 2, 3 }, 'i32'))
  for _, v in ipairs { 0.5, 0.25, 0.125, 1, 2 } do f:append('/metrics/loss', v) end
  f:append('/metrics/grad', usagi.tensor { 1, 2 })
  f:append('/metrics/grad', usagi.tensor { { 3, 4 }, { 5, 6 } })
  for i = 1, 3 do f:append('/metrics/step', usagi.tensor({ i }, 'i32'):select(1, 1)) end
end

describe('usagi.h5 interop', function()
  after_each(cleanup)

  it('h5py reads what usagi wrote: shapes, dtypes, values, attributes, series', function()
    if not have_h5py() then
      pending(PY .. ' cannot import h5py (apt-get install python3-h5py): skipped')
      return
    end
    local p = tmp()
    write_for_python(p)
    local out, ok = run(PY .. ' ' .. SCRIPT .. ' check ' .. q(p))
    assert.is_true(ok, out)
    assert.is_truthy(out:match('^ok %d+ checks'), out)
  end)

  it('usagi reads what h5py wrote', function()
    if not have_h5py() then
      pending(PY .. ' cannot import h5py (apt-get install python3-h5py): skipped')
      return
    end
    local p = tmp()
    made[#made + 1] = p .. '.other'   -- the target of its external link
    local out, ok = run(PY .. ' ' .. SCRIPT .. ' write ' .. q(p))
    assert.is_true(ok, out)
    local f <close> = h5.open(p)
    h.expect(f:read('/f32'), 'f32', { 2, 3 }, { 1, 2, 3, 4, 5, 6.5 })
    h.expect(f:read('/f64'), 'f64', { 3 }, { 0.1, -2, 1e300 }, 0)
    h.expect(f:read('/i32'), 'i32', { 4 }, { -7, 0, 2147483647, -2147483648 }, 0)
    h.expect(f:read('/u8'), 'i32', { 3 }, { 0, 7, 255 }, 0)
    h.expect(f:read('/i64'), 'i32', { 2, 2 }, { -5, 0, 1, 2147483647 }, 0)
    h.expect(f:read('/i16be'), 'i32', { 2 }, { -300, 300 }, 0)
    h.expect(f:read('/f16'), 'f32', { 3 }, { 1.5, -2, 0.25 }, 0)
    h.expect(f:read('/mask'), 'i32', { 3 }, { 1, 0, 1 }, 0)
    h.expect(f:read('/scalar'), 'f64', {}, { 3.25 }, 0)
    h.expect(f:read('/empty'), 'f32', { 2, 0 }, {})
    h.expect(f:read('/gz'), 'f32', { 10, 100 }, h.flat(usagi.arange(0, 1000, 1):totable()), 0)
    h.expect(f:read('/g/h/x'), 'f64', { 4 }, { 0, 1, 2, 3 }, 0)
    assert.are.equal('u8', f:dtype('/u8'))
    assert.are.equal('i64', f:dtype('/i64'))
    assert.are.equal('f16', f:dtype('/f16'))
    assert.are.equal('bool', f:dtype('/mask'))
    assert.are.equal('string', f:dtype('/text'))
    fails_at(function() f:read('/i64big') end, 'h5.read', p, '/i64big',
             'value 1099511627776 (element 2) does not fit in i32')
    fails_at(function() f:read('/text') end, 'h5.read', p, '/text', 'unsupported type string')
    assert.are.equal('from h5py ü', f:attr('/', 'name'))
    assert.are.equal(7, f:attr('/', 'count'))
    assert.are.equal('integer', math.type(f:attr('/', 'count')))
    assert.are.equal(0.5, f:attr('/', 'rate'))
    assert.are.equal(true, f:attr('/', 'flag'))
    assert.are.equal(false, f:attr('/', 'off'))
    assert.are.same({ 'a', 'bc' }, f:attr('/', 'tags'))
    h.expect(f:attr('/', 'vec'), 'i32', { 3 }, { 1, 2, 3 }, 0)
    assert.are.equal(-3, f:attr('/', 'i32'))
    assert.are.equal(1.25, f:attr('/', 'f32'))
    assert.are.equal('fixed', f:attr('/', 'bytes'))
    assert.are.equal(2, f:attr('/g/h', 'depth'))
    assert.are.same({ 'alias', 'empty', 'ext', 'f16', 'f32', 'f64', 'g', 'gz', 'i16be', 'i32', 'i64',
                      'i64big', 'mask', 'scalar', 'text', 'u8' }, f:list())
    h.expect(f:read('/alias'), 'f32', { 2, 3 }, { 1, 2, 3, 4, 5, 6.5 })   -- soft links are fine
    h.raises(function() f:read('/ext') end, "h5.read: '" .. p .. "' '/ext': '/ext' is an external link, which usagi does not follow")
    h.raises(function() f:kind('/ext') end, "h5.kind: '" .. p .. "' '/ext'", 'external link')
  end)

  it('h5dump reads usagi files', function()
    if not have_h5dump() then
      pending('h5dump is missing (apt-get install hdf5-tools): skipped')
      return
    end
    local p = tmp()
    write_for_python(p)
    local out, ok = run('h5dump -H ' .. q(p))
    assert.is_true(ok, out)
    for _, want in ipairs { 'DATASET "f32"', 'H5T_IEEE_F32LE', 'H5T_IEEE_F64LE', 'H5T_STD_I32LE',
                            'H5S_UNLIMITED', 'ATTRIBUTE "yes"', 'H5T_CSET_UTF8', 'SCALAR' } do
      assert.is_truthy(out:find(want, 1, true), ('h5dump -H lacks %s:\n%s'):format(want, out))
    end
    out, ok = run('h5dump -d /i32 ' .. q(p))
    assert.is_true(ok, out)
    assert.is_truthy(out:find('2147483647', 1, true), out)
  end)
end)
