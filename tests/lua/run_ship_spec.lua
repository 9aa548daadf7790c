-- usagi.run_ship: a run directory as bytes and back, for ranks that share
-- no filesystem (the MPI side is tests/mpi/private_out.sh and
-- two_hosts.sh): every file but the checkpoints, byte for byte; a file
-- already there with the same bytes (a shared filesystem) is left alone;
-- a name reaching out of the directory is refused.
local usagi = require 'usagi'
local ship = require 'usagi.run_ship'
local sys = usagi.sys

local function put(path, bytes)
  local f <close> = assert(io.open(path, 'wb'))
  f:write(bytes)
end

describe('run_ship', function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    sys.mkdir(dir .. '/run/checkpoints')
  end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it('packs a run directory without its checkpoints and unpacks it elsewhere, byte for byte', function()
    local bytes = string.rep('\0\1\255hdf', 1000)
    put(dir .. '/run/results.h5', bytes)
    put(dir .. '/run/run.log', '# started\n')
    put(dir .. '/run/checkpoints/step-000000001.h5', 'a checkpoint')
    local packed = ship.pack(dir .. '/run', { checkpoints = true })
    assert.are.equal(2, ship.unpack(packed, dir .. '/copy'))
    assert.is_true(ship.read_file(dir .. '/copy/results.h5') == bytes)
    assert.are.equal('# started\n', ship.read_file(dir .. '/copy/run.log'))
    assert.is_nil(sys.kind(dir .. '/copy/checkpoints'))
    -- the same files again (a shared filesystem): nothing written
    assert.are.equal(0, ship.unpack(packed, dir .. '/copy'))
    assert.are.equal(0, ship.unpack(packed, dir .. '/run'))
  end)

  it('packs a single file, and nothing for a path that is missing', function()
    put(dir .. '/sweep.log', 'rank 1: [1/1] ok\n')
    assert.are.equal(1, ship.unpack(ship.pack(dir .. '/sweep.log'), dir .. '/other.log'))
    assert.are.equal('rank 1: [1/1] ok\n', ship.read_file(dir .. '/other.log'))
    assert.are.equal('', ship.pack(dir .. '/missing'))
    assert.are.equal(0, ship.unpack('', dir .. '/missing'))
    assert.is_nil(sys.kind(dir .. '/missing'))
  end)

  it('refuses a name that reaches out of the directory', function()
    local ok, err = pcall(ship.unpack, string.pack('<s4s8', '../outside', 'x'), dir .. '/run')
    assert.is_false(ok)
    assert.matches('run_ship.unpack: a file name inside .* expected, got "../outside"', err)
    assert.is_nil(sys.kind(dir .. '/outside'))
  end)
end)
