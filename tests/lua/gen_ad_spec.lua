-- gen_ad_spec.lua -- host/ops/gen_ad.lua, the generator of the recorded
-- entry points, on small tables: what it writes for a record and what it
-- refuses. ops_spec checks the generated entry points of the real tables
-- through their gradients; this checks the generator's own rules.

local h = dofile('tests/lua/helpers.lua')
local function gen_ad(source) return h.generate('gen_ad.lua', source, '.inc') end

describe('gen_ad.lua', function()
  it('writes the entry point and its node from a record', function()
    local ok, c = gen_ad [[return { name = 'x', records = {
      { 'usg_ad_scale(usg_tensor **out, usg_tensor *a, double k)', forward = 'usg_scale(out, a, k)',
        backward = 'scale_backward', inputs = 'a', saves = { 'a', '*out' }, ctx = { 'double', 'k' } },
      { 'usg_ad_same(usg_tensor **out, usg_tensor *t)', forward = 'usg_same(out, t)', name = 'my.same',
        backward = 'same_backward', inputs = 't', when = '*out != t' } } }]]
    assert.is_true(ok, c)
    assert.truthy(c:find('static const usg_op scale_node = {"scale", scale_backward, NULL};', 1, true), c)
    assert.truthy(c:find('usg_status status = usg_scale(out, a, k);', 1, true), c)
    assert.truthy(c:find('if (status != USG_OK || !usg_grad_needed(1, in)) return status;', 1, true), c)
    assert.truthy(c:find('usg_tensor *save[2] = {a, *out};', 1, true), c)
    assert.truthy(c:find('double ctx = k;', 1, true), c)
    assert.truthy(c:find('return usg_record(&scale_node, 1, in, 1, out, 2, save, &ctx, sizeof ctx);', 1, true), c)
    -- a node's name with a dot makes a C name; `when` joins the condition
    assert.truthy(c:find('static const usg_op my_same_node = {"my.same", same_backward, NULL};', 1, true), c)
    assert.truthy(c:find('|| !(*out != t)) return status;', 1, true), c)
    assert.truthy(c:find('return usg_record(&my_same_node, 1, in, 1, out, 0, NULL, NULL, 0);', 1, true), c)
  end)

  it('refuses a record it cannot write, naming it', function()
    for _, case in ipairs {
      { "{ 'usg_ad_x(usg_tensor *a)', forward = 'f(a)', backward = 'b', inputs = 'a' }",
        'usg_ad_x: the first parameter must be usg_tensor **out' },
      { "{ 'usg_ad_x(usg_tensor **out, usg_tensor *in)', forward = 'f(out, in)', backward = 'b', inputs = 'in' }",
        'a parameter named in would be hidden' },
      { "{ 'usg_ad_x(usg_tensor **out, usg_tensor *a)', forward = 'f(out, a)', inputs = 'a' }",
        'usg_ad_x: neither backward nor node' },
      { "{ 'usg_ad_x(usg_tensor **out, usg_tensor *a)', backward = 'b', inputs = 'a' }",
        'usg_ad_x: no forward' },
      { "{ 'usg_ad_x(usg_tensor **out, usg_tensor *a)', forward = 'f(out, a)', backward = 'b' }",
        'usg_ad_x: no inputs' },
      { "{ 'usg_ad_x(usg_tensor **out, usg_tensor *a)', forward = 'f(out, a)', backward = 'b', inputs = 'a', ctx = { 'int' } }",
        'usg_ad_x: ctx is {C type, value}' },
    } do
      local ok, err = gen_ad('return { name = "x", records = { ' .. case[1] .. ' } }')
      assert.is_false(ok, case[2])
      assert.truthy(err:find(case[2], 1, true), err)
    end
  end)
end)
