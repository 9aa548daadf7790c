-- ops_plugin_spec.lua -- plugins with an opener of their own (userdata,
-- state) declare their ops in op tables too (host/ops/README.md, "A plugin
-- with userdata"): gen.lua writes usg_NAME_ops_open for them, which puts
-- the ops into the module and into their classes' metatables, and their
-- declarations into usagi.op_table(). tests/lua/ops_spec.lua checks each
-- op; this spec checks the way they arrive, and gen.lua's refusals.
local usagi = require 'usagi'
local w2v = require 'usagi.word2vec'
local dist = require 'usagi.dist'

local function declared(module, name)
  for _, op in ipairs(usagi.op_table()) do
    if op.module == module and op.name == name then return op end
  end
end

local function help_text(x)
  local out, old = {}, _G.print
  _G.print = function(...) out[#out + 1] = table.concat({ ... }, '\t') end
  local ok, err = pcall(usagi.help, x)
  _G.print = old
  assert(ok, err)
  return table.concat(out, '\n')
end

-- gen.lua over a table given as source: true and the C, or false and the error
local h = dofile('tests/lua/helpers.lua')
local function gen(source) return h.generate('gen.lua', source) end

describe('a plugin with its own opener', function()
  it('declares word2vec\'s functions and the vocabulary\'s methods in the op table', function()
    assert.is_truthy(declared('word2vec', '_keep_prob'))
    for _, m in ipairs { 'size', 'total', 'sample_negatives' } do
      local op = declared('word2vec', m)
      assert.is_truthy(op, m)
      assert.are.equal('usagi.word2vec.Vocab', op.class)
    end
    assert.are.equal('function', type(w2v._keep_prob))
    assert.is_near(0.11, w2v._keep_prob(100000, 1000000, 1e-3), 1e-12)
  end)

  it('keeps the hand-written methods beside the generated ones, and the errors they gave', function()
    local v = w2v._vocab_from({ 'the', 'of', 'and' }, { 5, 3, 1 })
    assert.are.equal(3, v:size())
    assert.are.equal(9, v:total())
    assert.are.same({ 'the', 'of', 'and' }, v:words())
    assert.are.equal(2, v:find('of'))
    local ids = v:sample_negatives(2000, 1)
    assert.are.equal('i32', ids:dtype())
    assert.is_true(usagi.equal(ids, v:sample_negatives(2000, 1)))     -- the same seed, the same ids
    local seen = {}
    for i = 1, ids:numel() do seen[ids[i]] = (seen[ids[i]] or 0) + 1 end
    assert.is_true(seen[1] > seen[2] and seen[2] > seen[3])           -- unigram^0.75: the frequent first
    local ok, err = pcall(function() return v:sample_negatives(-1, 1) end)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'sample_negatives' (n must be in 0..2^30)", 1, true), err)
    ok, err = pcall(function() return v.size('x') end)
    assert.truthy(err:find('usagi.word2vec.Vocab expected, got string', 1, true), err)
    local s = help_text(v.sample_negatives)          -- help on a method of the userdata: the table's doc
    assert.truthy(s:find('^usagi.word2vec.Vocab:sample_negatives\nvocab:sample_negatives%(n, seed%)'), s)
  end)

  it('declares dist.broadcast and dist.allreduce, which return the tensor they were given', function()
    assert.is_truthy(declared('dist', 'broadcast'))
    assert.is_truthy(declared('dist', 'allreduce'))
    local x = usagi.ones(3):requires_grad(true)       -- parameters are broadcast at the start
    assert.are.equal(x, dist.broadcast(x))
    assert.are.equal(x, dist.allreduce(x, 'mean'))
    local ok, err = pcall(dist.allreduce, x, 'max')
    assert.truthy(not ok and err:find("invalid option 'max'", 1, true), err)
    -- help shows the table's doc
    local s = help_text(dist.allreduce)
    assert.truthy(s:find("dist.allreduce(t [, 'sum' | 'mean'])", 1, true), s)
  end)

  it('gen.lua writes usg_NAME_ops_open for plugin.opener = false, and no entry point', function()
    local ok, c = gen [[return { name = 'thing', plugin = { version = '0.1.0', opener = false },
      kinds = { box = { sig = 'u', decl = 'int *%n', check = 'check_box(L, %i)' } },
      ops = {
        { name = 'count', doc = 'thing.count(x)', forms = { 'usagi' }, args = { { 'tensor', 'x' } },
          call = 'x->ndim', returns = 'integer', grad = 'a count', dtypes = 'any' },
        { name = 'peek', class = 'my.Box', doc = 'box:peek()', forms = { 'method' },
          args = { { 'box', 'b' } }, call = '*b', returns = 'number', grad = 'a number',
          dtypes = 'any' },
      } }]]
    assert.is_true(ok, c)
    assert.truthy(c:find('int usg_thing_ops_open(lua_State *L, int module)', 1, true), c)
    assert.truthy(c:find('luaL_getmetatable(L, "my.Box")', 1, true), c)
    assert.truthy(c:find('int *b = check_box(L, 1);', 1, true), c)
    assert.truthy(c:find('lua_pushinteger(L, (lua_Integer)(x->ndim));', 1, true), c)
    assert.falsy(c:find('luaopen_usagi_thing', 1, true), c)
  end)

  it('gen.lua refuses a method of a class in a plugin whose entry point it writes', function()
    local ok, err = gen [[return { name = 'thing', plugin = { version = '0.1.0' },
      ops = { { name = 'peek', class = 'my.Box', doc = 'box:peek()', forms = { 'method' },
        args = { { 'tensor', 'b' } }, call = 'usg_clone(&r, b)', grad = 'none',
        dtypes = 'any' } } }]]
    assert.is_false(ok)
    assert.truthy(err:find('opener = false', 1, true), err)
  end)
end)
