-- usagi.datasets (the registry of data sets) and usagi.data_get's checks:
-- every entry is complete, every file of the shared data (../shared/data,
-- when this machine has it) is in the registry and matches its SHA-256,
-- and the SHA-256 itself is right on the FIPS 180-4 test vectors.
-- The downloads and `usagi data` are driven by tests/cli/data.sh.
local usagi = require 'usagi'
local registry = require 'usagi.datasets'
local get = require 'usagi.data_get'
local fetch = require 'usagi.fetch'
local h = dofile('tests/lua/helpers.lua')
local sys = usagi.sys

describe('usagi.fetch.sha256', function()
  it('gives the FIPS 180-4 test vectors', function()
    assert.are.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', fetch.sha256_string(''))
    assert.are.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', fetch.sha256_string('abc'))
    assert.are.equal('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      fetch.sha256_string('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))
    assert.are.equal('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
      fetch.sha256_string(('a'):rep(1000000)))
  end)

  it('hashes a file as it is or as it decompresses, and says why it cannot', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'wb'))
    f:write(('abc'):rep(30000))
    f:close()
    local hex, n = fetch.sha256(path)
    assert.are.equal(fetch.sha256_string(('abc'):rep(30000)), hex)
    assert.are.equal(90000, n)
    os.execute('gzip -n -f ' .. h.quote(path))
    hex, n = fetch.sha256(path .. '.gz', true)
    assert.are.equal(fetch.sha256_string(('abc'):rep(30000)), hex)
    assert.are.equal(90000, n)
    os.remove(path .. '.gz')
    local ok, err = fetch.sha256(path .. '.none')
    assert.is_nil(ok)
    assert.is_truthy(err:find('cannot open', 1, true), err)
  end)
end)

describe('usagi.datasets', function()
  it('has the sets the experiments use, each complete', function()
    for _, name in ipairs { 'ptb', 'tinyshakespeare', 'dlfs2', 'mnist', 'fashion-mnist', 'dailydialog',
                            'word2vec_eval', 'text8', 'english_text' } do
      assert.is_table(registry[name], name)
    end
    for name, set in pairs(registry) do
      for _, k in ipairs { 'title', 'licence', 'citation', 'source' } do
        assert.is_string(set[k], name .. ' lacks ' .. k)
      end
      assert.is_true(#set.files > 0, name)
      for _, f in ipairs(set.files) do
        local what = name .. '/' .. tostring(f.name)
        assert.is_string(f.name, what)
        assert.is_truthy(f.url or (f.archive and set.archives[f.archive] and f.member), what .. ': no source')
        if f.url then assert.is_truthy(f.url:match('^https?://'), what) end
        if f.sha256 then assert.is_truthy(f.sha256:match('^' .. ('%x'):rep(64) .. '$'), what)
        else assert.is_string(f.unverified, what .. ': no sha256 and no reason') end
        if f.size then assert.are.equal('integer', math.type(f.size), what) end
      end
    end
  end)

  it('matches every file of the shared data', function()
    local shared = '../shared/data'
    if sys.kind(shared) ~= 'directory' then
      pending('no ../shared/data on this machine: skipped')
      return
    end
    local checked = 0
    for _, set in ipairs(sys.listdir(shared)) do
      if sys.kind(shared .. '/' .. set) == 'directory' then
        assert.is_table(registry[set], 'the shared data set ' .. set .. ' is not in the registry')
        for _, name in ipairs(sys.listdir(shared .. '/' .. set)) do
          local entry
          for _, f in ipairs(registry[set].files) do
            if f.name == name or (f.gz and f.name .. '.gz' == name) then entry = f end
          end
          assert.is_table(entry, set .. '/' .. name .. ' is not in the registry')
          local ok, why = get.check(shared .. '/' .. set .. '/' .. name, entry)
          assert.is_true(ok, set .. '/' .. name .. ': ' .. tostring(why))
          checked = checked + 1
        end
      end
    end
    assert.is_true(checked >= 27, 'only ' .. checked .. ' files checked')
  end)

  it('refuses a file whose checksum or size differs, saying which', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'wb'))
    f:write('abc')
    f:close()
    local ok, why = get.check(path, { name = 'x', size = 4 })
    assert.is_nil(ok)
    assert.are.equal('3 bytes, expected 4', why)
    ok, why = get.check(path, { name = 'x', size = 3, sha256 = ('0'):rep(64) })
    assert.is_nil(ok)
    assert.is_truthy(why:find('SHA-256 mismatch: got ba7816bf', 1, true), why)
    assert.is_true(get.check(path, { name = 'x', size = 3, sha256 = fetch.sha256_string('abc') }))
    os.remove(path)
  end)
end)
