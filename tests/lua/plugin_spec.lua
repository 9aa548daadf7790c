-- The plugin loader: a good plugin loads and registers itself; a plugin
-- built for another ABI, one without usg_plugin_abi, one without its entry
-- symbol and truncated or foreign files are refused, before any of their
-- code runs, with messages that say why.
local usagi = require 'usagi'

local fixtures = os.getenv('USAGI_TEST_PLUGINS')

describe('plugins', function()
  it('loads the example plugin with its C functions and Lua face', function()
    local hello = require 'usagi.hello'
    assert.are.equal('0.1.0', hello.version)
    assert.are.same({ 1, 2, 3 }, hello.iota(3):totable())
    assert.are.equal(10, hello.triangle(4))
  end)

  it('lists loaded plugins with name, version and ABI', function()
    require 'usagi.hello'
    local found
    for _, p in ipairs(usagi.plugins()) do
      if p.name == 'hello' then found = p end
    end
    assert.is_not_nil(found)
    assert.are.equal('0.1.0', found.version)
    assert.are.equal(usagi.abi_version(), found.abi)
  end)

  describe('broken fixtures', function()
    local saved
    before_each(function()
      assert.is_not_nil(fixtures, 'USAGI_TEST_PLUGINS is set by ctest')
      saved = package.cpath
      package.cpath = fixtures .. '/?.so;' .. package.cpath
    end)
    after_each(function() package.cpath = saved end)

    local function refused(name, ...)
      local ok, err = pcall(require, 'usagi.' .. name)
      assert.is_false(ok)
      for _, want in ipairs { ... } do assert.truthy(err:find(want, 1, true), err) end
      assert.is_nil(package.loaded['usagi.' .. name])
      for _, p in ipairs(usagi.plugins()) do assert.are_not.equal(name, p.name) end
      return err
    end

    it('refuses a plugin whose usg_plugin_abi is another ABI before its opener runs', function()
      local theirs, ours = tostring(usagi.abi_version() + 1), tostring(usagi.abi_version())
      refused('wrong_abi', 'ABI ' .. theirs, 'ABI ' .. ours, 'rebuild the plugin')
      assert.is_nil(rawget(_G, 'wrong_abi_opened'))
    end)

    it('refuses a plugin without usg_plugin_abi, saying how to build it', function()
      refused('no_abi', 'no_abi.so', 'usg_plugin_abi', 'usagi_add_plugin', 'USG_PLUGIN_ABI')
      assert.is_nil(rawget(_G, 'no_abi_opened'))
    end)

    it('refuses a plugin whose opener asks for another ABI, naming both versions', function()
      local theirs, ours = tostring(usagi.abi_version() + 1), tostring(usagi.abi_version())
      refused('open_abi', 'ABI ' .. theirs, 'ABI ' .. ours)
    end)

    it('refuses a plugin without its entry symbol, naming the symbol', function()
      refused('no_entry', 'luaopen_usagi_no_entry')
    end)

    it('usagi.load_plugin makes the same checks as require', function()
      local dir = fixtures .. '/usagi/'
      local f, err = usagi.load_plugin(dir .. 'wrong_abi.so', 'usagi.wrong_abi')
      assert.is_nil(f)
      assert.truthy(err:find('ABI ' .. (usagi.abi_version() + 1), 1, true), err)
      f, err = usagi.load_plugin(dir .. 'no_abi.so', 'usagi.no_abi')
      assert.is_nil(f)
      assert.truthy(err:find('usg_plugin_abi', 1, true), err)
      assert.is_nil(rawget(_G, 'no_abi_opened'))
    end)
  end)

  -- Truncated copies of a real plugin: dlopen would map segments the file
  -- does not hold and die of SIGBUS; the loader reads the headers first.
  describe('a truncated plugin', function()
    local dir, saved, bytes
    local function copy(name, n)
      local f = assert(io.open(dir .. '/usagi/' .. name .. '.so', 'wb'))
      f:write(bytes:sub(1, n))
      f:close()
    end
    setup(function()
      local src = assert(package.searchpath('usagi.lstm', package.cpath))
      local f = assert(io.open(src, 'rb'))
      bytes = f:read('a')
      f:close()
      dir = os.tmpname()
      os.remove(dir)
      usagi.sys.mkdir(dir .. '/usagi')
      saved = package.cpath
      package.cpath = dir .. '/?.so;' .. package.cpath
    end)
    teardown(function()
      package.cpath = saved
      for _, name in ipairs(usagi.sys.listdir(dir .. '/usagi')) do
        os.remove(dir .. '/usagi/' .. name)
      end
      os.remove(dir .. '/usagi')
      os.remove(dir)
    end)

    it('is refused by require at any length, naming the file and what is wrong', function()
      local cases = {
        { 0, 'empty file (0 bytes)' },
        { 16, 'truncated: the file is 16 bytes, shorter than an ELF header' },
        { 64, 'truncated: the file is 64 bytes but its program headers reach' },
        { 5000, 'truncated: the file is 5000 bytes but its segments reach' },
        { #bytes // 2, ('truncated: the file is %d bytes but its'):format(#bytes // 2) },
        { #bytes - 1, ('truncated: the file is %d bytes but its section headers reach %d')
          :format(#bytes - 1, #bytes) },
      }
      for _, c in ipairs(cases) do
        local name = 'cut' .. c[1]
        copy(name, c[1])
        local ok, err = pcall(require, 'usagi.' .. name)
        assert.is_false(ok)
        assert.truthy(err:find(c[2], 1, true), err)
        assert.truthy(err:find(dir .. '/usagi/' .. name .. '.so', 1, true), err)
        assert.is_nil(package.loaded['usagi.' .. name])
      end
    end)

    it('is refused by usagi.load_plugin, and so by the REPL\'s :reload', function()
      copy('lstm', 5000)
      local f, err = usagi.load_plugin(dir .. '/usagi/lstm.so', 'usagi.lstm')
      assert.is_nil(f)
      local want = 'truncated: the file is 5000 bytes but its segments reach'
      assert.truthy(err:find(want, 1, true), err)
      local R = require 'usagi.repl'
      local ok, msg = pcall(R.command, ':reload usagi.lstm')
      assert.is_false(ok)
      local from = ':reload: usagi.lstm from ' .. dir .. '/usagi/lstm.so: '
      assert.truthy(msg:find(from, 1, true), msg)
      assert.truthy(msg:find('truncated: the file is 5000 bytes', 1, true), msg)
    end)

    it('is refused when it is not a plugin of this machine', function()
      local ours = string.unpack('<I2', bytes, 19)                 -- e_machine
      local theirs = ours == 183 and 62 or 183                     -- aarch64, else x86-64
      local f = assert(io.open(dir .. '/usagi/foreign.so', 'wb'))
      f:write(bytes:sub(1, 18) .. string.pack('<I2', theirs) .. bytes:sub(21))
      f:close()
      local ok, err = pcall(require, 'usagi.foreign')
      assert.is_false(ok)
      local want = ('built for another machine (ELF machine %d)'):format(theirs)
      assert.truthy(err:find(want, 1, true), err)
      f = assert(io.open(dir .. '/usagi/text.so', 'wb'))
      f:write(('not a library\n'):rep(10))
      f:close()
      ok, err = pcall(require, 'usagi.text')
      assert.is_false(ok)
      assert.truthy(err:find('not a shared library (no ELF header)', 1, true), err)
    end)
  end)
end)
