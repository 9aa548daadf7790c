-- h5_faults_spec.lua -- usagi.h5 under faults, from Lua: a disk that fills
-- on each write path (write, append, attr, write_strings, close, flush)
-- gives an error naming the file and what the system said; a flipped byte
-- in a dataset fails the read; usagi.h5.verify answers true or nil and a
-- message; a truncated file says so; usagi.save into a directory that
-- cannot take files names the directory and the cause.
--
-- The full disk is a tmpfs of 256 KiB (we run as root in CI); where mount
-- is refused, each case runs under `ulimit -f 256` instead (SIGXFSZ
-- ignored), which fails writes with "File too large". The spec prints which
-- ran. Each case runs in a child usagi, so its exit after a failed close is
-- checked too.
local usagi = require 'usagi'
local h = dofile('tests/lua/helpers.lua')
local h5, sys = usagi.h5, usagi.sys
local quote = h.quote
local exe = sys.exe()

local function run(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local text = p:read('a')
  local _, how, code = p:close()
  return text, how, code
end

-- A directory of 256 KiB (a tmpfs) or nil when mounting is not allowed;
-- mount_ro: the same, read-only.
local function mount(dir, opts)
  local _, _, code = run(('mount -t tmpfs -o %s tmpfs %s'):format(opts, quote(dir)))
  return code == 0
end
local function umount(dir) run('umount ' .. quote(dir)) end

describe('a full disk', function()
  local dir, mounted

  setup(function()
    dir = h.tmpdir()
    mounted = mount(dir, 'size=256k')
    print(mounted and '\n# full disk: a tmpfs of 256 KiB'
      or '\n# full disk: ulimit -f 256 (mount not allowed)')
  end)
  teardown(function()
    if mounted then umount(dir) end
    h.rmrf(dir)
  end)

  -- Each case: Lua code that writes far more than 256 KiB through one path
  -- on the open file f, then f:close(). The child prints the first error.
  local cases = {
    write = "f:write('/params/w', usagi.arange(1, 200001):float())",
    append = "for i = 1, 200 do f:append('/metrics/rows', usagi.arange(1, 1025):float()) end",
    attr = "for i = 1, 16 do f:attr('/', 'a' .. i, usagi.arange(1, 12001):float()) end",
    write_strings = "local v = {} for i = 1, 20000 do v[i] = ('s'):rep(40) end f:write_strings('/v', v)",
    close = "for i = 1, 100 do f:write('/small/d' .. i, usagi.arange(1, 2049):float()) end",
    flush = "for i = 1, 100 do f:write('/small/d' .. i, usagi.arange(1, 2049):float()) end f:flush(true)",
    -- the case that was silent: 16 KB, 8 KiB of room, and zeros read back
    almost_full = "f:write('/params/w', usagi.arange(1, 4097):float())",
  }
  for _, name in ipairs { 'write', 'append', 'attr', 'write_strings', 'close', 'flush', 'almost_full' } do
    it('is an error on ' .. name, function()
      local path = dir .. '/' .. name .. '.h5'
      local code = ("local f = usagi.h5.open(%q, 'w') "
        .. "local ok, err = pcall(function() %s end) "
        .. "local cok, cerr = pcall(f.close, f) "
        .. "print(ok and (cok and 'no error' or cerr) or err)"):format(path, cases[name])
      local cmd = ('%s -e %s'):format(quote(exe), quote(code))
      local room = name == 'almost_full' and 8 or 256   -- KiB
      if mounted and room < 256 then   -- a filler takes all but 8 KiB
        local avail = tonumber(run('df -k --output=avail ' .. quote(dir)):match('(%d+)%s*$'))
        run(('dd if=/dev/zero of=%s bs=1k count=%d'):format(quote(dir .. '/filler'), avail - room))
      end
      if not mounted then
        cmd = ("bash -c %s"):format(quote(("trap '' XFSZ; ulimit -f %d; exec "):format(room) .. cmd))
      end
      local text, how, status = run(cmd)
      os.remove(path)
      os.remove(dir .. '/filler')
      assert.are.equal('exit', how, text)
      assert.are.equal(0, status, text)   -- no crash at exit after a failed close
      assert.is_truthy(text:find(mounted and 'No space left on device' or 'File too large', 1, true), text)
      assert.is_truthy(text:find(path, 1, true), text)
    end)
  end
end)

describe('checksums', function()
  it('make a flipped byte in a dataset an error, large or small', function()
    local path, bad = os.tmpname(), os.tmpname()
    local f = h5.open(path, 'w')
    f:write('/big', usagi.arange(1, 100001):float())   -- 400 kB: chunked, Fletcher-32
    f:write('/small', -usagi.arange(1, 11):float())    -- 40 bytes: in the checksummed header
    f:close()
    local bytes = assert(io.open(path, 'rb')):read('a')
    local function flip(at)
      local b = bytes:sub(1, at - 1) .. string.char(bytes:byte(at) ~ 0x40) .. bytes:sub(at + 1)
      local o = assert(io.open(bad, 'wb')); o:write(b); o:close()
    end
    -- float 50000 appears once: inside /big's chunk
    flip(assert(bytes:find(string.pack('<f', 50000), 1, true)))
    local g <close> = h5.open(bad)
    h.raises(function() g:read('/big') end, 'h5.read', bad, 'Fletcher32 checksum')
    g:close()
    local ok, msg = h5.verify(bad)
    assert.is_nil(ok)
    assert.is_truthy(msg:find('Fletcher32', 1, true), msg)
    flip(assert(bytes:find(string.pack('<f<f', -1, -2), 1, true)) + 2)
    local g2 <close> = h5.open(bad)
    h.raises(function() g2:read('/small') end, bad, 'checksum')
    g2:close()
    os.remove(path); os.remove(bad)
  end)
end)

describe('usagi.h5.verify', function()
  it('answers true, or nil and a message naming the file', function()
    local path, cut = os.tmpname(), os.tmpname()
    local f = h5.open(path, 'w')
    f:write('/p/w', usagi.arange(1, 5001):float())
    f:attr('/', 'name', 'x'); f:append('/m/loss', 0.5)
    f:write_strings('/vocab', { 'a', 'b' })
    f:close()
    assert.are.equal(true, h5.verify(path))
    assert.are.equal(true, h5.verify(path, 5))
    local w <close> = h5.open(path, 'a')   -- the child would share its pending writes
    local ok, msg = h5.verify(path)
    assert.is_nil(ok)
    assert.is_truthy(msg:find('open for writing in this process', 1, true), msg)
    w:close()
    local bytes = assert(io.open(path, 'rb')):read('a')
    local o = assert(io.open(cut, 'wb')); o:write(bytes:sub(1, #bytes // 2)); o:close()
    local ok, msg = h5.verify(cut)
    assert.is_nil(ok)
    assert.is_truthy(msg:find(cut, 1, true), msg)
    assert.is_truthy(msg:find('truncated or corrupt', 1, true), msg)
    os.remove(path); os.remove(cut)
  end)

  -- A string's size in HDF5's global heap (no checksum there) made huge:
  -- libhdf5 1.10 reads past its buffer (H5HG_read). In this process that
  -- would be the end of it; verify's child takes the crash instead. Under
  -- AddressSanitizer the child reports the bad copy and exits instead of
  -- dying of a signal, which verify reports as stopping without an answer.
  it('reports a file that crashes libhdf5, and this process lives on', function()
    local path, bad = os.tmpname(), os.tmpname()
    local f = h5.open(path, 'w')
    f:attr('/', 'first', 'aaaaaaa'); f:attr('/', 'second', 'bbbbbbbbbbb')
    f:close()
    local bytes = assert(io.open(path, 'rb')):read('a')
    local at = bytes:find('bbbbbbbbbbb', 1, true) - 1 - 8 + 2   -- byte 2 of its size
    local o = assert(io.open(bad, 'wb'))
    o:write(bytes:sub(1, at), string.char(bytes:byte(at + 1) ~ 120), bytes:sub(at + 2))
    o:close()
    local ok, msg = h5.verify(bad)
    assert.is_nil(ok)
    assert.is_truthy(msg:find("h5.verify: '" .. bad .. "': ", 1, true), msg)
    assert.is_truthy(msg:find('reading it crashed libhdf5 %(signal %d+%)')
      or msg:find('reading it stopped without an answer (exit status', 1, true), msg)
    assert.are.equal(true, h5.verify(path))
    os.remove(path); os.remove(bad)
  end)

  it('raises on bad arguments', function()
    h.raises(function() h5.verify() end, 'h5.verify', 'path must be a string')
    h.raises(function() h5.verify('') end, 'h5.verify', 'path must be a non-empty string')
    h.raises(function() h5.verify('x.h5', 'soon') end, 'h5.verify', 'seconds must be a number')
    h.raises(function() h5.verify('x.h5', 0) end, 'h5.verify', 'seconds must be in')
  end)
end)

describe('messages', function()
  it('say a truncated file is truncated, not held by another process', function()
    local path, cut = os.tmpname(), os.tmpname()
    local f = h5.open(path, 'w'); f:write('/w', usagi.zeros(1000)); f:close()
    local bytes = assert(io.open(path, 'rb')):read('a')
    local o = assert(io.open(cut, 'wb')); o:write(bytes:sub(1, 1000)); o:close()
    local ok, msg = pcall(h5.open, cut)
    assert.is_false(ok)
    assert.is_truthy(msg:find('the file is truncated or corrupt', 1, true), msg)
    assert.is_falsy(msg:find('another process', 1, true), msg)
    os.remove(path); os.remove(cut)
  end)

  -- Root writes into a read-only directory, so the directory is a
  -- read-only tmpfs; where mounting is refused, a path under a file.
  it('name the directory usagi.save cannot write into, and why', function()
    local dir = h.tmpdir()
    local ro = mount(dir, 'size=64k,ro')
    local target, why = dir .. '/model.h5', 'Read-only file system'
    if not ro then
      local file = dir .. '/a_file'
      assert(io.open(file, 'w')):close()
      target, dir, why = file .. '/model.h5', file, 'Not a directory'
    end
    print(ro and '\n# read-only: a tmpfs mounted ro' or '\n# read-only: a path under a file')
    local ok, msg = pcall(usagi.save, target, { w = usagi.zeros(3) })
    if ro then umount(dir) end
    h.rmrf(ro and dir or dir:match('^(.*)/[^/]*$'))
    assert.is_false(ok)
    assert.is_truthy(msg:find(("usagi.save: cannot create 'model.h5.tmp-%d' in '%s' (%s)")
      :format(sys.getpid(), dir, why), 1, true), msg)
    assert.is_falsy(msg:find('sys.remove', 1, true), msg)
  end)
end)
