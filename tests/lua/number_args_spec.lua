-- What a Lua number becomes where an op takes a tensor or a number (where,
-- copy_): a 0-dim i32 tensor for an integer that fits in 32 bits, else f32.
-- host/lua/binding.h states this rule; the spec keeps the two in step.

describe('a number in place of a tensor', function()
  local cond = usagi.tensor({ 1, 0 }, 'i32')

  it('is i32 when it is an integer that fits in 32 bits', function()
    local r = usagi.where(cond, 1, 2)
    assert.are.equal('i32', r:dtype())
    assert.are.same({ 1, 2 }, r:totable())
  end)

  it('is f32 when it has a fraction', function()
    assert.are.equal('f32', usagi.where(cond, 1.5, 2.5):dtype())
    assert.are.equal('f32', usagi.where(cond, 1, 2.5):dtype())
  end)

  it('is f32 when it is an integer past 32 bits', function()
    assert.are.equal('f32', usagi.where(cond, 3000000000, 1):dtype())
  end)

  it('fills a tensor through copy_ and keeps its dtype', function()
    local t = usagi.zeros(2)
    t:copy_(3)
    assert.are.equal('f32', t:dtype())
    assert.are.same({ 3, 3 }, t:totable())
  end)
end)
