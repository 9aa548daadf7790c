-- The plugin loader: a good plugin loads and registers itself, a plugin
-- built for another ABI and one without its entry symbol are refused with
-- messages that say why.
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

    it('refuses a plugin built for another ABI, naming both versions', function()
      local ok, err = pcall(require, 'usagi.wrong_abi')
      assert.is_false(ok)
      local theirs, ours = tostring(usagi.abi_version() + 1), tostring(usagi.abi_version())
      assert.truthy(err:find('ABI ' .. theirs, 1, true), err)
      assert.truthy(err:find('ABI ' .. ours, 1, true), err)
      assert.is_nil(package.loaded['usagi.wrong_abi'])
      for _, p in ipairs(usagi.plugins()) do assert.are_not.equal('wrong_abi', p.name) end
    end)

    it('refuses a plugin without its entry symbol, naming the symbol', function()
      local ok, err = pcall(require, 'usagi.no_entry')
      assert.is_false(ok)
      assert.truthy(err:find('luaopen_usagi_no_entry', 1, true), err)
    end)
  end)
end)
