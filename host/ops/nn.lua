-- host/ops/nn.lua -- the op table of the neural-net ops (kernels:
-- host/core/nn.c and index.c; backwards: host/core/ad_nn.c and ad_index.c).
-- host/ops/README.md describes the fields; host/ops/gen.lua turns this into
-- the Lua binding.
--
-- Ids, targets and indices are 1-based here (base = 1 to the core, no
-- copy), dims too. The losses take an options table
-- {reduction = 'mean' | 'sum' | 'none', ignore_index = id, mask = tensor}
-- and return 0-dim tensors, not numbers, since autograd attaches to them.
-- cat and stack take a list of tensors (the `tensors` kind), split and
-- chunk give one back (the `list` result).
local ops = {}
local function op(t) ops[#ops + 1] = t end

op {
  name = 'linear',
  doc = 'usagi.linear(x, w [, b]) -> x w^T + b, w (out, in) as nn.Linear holds it.',
  forms = { 'usagi' },
  args = { { 'tensor', 'x' }, { 'tensor', 'w' }, { 'tensor', 'b', default = 'NULL' } },
  call = 'usg_ad_linear(&r, x, w, b)',
  grad = true,
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
    test = { domain = l[3] },
  }
end

op {
  name = 'embedding',
  doc = 'usagi.embedding(weight, ids) -> the rows of weight (V, D) at the 1-based i32 ids.',
  forms = { 'usagi' },
  args = { { 'tensor', 'weight' }, { 'tensor', 'ids' } },
  call = 'usg_ad_embedding(&r, weight, ids, 1)',
  grad = true,
  test = { shapes = { { 5, 3 } }, index = { at = 2, max = 5, shape = { 4 } } },
}
op {
  name = 'one_hot',
  doc = 'usagi.one_hot(ids, classes) -> f32 rows with a 1 at each 1-based id.',
  args = { { 'tensor', 'ids' }, { 'integer', 'classes' } },
  call = 'usg_one_hot(&r, ids, classes, 1)',
  grad = 'a constant of the ids',
  test = { index = { at = 1, max = 3, shape = { 4 } }, numbers = { 3 } },
}
for _, g in ipairs {
  { 'gather', 'usagi.gather(t, dim, index) -> out[i][j] = t[i][index[i][j]] for dim 2 (as PyTorch).' },
  { 'index_select', 'usagi.index_select(t, dim, index) -> the entries of dim at the 1-based indices.' },
} do
  op {
    name = g[1], doc = g[2],
    args = { { 'tensor', 't' }, { 'dim', 'dim', of = 't' }, { 'tensor', 'index' } },
    call = ('usg_ad_%s(&r, t, dim, index, 1)'):format(g[1]),
    grad = true,
    test = { shapes = { { 3, 4 } }, index = { at = 3, max = 4, shape = g[1] == 'gather' and { 3, 4 } or { 3 } } },
  }
end
op {
  name = 'scatter_add_',
  doc = 't:scatter_add_(dim, index, src) -> t, src added at index along dim, in place.',
  args = { { 'tensor', 'dst' }, { 'dim', 'dim', of = 'dst' }, { 'tensor', 'index' }, { 'tensor', 'src' } },
  call = 'usg_scatter_add_(dst, dim, index, src, 1)',
  returns = 'self',
  grad = 'in place',
  test = { shapes = { { 3, 4 }, { 3, 4 } }, index = { at = 3, max = 4, shape = { 3, 4 } } },
}
op {
  name = 'scatter_add',
  doc = 'usagi.scatter_add(dst, dim, index, src) -> a copy of dst with src added at index\n'
    .. 'along dim; t:scatter_add_(dim, index, src) does it in place.',
  args = { { 'tensor', 'dst' }, { 'dim', 'dim', of = 'dst' }, { 'tensor', 'index' }, { 'tensor', 'src' } },
  call = 'usg_scatter_add(&r, dst, dim, index, src, 1)',
  grad = 'not recorded (PyTorch records it; usagi\'s models do not need it)',
  test = { shapes = { { 3, 4 }, { 3, 4 } }, index = { at = 3, max = 4, shape = { 3, 4 } } },
}

-- ==== Lists of tensors ======================================================
-- cat and stack take a list of tensors (a table, or the tensors themselves
-- as Torch7's torch.cat(a, b)); split and chunk give one back.
op {
  name = 'cat',
  doc = 'usagi.cat({t1, t2, ...} [, dim = 1]) -> the tensors joined along dim.',
  forms = { 'usagi' },
  args = { { 'tensors', 'ts' }, { 'dim', 'dim', of = 'ts', default = '0' } },
  call = 'usg_ad_cat(&r, ts_n, ts, dim)',
  grad = true,
  test = { shapes = { { 3, 4 }, { 2, 4 } }, dims = { 1 } },
}
op {
  name = 'stack',
  doc = 'usagi.stack({t1, t2, ...} [, dim = 1]) -> the tensors stacked along a new dim.',
  forms = { 'usagi' },
  args = { { 'tensors', 'ts' }, { 'newdim', 'dim', of = 'ts', default = '0' } },
  call = 'usg_ad_stack(&r, ts_n, ts, dim)',
  grad = true,
  test = { shapes = { { 3, 4 }, { 3, 4 } } },
}
op {
  name = 'split',
  doc = 'usagi.split(x, size [, dim = 1]) -> a list of views of `size` entries along dim.',
  args = { { 'tensor', 'x' }, { 'integer', 'size' }, { 'dim', 'dim', of = 'x', default = '0' } },
  call = 'usg_ad_split(&list->ts, &list->n, x, size, dim)',
  returns = 'list',
  grad = true,
  test = { numbers = { 2 } },
}
op {
  name = 'chunk',
  doc = 'usagi.chunk(x, n [, dim = 1]) -> a list of at most n nearly equal views along dim.',
  args = { { 'tensor', 'x' }, { 'integer', 'chunks' }, { 'dim', 'dim', of = 'x', default = '0' } },
  pre = 'luaL_argcheck(L, chunks >= INT_MIN && chunks <= INT_MAX, 2, "chunks out of range");',
  call = 'usg_ad_chunk(&list->ts, &list->n, x, (int)chunks, dim)',
  returns = 'list',
  grad = true,
  test = { numbers = { 2 } },
}

return {
  name = 'nn',
  opener = 'usg_lua_open_nn_ops',
  about = 'The neural-net ops (table: host/ops/nn.lua).',
  includes = { 'limits.h', 'binding.h', 'usagi/autograd.h' },
  ops = ops,
}
