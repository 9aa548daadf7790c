-- usagi.sys: reading data files whole (plain or gzip) and the run lock.
-- (Directories, spawn, wait and replace are exercised by run_spec.lua.)
local usagi = require 'usagi'
local sys = usagi.sys
local h = dofile('tests/lua/helpers.lua')

local tmpdir = h.tmpdir

describe('usagi.sys.read', function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it('reads a plain file and a gzip file whole, byte for byte', function()
    local text = {}
    for i = 1, 20000 do text[i] = ('line %d of the corpus\n'):format(i) end
    text = table.concat(text) .. '\0binary\255 tail'
    local f = io.open(dir .. '/a.txt', 'wb')
    f:write(text)
    f:close()
    assert.are.equal(text, sys.read(dir .. '/a.txt'))
    assert.is_true(os.execute("gzip -k -n '" .. dir .. "/a.txt'"))
    assert.are.equal(text, sys.read(dir .. '/a.txt.gz'))
    f = io.open(dir .. '/empty', 'wb')
    f:close()
    assert.are.equal('', sys.read(dir .. '/empty'))
  end)

  it('names the file and the reason when it cannot', function()
    h.fails(function() sys.read(dir .. '/none') end, "sys.read: '" .. dir .. "/none': No such file or directory")
    local f = io.open(dir .. '/bad.gz', 'wb')
    f:write('\31\139\8\0\0\0\0\0\0\3garbage')           -- a gzip header, then no deflate stream
    f:close()
    h.fails(function() sys.read(dir .. '/bad.gz') end, "sys.read: '" .. dir .. "/bad.gz': ")
    h.fails(function() sys.read(dir) end, "sys.read: '" .. dir .. "'")
  end)
end)

describe('usagi.sys.lock', function()
  it('is exclusive while held and free once released', function()
    local dir = tmpdir()
    local a = sys.lock(dir)
    assert.is_truthy(a)
    -- a second process cannot take it while this one holds it
    local cmd = ("'%s' -e \"os.exit(usagi.sys.lock('%s') and 0 or 3)\""):format(sys.exe(), dir)
    local _, _, code = os.execute(cmd)
    assert.are.equal(3, code)
    a:unlock()
    _, _, code = os.execute(cmd)
    assert.are.equal(0, code)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe('usagi.sys.mkdir, crc32 and the signal trap', function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it('mkdir makes parents; exclusive, it says false when the directory exists', function()
    assert.is_true(sys.mkdir(dir .. '/a/b/c'))
    assert.is_true(sys.mkdir(dir .. '/a/b/c'))
    assert.is_true(sys.mkdir(dir .. '/a/b/d', true))
    assert.is_false(sys.mkdir(dir .. '/a/b/d', true))
    assert.is_false(sys.mkdir(dir .. '/a/b/d/', true))
    h.fails(function() sys.mkdir('/proc/none/x') end, "sys.mkdir: '/proc/none'")
  end)

  it('crc32 is zlib\'s CRC-32 of the bytes, and names a missing file', function()
    local f = io.open(dir .. '/n', 'wb')
    f:write('123456789')                          -- the check value of CRC-32
    f:close()
    assert.are.equal(0xCBF43926, sys.crc32(dir .. '/n'))
    f = io.open(dir .. '/e', 'wb')
    f:close()
    assert.are.equal(0, sys.crc32(dir .. '/e'))
    h.fails(function() sys.crc32(dir .. '/none') end, "sys.crc32: '" .. dir .. "/none': No such file")
  end)

  it('trap holds SIGTERM and SIGHUP for signalled(); untrap gives them back', function()
    local pid = sys.getpid()
    sys.trap()
    local ok, err = pcall(function()
      assert.is_nil(sys.signalled())
      sys.kill(pid, 'TERM')
      sys.sleep(0.01)
      assert.are.equal('TERM', sys.signalled())
    end)
    sys.untrap()
    assert.is_nil(sys.signalled())
    if not ok then error(err, 0) end
    sys.trap()
    ok, err = pcall(function()
      sys.kill(pid, 1)                            -- SIGHUP
      sys.sleep(0.01)
      assert.are.equal('HUP', sys.signalled())
    end)
    sys.untrap()
    if not ok then error(err, 0) end
  end)
end)

describe('usagi.sys.wait', function()
  it("with 'nohang' says false while the child runs and its end once it ended", function()
    local pid = sys.spawn({ '/bin/sleep', '0.3' })
    assert.is_false(sys.wait(pid, 'nohang'))
    local got, how, code
    for _ = 1, 500 do
      got, how, code = sys.wait(pid, 'nohang')
      if got then break end
      sys.sleep(0.01)
    end
    assert.are.same({ pid, 'exit', 0 }, { got, how, code })
    h.fails(function() sys.wait(pid, 'later') end, "invalid option 'later'")
  end)
end)
