-- host/ops/view.lua -- the op table of the views and copies of one tensor
-- (kernels: host/core/tensor.c; backwards: host/core/ad_view.c).
-- host/ops/README.md describes the fields; host/ops/gen.lua turns this into
-- the Lua binding. Dims and indices are 1-based (negative from the end).
-- view, reshape, expand and permute take a shape or dims as numbers, a
-- table or a Size (the `shape` and `dims` kinds).
local ops = {}
local function op(t) ops[#ops + 1] = t end
local t = { 'tensor', 't' }

-- t:transpose(d1, d2) and t:t() are two C functions, not one under two
-- names: Lua names a C function in argument errors by the first field of a
-- loaded module that holds it, so one function would report transpose's
-- bad dims as 'usagi.t'.
op {
  name = 'transpose',
  doc = 't:transpose(d1, d2) -> a view with dims d1 and d2 swapped.',
  args = { t, { 'dim', 'd0', of = 't', default = '0' }, { 'dim', 'd1', of = 't', default = '1' } },
  pre = [[
if (lua_isnoneornil(L, 2) && t->ndim != 2)
    return luaL_error(L, "transpose: expects a 2-D tensor, got %d-D (use transpose(d1, d2))", t->ndim);]],
  call = 'usg_ad_transpose(&r, t, d0, d1)',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 4, 2 } }, dims = { 1, 3 } },
}
op {
  name = 't',
  doc = 't:t() -> the transpose of a 2-D tensor (a view).',
  args = { t },
  pre = [[
if (t->ndim != 2)
    return luaL_error(L, "t: expects a 2-D tensor, got %d-D (use transpose(d1, d2))", t->ndim);]],
  call = 'usg_ad_transpose(&r, t, 0, 1)',
  grad = true,
  dtypes = 'any',
}
op {
  name = 'narrow',
  doc = 't:narrow(dim, start, length) -> a view of length entries of dim from start (1-based).',
  args = { t, { 'dim', 'dim', of = 't' }, { 'integer', 'start' }, { 'integer', 'len' } },
  -- checked here so that start - 1 and start + len cannot overflow
  pre = [[
if (start < 1 || len < 0 || len > t->shape[dim] || start - 1 > t->shape[dim] - len)
    return luaL_error(L, "narrow: start %I, length %I is outside dim %d of size %I",
                      start, len, dim + 1, (lua_Integer)t->shape[dim]);]],
  call = 'usg_ad_narrow(&r, t, dim, start - 1, len)',
  grad = true,
  dtypes = 'any',
  test = { numbers = { 2, 2 } },
}
op {
  name = 'select',
  doc = 't:select(dim, i) -> a view at index i of dim, that dim removed (t[i] for dim 1).',
  args = { t, { 'dim', 'dim', of = 't' }, { 'integer', 'i' } },
  pre = 'if (i < 0) i += t->shape[dim] + 1;',
  call = 'usg_ad_select(&r, t, dim, i - 1)',
  grad = true,
  dtypes = 'any',
  test = { numbers = { -2 } },
}
op {
  name = 'unsqueeze',
  doc = 't:unsqueeze(d) -> a view with a new dim of size 1 at d.',
  args = { t, { 'newdim', 'dim', of = 't' } },
  call = 'usg_ad_unsqueeze(&r, t, dim)',
  grad = true,
  dtypes = 'any',
}
op {
  name = 'squeeze',
  doc = 't:squeeze([d]) -> a view without dims of size 1 (or only d).',
  args = { t, { 'optdim', 'dim', of = 't' } },
  call = 'usg_ad_squeeze(&r, t, dim)',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 1, 4 } } },
}
op {
  name = 'contiguous',
  doc = 't:contiguous() -> t when contiguous, else a contiguous copy.',
  args = { t },
  call = 'usg_ad_contiguous(&r, t)',
  grad = true,
  dtypes = 'any',
}
op {
  name = 'clone',
  doc = 't:clone() -> a copy with its own memory (recorded for autograd).',
  args = { t },
  call = 'usg_ad_clone(&r, t)',
  grad = true,
  dtypes = 'any',
}

-- A view's shape may hold one -1 (inferred), and its numel must fit in
-- int64: a product that wrapped could pass a huge shape as a small one.
op {
  name = 'view',
  doc = 't:view(d1, ...) -> the same memory with a new shape (one size may be -1, inferred).',
  args = { t, { 'shape', 'shape', neg = true, view = true } },
  call = 'usg_ad_view(&r, t, shape_ndim, shape)',
  grad = true,
  dtypes = 'any',
  test = { shape = { 2, -1, 3 } },
}
op {
  name = 'reshape',
  doc = 't:reshape(d1, ...) -> a view when the layout allows, else a contiguous copy.',
  args = { t, { 'shape', 'shape', neg = true, view = true } },
  call = 'usg_ad_reshape(&r, t, shape_ndim, shape)',
  grad = true,
  dtypes = 'any',
  test = { shape = { 4, -1 } },
}
op {
  name = 'permute',
  doc = 't:permute(d1, d2, ...) -> a view with the dims in that order.',
  args = { t, { 'dims', 'dims', of = 't' } },
  call = 'usg_ad_permute(&r, t, dims)',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 4, 2 } }, perm = { 3, 1, 2 } },
}
op {
  name = 'expand',
  doc = 't:expand(d1, ...) or t:expand(other) -> a view broadcasting size-1 dims to the sizes\n'
    .. '(or to other\'s shape), without copying.',
  overloads = {
    { args = { t, { 'tensor', 'other' } }, call = 'usg_ad_expand(&r, t, other->ndim, other->shape)' },
    { args = { t, { 'shape', 'shape', view = true } }, call = 'usg_ad_expand(&r, t, shape_ndim, shape)' },
  },
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 1 }, { 2, 3, 4 } }, shape = { 2, 3, 4 }, nograd = { 2 } },
}
op {
  name = 'expand_as',
  doc = 't:expand_as(other) -> t:expand to other\'s shape.',
  args = { t, { 'tensor', 'other' } },
  call = 'usg_ad_expand(&r, t, other->ndim, other->shape)',
  errors_as = 'expand_as',
  grad = true,
  dtypes = 'any',
  test = { shapes = { { 3, 1 }, { 2, 3, 4 } }, nograd = { 2 } },
}

