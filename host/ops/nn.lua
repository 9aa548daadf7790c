-- host/ops/nn.lua -- the op table of the neural-net ops: linear, softmax,
-- the losses (kernels: host/core/nn.c; backwards: host/core/ad_nn.c). The
-- ops that pick entries by index are in index.lua.
-- host/ops/README.md describes the fields; host/ops/gen.lua turns this into
-- the Lua binding.
--
-- Targets are 1-based here (base = 1 to the core, no copy), dims too. The
-- losses take an options table
-- {reduction = 'mean' | 'sum' | 'none', ignore_index = id, mask = tensor}
-- and return 0-dim tensors, not numbers, since autograd attaches to them.
local ops = {}
local function op(t) ops[#ops + 1] = t end

op {
  name = 'linear',
  doc = 'usagi.linear(x, w [, b]) -> x w^T + b, w (out, in) as nn.Linear holds it.',
  forms = { 'usagi' },
  args = { { 'tensor', 'x' }, { 'tensor', 'w' }, { 'tensor', 'b', default = 'NULL' } },
  call = 'usg_ad_linear(&r, x, w, b)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 3, 4 }, { 5, 4 }, { 5 } } },
}

-- The dim defaults to the last, as Torch7's nn.SoftMax.
for _, s in ipairs {
  { 'softmax', 'exp(x) / sum exp(x) along dim, computed stably' },
  { 'log_softmax', 'x - logsumexp(x) along dim' },
} do
  op {
    name = s[1],
    doc = ('usagi.%s(x [, dim = -1]) -> %s.'):format(s[1], s[2]),
    args = { { 'tensor', 'x' }, { 'lastdim', 'dim', of = 'x' } },
    call = ('usg_ad_%s(&r, x, dim)'):format(s[1]),
    grad = true,
    dtypes = 'float',
  }
end

local class_options = { name = 'opt', options = {
  { 'choice', 'reduction', choices = { 'mean', 'sum', 'none' }, c_type = 'usg_reduction' },
  { 'integer', 'ignore_index', default = 'USG_NO_IGNORE' }, { 'tensor', 'mask' } } }
local point_options = { name = 'opt', options = {
  { 'choice', 'reduction', choices = { 'mean', 'sum', 'none' }, c_type = 'usg_reduction' } } }

op {
  name = 'cross_entropy',
  doc = 'usagi.cross_entropy(logits, target [, {ignore_index, mask, reduction = \'mean\'}]) ->\n'
    .. '-log softmax(logits)[target], logits (N, C) and 1-based i32 targets (N); reduction\n'
    .. '\'mean\', \'sum\' or \'none\'.',
  forms = { 'usagi' },
  args = { { 'tensor', 'logits' }, { 'tensor', 'target' }, class_options },
  call = 'usg_ad_cross_entropy(&r, logits, target, mask, ignore_index, reduction, 1)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 3, 4 } }, index = { at = 2, max = 4, shape = { 3 } } },
}
op {
  name = 'nll_loss',
  doc = 'usagi.nll_loss(logp, target [, {ignore_index, mask, reduction}]) -> -logp[target]\n'
    .. '(logp from log_softmax).',
  forms = { 'usagi' },
  args = { { 'tensor', 'logp' }, { 'tensor', 'target' }, class_options },
  call = 'usg_ad_nll_loss(&r, logp, target, mask, ignore_index, reduction, 1)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 3, 4 } }, index = { at = 2, max = 4, shape = { 3 } } },
}
for _, l in ipairs {
  { 'mse_loss', 'usagi.mse_loss(x, y [, {reduction = \'mean\'}]) -> the mean squared error.' },
  { 'bce_loss', 'usagi.bce_loss(p, y [, {reduction}]) -> -(y log p + (1 - y) log(1 - p)), p in (0, 1).',
    { 'unit', 'unit' } },
  { 'bce_with_logits', 'usagi.bce_with_logits(z, y [, {reduction}]) -> bce_loss(sigmoid(z), y), computed stably.',
    { nil, 'unit' } },
} do
  op {
    name = l[1], doc = l[2],
    forms = { 'usagi' },
    args = { { 'tensor', 'a' }, { 'tensor', 'b' }, point_options },
    call = ('usg_ad_%s(&r, a, b, reduction)'):format(l[1]),
    grad = true,
    dtypes = 'float',
    test = { domain = l[3] },
  }
end


-- ==== The recorded entry points (host/ops/gen_ad.lua) =====================
-- The backwards are in host/core/ad_nn.c. cross_entropy and dropout are
-- written by hand there: their forwards make what the node keeps only when
-- a node will be made.
local function point_loss(name, grad, f32)
  return { ('usg_ad_%s(usg_tensor **out, usg_tensor *a, usg_tensor *b, usg_reduction red)'):format(name),
    forward = ('usg_%s(out, a, b, red)'):format(name), backward = 'point_backward',
    -- both sides may be differentiated (a target that requires grad gets
    -- one, as in PyTorch), unless a side is integer
    inputs = { 'usg_diff_in(a)', 'usg_diff_in(b)' }, saves = { 'a', 'b' },
    ctx = { 'point_ctx', ('{red, %s, %s}'):format(grad, f32 or 'NULL') } }
end
local records = {
  { 'usg_ad_linear(usg_tensor **out, usg_tensor *x, usg_tensor *w, usg_tensor *b)',
    forward = 'usg_linear(out, x, w, b)', backward = 'linear_backward',
    inputs = { 'x', 'w', 'b' }, saves = { 'x', 'w' } },
  -- both save their output; the dim goes to the backward as the user gave
  -- it (usg_sum resolves it as softmax did, 0-dim tensors included)
  { 'usg_ad_softmax(usg_tensor **out, usg_tensor *x, int dim)',
    forward = 'usg_softmax(out, x, dim)', backward = 'softmax_backward',
    inputs = 'x', saves = '*out', ctx = { 'int', 'dim' } },
  { 'usg_ad_log_softmax(usg_tensor **out, usg_tensor *x, int dim)',
    forward = 'usg_log_softmax(out, x, dim)', backward = 'log_softmax_backward',
    inputs = 'x', saves = '*out', ctx = { 'int', 'dim' } },
  -- nll only needs the targets (the gradient does not depend on logp's
  -- values), but saving logp costs an alias and keeps class_backward one
  -- path with cross_entropy's; a NULL mask is not saved
  { 'usg_ad_nll_loss(usg_tensor **out, usg_tensor *logp, usg_tensor *target, usg_tensor *mask, '
      .. 'int32_t ignore_index, usg_reduction red, int base)',
    forward = 'usg_nll_loss(out, logp, target, mask, ignore_index, red, base)',
    backward = 'class_backward', inputs = 'logp', saves = { 'logp', 'target', 'mask' },
    ctx = { 'class_ctx', '{ignore_index, red, base, mask != NULL, false, false}' } },
  point_loss('mse_loss', 'mse_grad'),
  point_loss('bce_loss', 'bce_grad'),
  point_loss('bce_with_logits', 'bcel_grad', 'usg_bcel_grad_f32'),
}

return {
  name = 'nn',
  opener = 'usg_lua_open_nn_ops',
  about = 'The neural-net ops (table: host/ops/nn.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
  records = records,
}
