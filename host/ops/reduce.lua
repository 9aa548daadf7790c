-- host/ops/reduce.lua -- the op table of the reductions (kernels:
-- host/core/reduce.c; backwards: host/core/ad_reduce.c). host/ops/README.md
-- describes the fields; host/ops/gen.lua turns this into the Lua binding.
--
-- As in PyTorch, a reduction gives a tensor, 0-dim when every dim is
-- reduced away, so that `loss:backward()` works the same in training and in
-- evaluation; t:sum():item() is the Lua number. Indices are the one
-- exception: argmax/argmin without a dim, and the index max/min give
-- without a dim, are Lua integers (1-based, into the flat tensor). Dims
-- are 1-based and may be negative; keepdim is an optional boolean after
-- the dim.
local ops = {}
local function op(t) ops[#ops + 1] = t end

local t, dim, keepdim = { 'tensor', 't' }, { 'optdim', 'dim', of = 't' },
  { 'boolean', 'keepdim', default = 'false' }

local along = 'usagi.%s(t [, dim [, keepdim = false]]) -> %s over all elements (a 0-dim tensor) or\n'
  .. 'along dim; keepdim keeps the reduced dim with size 1.'
for _, r in ipairs {
  { 'sum', 'the sum', 'return function(acc, x) return acc + x end, 0' },
  { 'mean', 'the mean' },
  { 'prod', 'the product', 'return function(acc, x) return acc * x end, 1' },
} do
  op {
    name = r[1], doc = along:format(r[1], r[2]),
    args = { t, dim, keepdim },
    call = ('usg_ad_%s(&r, t, dim, keepdim)'):format(r[1]),
    grad = true,
    dtypes = r[1] == 'mean' and 'to_float' or 'any',
    test = { fold = r[3] },
  }
end

-- var and std take their options table last, after whichever of dim and
-- keepdim are given (t:var{correction = 0}, t:var(2, true, {correction = 0})).
-- PyTorch's `correction` rather than Torch7's boolean flag, whose meaning
-- (true = biased) is easy to get backwards.
for _, r in ipairs {
  { 'var', 'the variance (unbiased, n - 1)' },
  { 'std', 'the standard deviation (unbiased)' },
} do
  op {
    name = r[1],
    doc = along:format(r[1], r[2]) .. '\nOptions, last: {correction = 1} (0: the biased estimate).',
    args = { t, dim, keepdim, { name = 'opt', trailing = true,
      options = { { 'integer', 'correction', default = 1, c_type = 'int' } } } },
    call = ('usg_ad_%s(&r, t, dim, keepdim, correction)'):format(r[1]),
    grad = true,
    dtypes = 'to_float',
  }
end

op {
  name = 'logsumexp',
  doc = 'usagi.logsumexp(t, dim [, keepdim]) -> log sum exp along dim, computed stably\n'
    .. '(the max taken out first); dim is required, as in PyTorch.',
  args = { t, { 'dim', 'dim', of = 't' }, keepdim },
  call = 'usg_ad_logsumexp(&r, t, dim, keepdim)',
  grad = true,
  dtypes = 'to_float',
}

-- Given a second tensor, max and min are the elementwise maximum and
-- minimum, as torch.max(a, b).
for _, r in ipairs {
  { 'max', 'largest', 'USG_MAXIMUM', 'usg_ad_max' },
  { 'min', 'smallest', 'USG_MINIMUM', 'usg_ad_min' },
} do
  op {
    name = r[1],
    doc = ('usagi.%s(t) -> the %s value (a 0-dim tensor) and its 1-based flat index;\n'
      .. 't:%s(dim [, keepdim]) -> values and 1-based indices along dim; usagi.%s(a, b) is the\n'
      .. 'elementwise %s.'):format(r[1], r[2], r[1], r[1], r[1] == 'max' and 'maximum' or 'minimum'),
    overloads = {
      { args = { t, { 'tensor', 'other' } }, call = ('usg_ad_binary(&r, %s, t, other)'):format(r[3]) },
      { args = { t, dim, keepdim }, call = ('%s(&v, &ix, t, dim, keepdim, 1)'):format(r[4]),
        returns = 'values_indices' },
    },
    grad = true,
    dtypes = 'any',
  }
  op {
    name = 'arg' .. r[1],
    doc = ('usagi.arg%s(t [, dim [, keepdim]]) -> the 1-based index of the %s value (a Lua\n'
      .. 'integer over all elements, an i32 tensor along dim).'):format(r[1], r[2]),
    args = { t, dim, keepdim },
    call = ('%s(NULL, &ix, t, dim, keepdim, 1)'):format(r[4]),
    returns = 'index',
    grad = 'an index',
    dtypes = 'any',
  }
end

op {
  name = 'norm',
  doc = 'usagi.norm(t [, p = 2 [, dim [, keepdim]]]) -> the p-norm; p = math.huge or \'inf\' gives the\n'
    .. 'max norm, \'fro\' is 2.',
  args = { t, { 'norm_p', 'p', default = '2' }, dim, keepdim },
  call = 'usg_ad_norm(&r, t, p, dim, keepdim)',
  grad = true,
  dtypes = 'to_float',
  test = { domain = { 'away0' } },
}


-- ==== The recorded entry points (host/ops/gen_ad.lua) =====================
-- The backwards are in host/core/ad_reduce.c. An integer input is reduced
-- but not differentiated (usg_diff_in). The context (red_ctx) holds the dim
-- as the forward resolved it and the slots of what is saved: the input
-- (ix) and the result (iy), -1 for none. max and min are written by hand
-- there: they have two results.
local function reduction(name, saves, ix, iy, correction, p)
  return { ('usg_ad_%s(usg_tensor **out, usg_tensor *a, %sint dim, bool keepdim%s)')
      :format(name, p and 'double p, ' or '', correction and ', int correction' or ''),
    forward = ('usg_%s(out, a, %sdim, keepdim%s)'):format(name, p and 'p, ' or '',
      correction and ', correction' or ''),
    backward = name .. '_backward', inputs = 'usg_diff_in(a)', saves = saves,
    ctx = { 'rctx', ('red_ctx(dim, a, %d, %d, %s, %s)'):format(ix, iy,
      correction and 'correction' or '0', p and 'p' or '0') } }
end
local records = {
  reduction('sum', nil, -1, -1),
  reduction('mean', nil, -1, -1),
  reduction('prod', 'a', 0, -1),
  reduction('var', 'a', 0, -1, true),
  reduction('std', { 'a', '*out' }, 0, 1, true),
  reduction('logsumexp', { 'a', '*out' }, 0, 1),
  reduction('norm', { 'a', '*out' }, 0, 1, false, true),
}

return {
  name = 'reduce',
  opener = 'usg_lua_open_reduce_ops',
  about = 'The reductions (table: host/ops/reduce.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
  records = records,
}