-- As Torch7: a conversion to the dtype a tensor has gives the tensor itself.
-- The core's message names 'to'; t:int() reports as int.
local same = 'if (t->dtype == dt) { lua_settop(L, 1); return 1; }'
op {
  name = 'to',
  doc = 't:to(dtype) -> t converted to \'f32\', \'f64\' or \'i32\'.',
  args = { t, { 'dtype', 'dt', default = 'USG_F32' } },
  pre = same,
  call = 'usg_ad_to_dtype(&r, t, dt)',
  errors_as = 'to',
  grad = true,
  dtypes = 'any',
  -- to f32 by default: a step of 1e-6 would be lost in its rounding
  test = { eps = 1e-2 },
}
for _, c in ipairs {
  { 'float', 'USG_F32', 't:float() -> t as f32 (t itself when it is f32).' },
  { 'double', 'USG_F64', 't:double() -> t as f64.' },
  { 'int', 'USG_I32', 't:int() -> t as i32 (truncated toward zero).' },
} do
  op {
    name = c[1], doc = c[3],
    args = { t },
    pre = ('usg_dtype dt = %s;\n'):format(c[2]) .. same,
    call = 'usg_ad_to_dtype(&r, t, dt)',
    errors_as = c[1],
    grad = c[1] == 'int' and 'an i32 result' or true,
    dtypes = ({ float = 'f32', double = 'f64', int = 'i32' })[c[1]],
    test = c[1] == 'float' and { eps = 1e-2 } or nil,
  }
end


-- ==== The recorded entry points (host/ops/gen_ad.lua) =====================
-- A view or copy has one input and saves nothing; its backward
-- (host/core/ad_view.c) moves g back to the input's geometry, told how by
-- the context. contiguous and to_dtype hand back the input itself when
-- there is nothing to do, and then record nothing: the result IS the input.
local function view_record(proto, forward, backward, extra)
  local r = { proto, forward = forward, backward = backward, inputs = 't' }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local records = {
  view_record('usg_ad_view(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)',
    'usg_view(out, t, ndim, shape)', 'reshape_backward'),
  view_record('usg_ad_reshape(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)',
    'usg_reshape(out, t, ndim, shape)', 'reshape_backward'),
  view_record('usg_ad_unsqueeze(usg_tensor **out, usg_tensor *t, int dim)',
    'usg_unsqueeze(out, t, dim)', 'reshape_backward'),
  view_record('usg_ad_squeeze(usg_tensor **out, usg_tensor *t, int dim)',
    'usg_squeeze(out, t, dim)', 'reshape_backward'),
  view_record('usg_ad_transpose(usg_tensor **out, usg_tensor *t, int d0, int d1)',
    'usg_transpose(out, t, d0, d1)', 'transpose_backward',
    { ctx = { 'transpose_ctx', '{d0, d1}' } }),
  view_record('usg_ad_permute(usg_tensor **out, usg_tensor *t, const int *perm)',
    'usg_permute(out, t, perm)', 'permute_backward',
    { ctx = { 'permute_ctx', 'inverse(t, perm)' } }),
  view_record('usg_ad_narrow(usg_tensor **out, usg_tensor *t, int dim, int64_t start, int64_t len)',
    'usg_narrow(out, t, dim, start, len)', 'slice_backward',
    { ctx = { 'slice_ctx', '{dim, start, len, false}' } }),
  view_record('usg_ad_select(usg_tensor **out, usg_tensor *t, int dim, int64_t i)',
    'usg_select(out, t, dim, i)', 'slice_backward',
    { ctx = { 'slice_ctx', '{dim, i, 1, true}' } }),
  view_record('usg_ad_expand(usg_tensor **out, usg_tensor *t, int ndim, const int64_t *shape)',
    'usg_expand(out, t, ndim, shape)', 'expand_backward'),
  view_record('usg_ad_contiguous(usg_tensor **out, usg_tensor *t)',
    'usg_contiguous(out, t)', 'copy_backward', { name = 'contiguous', when = '*out != t' }),
  view_record('usg_ad_clone(usg_tensor **out, usg_tensor *t)', 'usg_clone(out, t)', 'copy_backward'),
  -- to i32 records nothing: usg_record skips an integer result
  view_record('usg_ad_to_dtype(usg_tensor **out, usg_tensor *t, usg_dtype dt)',
    'usg_to_dtype(out, t, dt)', 'copy_backward', { when = '*out != t' }),
}

return {
  name = 'view',
  opener = 'usg_lua_open_view_ops',
  about = 'The views and copies of one tensor (table: host/ops/view.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
  records = records,
}
