-- usagi.h5 string datasets (f:write_strings, f:read_strings): round trips,
-- what h5py sees, and bad input.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')

describe('h5 string datasets', function()
  local dir = h.tmpdir()
  local file = dir .. '/s.h5'
  teardown(function() h.rmrf(dir) end)

  it('round-trip lists of UTF-8 strings, empty ones included, and replace what was there', function()
    local f <close> = usagi.h5.open(file, 'w')
    local words = { 'the', '', 'naïve', '兎', ('x'):rep(1000) }
    f:write_strings('/a/vocab', words)
    f:write_strings('/none', {})
    assert.are.same(words, f:read_strings('/a/vocab'))
    assert.are.same({}, f:read_strings('/none'))
    assert.are.equal('string', f:dtype('/a/vocab'))
    f:write('/n', usagi.zeros(3))
    f:write_strings('/n', { 'now', 'strings' })
    assert.are.same({ 'now', 'strings' }, f:read_strings('/n'))
  end)

  it('are lists of str for h5py', function()
    local probe = io.popen('/usr/bin/python3 -c "import h5py" 2>&1; echo rc=$?'):read('a')
    if not probe:find('rc=0', 1, true) then
      pending('/usr/bin/python3 cannot import h5py (apt-get install python3-h5py): skipped')
      return
    end
    local f <close> = usagi.h5.open(file, 'w')
    f:write_strings('/v', { 'a', 'naïve' })
    f:close()
    local out = io.popen(('/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1]); '
      .. 'print([s.decode() for s in f[\'v\'][()]] == [\'a\', \'na\\u00efve\']); '
      .. 'f.close(); g = h5py.File(sys.argv[1], \'a\'); '
      .. 'g.create_dataset(\'w\', data=[\'x\', \'yz\'], dtype=h5py.string_dtype()); '
      .. 'g.create_dataset(\'fixed\', data=[b\'ab\', b\'c\']); g.close()" %s'):format(h.quote(file))):read('a')
    assert.are.equal('True\n', out)
    local g <close> = usagi.h5.open(file)
    assert.are.same({ 'x', 'yz' }, g:read_strings('/w'))
    assert.are.same({ 'ab', 'c' }, g:read_strings('/fixed'))
  end)

  it('refuse numbers, bad lists and groups with a message', function()
    local f <close> = usagi.h5.open(file, 'w')
    f:write('/x', usagi.zeros(2, 2))
    h.fails(function() f:read_strings('/x') end, "'/x': expected strings, got float")
    h.fails(function() f:read_strings('/missing') end, '/missing')
    h.fails(function() f:write_strings('/y', { 'a', 2 }) end, 'string 2 is a number')
    h.fails(function() f:write_strings('/y', 'a') end, 'strings must be a list of strings, got string')
    f:group('/g')
    h.fails(function() f:write_strings('/g', { 'a' }) end, 'is a group; remove it first')
  end)
end)
