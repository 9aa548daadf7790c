-- The kernel's JSON (scripts/usagi/kernel_json.lua) and MIME bundles
-- (kernel_display.lua) as plain functions; tests/cli/kernel.sh drives the
-- whole kernel with a real Jupyter client.
local usagi = require 'usagi'
local J = require 'usagi.kernel_json'
local D = require 'usagi.kernel_display'

describe('kernel_json', function()
  it('decodes objects, arrays, numbers, escapes and null', function()
    local v = assert(J.decode('{"a": [1, 2.5, -0.5e1, "x\\u00e9\\ud83d\\ude00\\n"], "b": null, "c": {}}'))
    assert.are.equal(1, v.a[1])
    assert.are.equal('integer', math.type(v.a[1]))
    assert.are.equal(2.5, v.a[2])
    assert.are.equal(-5.0, v.a[3])
    assert.are.equal('xé😀\n', v.a[4])
    assert.are.equal(J.null, v.b)
    assert.are.equal('{"a":[1,2.5,-5,"xé😀\\n"],"b":null,"c":{}}', J.encode(v))
  end)

  it('refuses what is not strict JSON, saying where', function()
    for text, why in pairs {
      ['[1,]'] = 'unexpected character at byte 4', ['01'] = 'text after the value',
      ['{"a" 1}'] = "':' expected", ['"\1"'] = 'control character', ['1.'] = 'bad number',
      ['"\255"'] = 'not valid UTF-8', ['"\\ud800"'] = 'lone surrogate', [''] = 'unexpected end',
      [('['):rep(1000)] = 'nested too deep', ['tru'] = 'unexpected character', ['{1:2}'] = 'key must be a string',
    } do
      local v, err = J.decode(text)
      assert.is_nil(v)
      assert.truthy(err:find(why, 1, true), text .. ' -> ' .. tostring(err))
      assert.truthy(err:find('^json.decode: '))
    end
    assert.truthy(select(2, J.decode(5)):find('text must be a string, got number'))
  end)

  it('encodes NaN as null, bad UTF-8 as U+FFFD, marked empty tables as [] or {}', function()
    assert.are.equal('{"a":null,"b":[],"c":{},"d":"x\\u0000\xef\xbf\xbd"}',
      J.encode { a = 0 / 0, b = J.array(), c = {}, d = 'x\0\255' })
    local t = {}
    t.self = t
    assert.has_error(function() J.encode(t) end, 'json.encode: a table contains itself')
  end)
end)

describe('kernel_display', function()
  it('base64 matches RFC 4648', function()
    for plain, enc in pairs { [''] = '', f = 'Zg==', fo = 'Zm8=', foo = 'Zm9v', foobar = 'Zm9vYmFy' } do
      assert.are.equal(enc, D.base64(plain))
    end
  end)

  it('shows a tensor as an HTML table with its dtype and shape, summarized when large', function()
    local data = D.bundle(usagi.zeros(30, 2))
    assert.truthy(data['text/plain']:find('usagi.Tensor', 1, true))
    assert.truthy(data['text/html']:find('f32 (30, 2)', 1, true))
    local _, rows = data['text/html']:gsub('<tr>', '')
    assert.are.equal(11, rows)                 -- 5, a gap, 5
  end)
end)
