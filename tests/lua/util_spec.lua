-- util_spec.lua -- scripts/usagi/util.lua, the helpers the Lua library
-- shares, and the proof that they are written once: no file of the library
-- keeps a copy of its own, and usagi.run's class is put together from its
-- files with every method in it once.
local usagi = require 'usagi'
local util = require 'usagi.util'

-- The Lua files of the library: the folder usagi.util is in.
local function library_files()
  local dir = package.searchpath('usagi.util', package.path):match('^(.*)/[^/]*$')
  local out = {}
  for _, name in ipairs(usagi.sys.listdir(dir)) do
    if name:match('%.lua$') then out[#out + 1] = { name = name, path = dir .. '/' .. name } end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function text_of(path)
  local f <close> = assert(io.open(path, 'r'))
  return f:read('a')
end

describe('usagi.util', function()
  it('sorts keys by their text and keeps their type', function()
    local ks = util.sorted_keys { b = 1, a = 2, [2] = 3, [10] = 4 }
    assert.are.same({ 10, 2, 'a', 'b' }, ks)
    assert.are.equal('integer', math.type(ks[1]))
    assert.are.same({}, util.sorted_keys {})
  end)

  it('tells finite numbers from NaN and infinities', function()
    for _, v in ipairs { 0, -1, 1e308, -1e308, 2 ^ -1074 } do assert.is_true(util.finite(v), tostring(v)) end
    for _, v in ipairs { 0 / 0, math.huge, -math.huge } do assert.is_false(util.finite(v), tostring(v)) end
  end)

  it('formats seconds for a progress bar', function()
    assert.are.equal('00:00', util.fmt_time(0))
    assert.are.equal('01:00', util.fmt_time(59.6))
    assert.are.equal('59:59', util.fmt_time(3599))
    assert.are.equal('1:02:05', util.fmt_time(3725))
    assert.are.equal('--:--', util.fmt_time(0 / 0))
    assert.are.equal('--:--', util.fmt_time(math.huge))
  end)

  it('writes times as ISO 8601 in UTC', function()
    assert.are.equal('1970-01-01T00:00:00Z', util.iso(0))
    assert.are.equal('2001-09-09T01:46:40Z', util.iso(1e9 + 0.7))
  end)

  it('reads integer keys back from their HDF5 names', function()
    assert.are.equal(3, util.key_of('[3]'))
    assert.are.equal('integer', math.type(util.key_of('[3]')))
    assert.are.equal(-2, util.key_of('[-2]'))
    assert.are.equal('3', util.key_of('3'))
    assert.are.equal('w', util.key_of('w'))
  end)

  it('is the one copy: no file of the library defines these helpers again', function()
    local copies = {}
    for _, f in ipairs(library_files()) do
      if f.name ~= 'util.lua' then
        local text = text_of(f.path)
        for _, name in ipairs { 'sorted_keys', 'finite', 'fmt_time', 'iso' } do
          if text:find('local function ' .. name .. '%(') then copies[#copies + 1] = f.name .. ': ' .. name end
        end
        if text:find("'^%[(%-?%d+)%]$'", 1, true) then copies[#copies + 1] = f.name .. ': key_of' end
      end
    end
    assert.are.same({}, copies)
  end)
end)

describe('usagi.run, one file an idea', function()
  it('opens every file of the library with a paragraph on what it is for', function()
    for _, f in ipairs(library_files()) do
      local first = text_of(f.path):match('^[^\n]*')
      assert.is_truthy(first:match('^%-%- %S'), f.name .. ' opens with ' .. first)
    end
  end)

  it('puts every part of Run into the class once', function()
    local run = require 'usagi.run'
    local parts = { 'usagi.run_progress', 'usagi.run_carry', 'usagi.run_checkpoint', 'usagi.run_train',
                    'usagi.run_dist' }
    local from = {}
    for _, part in ipairs(parts) do
      for name, f in pairs(require(part).methods) do
        assert.is_nil(from[name], name .. ' is defined by ' .. tostring(from[name]) .. ' and ' .. part)
        from[name] = part
        assert.are.equal(f, run.Run[name], name)
      end
    end
    for _, name in ipairs { 'progress', 'epochs', 'track', 'checkpoint', 'batches', 'train_epoch', 'shard',
                            'allreduce', 'log', 'print', 'finish', 'keep_data', 'model', 'history', 'seconds' } do
      assert.are.equal('function', type(run.Run[name]), name)
    end
    assert.are.equal('function', type(run.open))
    assert.are.equal('function', type(run.read_results))
    assert.are.equal('function', type(run.launched_dist))
    assert.are.same({ 1, 3 }, { run.shard_range(5, 0, 2) })
  end)
end)
