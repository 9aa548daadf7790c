-- host/ops/index.lua -- the op table of the ops that pick or place entries
-- by index (embedding, one_hot, gather, index_select, scatter_add) and of
-- those that join tensors or cut them apart (cat, stack, split, chunk).
-- Kernels: host/core/index.c; backwards: host/core/ad_index.c.
-- host/ops/README.md describes the fields; host/ops/gen.lua turns this into
-- the Lua binding, host/ops/gen_ad.lua the records into the recorded entry
-- points.
--
-- Ids and indices are 1-based here (base = 1 to the core, no copy), dims
-- too.
local ops = {}
local function op(t) ops[#ops + 1] = t end

op {
  name = 'embedding',
  doc = 'usagi.embedding(weight, ids) -> the rows of weight (V, D) at the 1-based i32 ids.',
  forms = { 'usagi' },
  args = { { 'tensor', 'weight' }, { 'tensor', 'ids' } },
  call = 'usg_ad_embedding(&r, weight, ids, 1)',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 5, 3 } }, index = { at = 2, max = 5, shape = { 4 } } },
}
op {
  name = 'one_hot',
  doc = 'usagi.one_hot(ids, classes) -> f32 rows with a 1 at each 1-based id.',
  args = { { 'tensor', 'ids' }, { 'integer', 'classes' } },
  call = 'usg_one_hot(&r, ids, classes, 1)',
  grad = 'a constant of the ids',
  dtypes = 'f32',
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
    dtypes = 'any',
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
  dtypes = 'any',
  test = { shapes = { { 3, 4 }, { 3, 4 } }, index = { at = 3, max = 4, shape = { 3, 4 } } },
}
op {
  name = 'scatter_add',
  doc = 'usagi.scatter_add(dst, dim, index, src) -> a copy of dst with src added at index\n'
    .. 'along dim; t:scatter_add_(dim, index, src) does it in place.',
  args = { { 'tensor', 'dst' }, { 'dim', 'dim', of = 'dst' }, { 'tensor', 'index' }, { 'tensor', 'src' } },
  call = 'usg_scatter_add(&r, dst, dim, index, src, 1)',
  grad = 'not recorded (PyTorch records it; usagi\'s models do not need it)',
  dtypes = 'any',
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
  dtypes = 'any',
  test = { shapes = { { 3, 4 }, { 2, 4 } }, dims = { 1 } },
}
op {
  name = 'stack',
  doc = 'usagi.stack({t1, t2, ...} [, dim = 1]) -> the tensors stacked along a new dim.',
  forms = { 'usagi' },
  args = { { 'tensors', 'ts' }, { 'newdim', 'dim', of = 'ts', default = '0' } },
  call = 'usg_ad_stack(&r, ts_n, ts, dim)',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 4 }, { 3, 4 } } },
}
op {
  name = 'split',
  doc = 'usagi.split(x, size [, dim = 1]) -> a list of views of `size` entries along dim.',
  args = { { 'tensor', 'x' }, { 'integer', 'size' }, { 'dim', 'dim', of = 'x', default = '0' } },
  call = 'usg_ad_split(&list->ts, &list->n, x, size, dim)',
  returns = 'list',
  grad = true,
  dtypes = 'any',
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
  dtypes = 'any',
  test = { numbers = { 2 } },
}

-- ==== The recorded entry points (host/ops/gen_ad.lua) =====================
-- The index is saved, not an input: it selects, it has no gradient. The
-- context holds the dim, resolved, and the indices' base.
local records = {
  -- out[k] = W[ids_k - base]: an index_select of dim 0 with the ids flattened
  { 'usg_ad_embedding(usg_tensor **out, usg_tensor *weight, usg_tensor *ids, int base)',
    forward = 'usg_embedding(out, weight, ids, base)', backward = 'index_add_backward',
    inputs = 'weight', saves = 'ids', ctx = { 'index_ctx', '{0, base}' } },
  { 'usg_ad_index_select(usg_tensor **out, usg_tensor *x, int dim, usg_tensor *index, int base)',
    forward = 'usg_index_select(out, x, dim, index, base)', backward = 'index_add_backward',
    inputs = 'x', saves = 'index', ctx = { 'index_ctx', '{dim < 0 ? dim + x->ndim : dim, base}' } },
  { 'usg_ad_gather(usg_tensor **out, usg_tensor *x, int dim, usg_tensor *index, int base)',
    forward = 'usg_gather(out, x, dim, index, base)', backward = 'gather_backward',
    inputs = 'x', saves = 'index', ctx = { 'index_ctx', '{dim < 0 ? dim + x->ndim : dim, base}' } },
  -- each sequence's first lengths[b] steps reversed (birnn.reverse); the
  -- backward reverses g the same way
  { 'usg_ad_reverse_padded(usg_tensor **out, usg_tensor *x, usg_tensor *lengths, const char *fn)',
    forward = 'usg_reverse_padded(out, x, lengths, fn)', backward = 'reverse_backward',
    inputs = 'x', saves = 'lengths', ctx = { 'reverse_ctx', '{lengths != NULL}' } },
}

return {
  name = 'index',
  opener = 'usg_lua_open_index_ops',
  about = 'The ops that pick or place entries by index (table: host/ops/index.lua).',
  includes = { 'limits.h', 'binding.h', 'usagi/autograd.h' },
  ops = ops,
  records = records,
}
