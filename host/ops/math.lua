-- host/ops/math.lua -- the op table of the elementwise ops and the matrix
-- products (kernels: host/core/elementwise.c and blas.c; their backwards:
-- host/core/ad_math.c). host/ops/README.md describes the fields;
-- host/ops/gen.lua turns this into the Lua binding.
--
-- Operators follow PyTorch: + - * / ^ are elementwise with broadcasting and
-- accept a number on either side; a:f_(...) works in place and returns a.
local ops = {}
local function op(t) ops[#ops + 1] = t end

-- The three overloads of a binary op: tensor with tensor, with a number on
-- the right, with a number on the left.
local function binary_overloads(enum)
  return {
    { args = { { 'tensor', 'a' }, { 'tensor', 'b' } }, call = ('usg_ad_binary(&r, %s, a, b)'):format(enum),
      inplace = ('usg_binary_(a, %s, b)'):format(enum) },
    { args = { { 'tensor', 'a' }, { 'number', 'b' } },
      call = ('usg_ad_binary_scalar(&r, %s, a, b, false)'):format(enum),
      inplace = ('usg_binary_scalar_(a, %s, b)'):format(enum) },
    { args = { { 'number', 'a' }, { 'tensor', 'b' } },
      call = ('usg_ad_binary_scalar(&r, %s, b, a, true)'):format(enum) },
  }
end

-- ==== Arithmetic ==========================================================
-- name, enum, what it computes, the scalar reference, the operator, the
-- inputs' domains for the tests (div: |b| away from 0; pow: a > 0).
for _, b in ipairs {
  { 'add', 'USG_ADD', 'a + b', 'a + b', '__add' },
  { 'sub', 'USG_SUB', 'a - b', 'a - b', '__sub' },
  { 'mul', 'USG_MUL', 'a * b (also the * operator)', 'a * b', '__mul' },
  { 'div', 'USG_DIV', 'a / b', 'a / b', '__div', { 'any', 'away0' } },
  { 'pow', 'USG_POW', 'a ^ b', 'a ^ b', '__pow', { 'positive', 'any' } },
  { 'maximum', 'USG_MAXIMUM', 'max(a, b)', 'math.max(a, b)' },
  { 'minimum', 'USG_MINIMUM', 'min(a, b)', 'math.min(a, b)' },
} do
  op {
    name = b[1],
    doc = ('usagi.%s(a, b) or a:%s(b) -> %s, elementwise with broadcasting; a or b may be a number.')
      :format(b[1], b[1], b[3]),
    forms = { 'usagi', 'method', b[5] },
    overloads = binary_overloads(b[2]),
    grad = true,
    dtypes = b[1] == 'div' and 'to_float' or 'any',
    test = { ref = 'return function(a, b) return ' .. b[4] .. ' end', domain = b[6] },
  }
end

-- ==== Comparisons =========================================================
for _, c in ipairs {
  { 'eq', 'USG_EQ', '==' }, { 'ne', 'USG_NE', '~=' }, { 'lt', 'USG_LT', '<' },
  { 'le', 'USG_LE', '<=' }, { 'gt', 'USG_GT', '>' }, { 'ge', 'USG_GE', '>=' },
} do
  op {
    name = c[1],
    doc = ('usagi.%s(a, b) or a:%s(b) -> an i32 tensor of 1 where a %s b, else 0 (broadcasting).')
      :format(c[1], c[1], c[3]),
    overloads = binary_overloads(c[2]),
    grad = 'an i32 result',
    dtypes = 'i32',
    test = { ref = ('return function(a, b) return (a %s b) and 1 or 0 end'):format(c[3]) },
  }
end

-- ==== Unary maths =========================================================
-- The ops an i32 tensor keeps its dtype through; the others give f32.
local KEEP_I32 = { neg = true, abs = true, relu = true, sign = true, floor = true, ceil = true,
  round = true, square = true }

-- name, enum, what, reference, the input's domain, and why there is no
-- gradient where there is none.
for _, u in ipairs {
  { 'neg', 'USG_NEG', '-x', '-x' },
  { 'abs', 'USG_ABS', '|x|', 'math.abs(x)', 'away0' },
  { 'exp', 'USG_EXP', 'e^x', 'math.exp(x)' },
  { 'log', 'USG_LOG', 'the natural log', 'math.log(x)', 'positive' },
  { 'sqrt', 'USG_SQRT', 'the square root', 'math.sqrt(x)', 'positive' },
  { 'tanh', 'USG_TANH', 'tanh x', '(math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)' },
  { 'sigmoid', 'USG_SIGMOID', 'the logistic 1 / (1 + e^-x)', '1 / (1 + math.exp(-x))' },
  { 'relu', 'USG_RELU', 'max(x, 0)', 'math.max(x, 0)', 'away0' },
  { 'sign', 'USG_SIGN', '-1, 0 or 1', 'x > 0 and 1 or x < 0 and -1 or 0', nil, 'piecewise constant' },
  { 'floor', 'USG_FLOOR', 'the largest integer <= x', 'math.floor(x)', nil, 'piecewise constant' },
  { 'ceil', 'USG_CEIL', 'the smallest integer >= x', 'math.ceil(x)', nil, 'piecewise constant' },
  { 'round', 'USG_ROUND', 'x rounded to the nearest integer, halves to even',
    'math.floor(x + 0.5)', 'away_half', 'piecewise constant' },
  { 'log1p', 'USG_LOG1P', 'log(1 + x), exact for small x', 'math.log(1 + x)', 'positive' },
  { 'sin', 'USG_SIN', 'sin x', 'math.sin(x)' },
  { 'cos', 'USG_COS', 'cos x', 'math.cos(x)' },
  { 'square', 'USG_SQUARE', 'x^2', 'x * x' },
  { 'reciprocal', 'USG_RECIPROCAL', '1 / x', '1 / x', 'away0' },
} do
  op {
    name = u[1],
    doc = ('usagi.%s(x) or x:%s() -> %s, elementwise%s.'):format(u[1], u[1], u[3],
      u[6] and '' or ' (differentiable)'),
    forms = { 'usagi', 'method', u[1] == 'neg' and '__unm' or nil },
    args = { { 'tensor', 'x' } },
    call = ('usg_ad_unary(&r, %s, x)'):format(u[2]),
    inplace = ('usg_unary_(x, %s)'):format(u[2]),
    grad = u[6] or true,
    dtypes = KEEP_I32[u[1]] and 'any' or 'to_float',
    test = { ref = 'return function(x) return ' .. u[4] .. ' end', domain = { u[5] } },
  }
end

-- ==== clamp, where, allclose, equal =======================================
op {
  name = 'clamp',
  doc = 'usagi.clamp(x, lo, hi) or x:clamp(lo, hi) -> x limited to [lo, hi] (nil: no bound).',
  args = { { 'tensor', 'x' }, { 'number', 'lo', default = 'NAN' }, { 'number', 'hi', default = 'NAN' } },
  call = 'usg_ad_clamp(&r, x, lo, hi)',
  inplace = 'usg_clamp_(x, lo, hi)',
  grad = true,
  dtypes = 'any',
  test = { numbers = { -0.5, 0.5 }, domain = { 'away_half' },
    ref = 'return function(x, lo, hi) return math.min(math.max(x, lo), hi) end' },
}
op {
  name = 'where',
  doc = 'usagi.where(cond, a, b) -> a where cond is nonzero, else b; a and b may be numbers.',
  forms = { 'usagi' },
  args = { { 'tensor', 'cond' }, { 'scalar', 'a' }, { 'scalar', 'b' } },
  call = 'usg_ad_where(&r, cond, a, b)',
  grad = true,
  dtypes = 'any',
  test = { domain = { 'mask' }, nograd = { 1 },
    ref = 'return function(c, a, b) return c ~= 0 and a or b end' },
}
op {
  name = 'allclose',
  doc = 'usagi.allclose(a, b [, rtol = 1e-5, atol = 1e-8]) -> true when |a - b| <= atol + rtol |b|\n'
    .. 'everywhere (shapes broadcast).',
  args = { { 'tensor', 'a' }, { 'tensor', 'b' }, { 'number', 'rtol', default = '1e-5' },
    { 'number', 'atol', default = '1e-8' } },
  call = 'usg_allclose(&ok, a, b, rtol, atol)',
  returns = 'boolean',
  grad = 'a boolean result',
  dtypes = 'any',
}
op {
  name = 'equal',
  doc = 'usagi.equal(a, b) -> true when a and b have the same shape and exactly the same values.',
  args = { { 'tensor', 'a' }, { 'tensor', 'b' } },
  call = '(ok = usg_same_shape(a, b)) ? usg_allclose(&ok, a, b, 0, 0) : USG_OK',
  returns = 'boolean',
  grad = 'a boolean result',
  dtypes = 'any',
}

-- ==== Matrix products =====================================================
op {
  name = 'mm',
  doc = 'usagi.mm(a, b) or a:mm(b) -> the matrix product of (n, k) and (k, m), through OpenBLAS sgemm/dgemm.',
  args = { { 'tensor', 'a' }, { 'tensor', 'b' } },
  call = 'usg_ad_mm(&r, a, b)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 3, 4 }, { 4, 2 } } },
}
op {
  name = 'bmm',
  doc = 'usagi.bmm(a, b) -> batched matrix products of (B, n, k) and (B, k, m).',
  args = { { 'tensor', 'a' }, { 'tensor', 'b' } },
  call = 'usg_ad_bmm(&r, a, b)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 2, 3, 4 }, { 2, 4, 2 } } },
}
op {
  name = 'matmul',
  doc = 'usagi.matmul(a, b) -> the product with NumPy\'s rules: vectors, matrices and broadcast\n'
    .. 'batch dims.',
  args = { { 'tensor', 'a' }, { 'tensor', 'b' } },
  call = 'usg_ad_matmul(&r, a, b)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 2, 3, 4 }, { 4, 2 } } },
}
op {
  name = 'addmm',
  doc = 'usagi.addmm(c, a, b [, {beta = 1, alpha = 1}]) -> beta c + alpha (a b).',
  forms = { 'usagi' },
  args = { { 'tensor', 'c' }, { 'tensor', 'a' }, { 'tensor', 'b' },
    { name = 'opt', options = { { 'number', 'beta', default = 1 }, { 'number', 'alpha', default = 1 } } } },
  call = 'usg_ad_addmm(&r, c, a, b, beta, alpha)',
  grad = true,
  dtypes = 'float',
  test = { shapes = { { 3, 2 }, { 3, 4 }, { 4, 2 } } },
}

-- ==== The recorded entry points (host/ops/gen_ad.lua) =====================
-- Each usg_ad_* the calls above name: the kernel, the backward in
-- host/core/ad_math.c, the node's inputs, what the backward reads again
-- (usg_node_saved in this order; NULL entries are not saved) and its
-- context. One entry point serves every binary op, and one every unary op:
-- the node is then the file's usg_op for that enum value, which names the op
-- in messages, and what is saved depends on the op.
local mask = function(bit, t) return ('(%s & %s) ? %s : NULL'):format('%s', bit, t) end
local function saves_by(f, list)
  local out = {}
  for i, m in ipairs(list) do out[i] = mask(m[1], m[2]):format(f) end
  return out
end
local records = {
  { 'usg_ad_binary(usg_tensor **out, usg_binop op, usg_tensor *a, usg_tensor *b)',
    forward = 'usg_binary(out, op, a, b)', node = 'binary_op(op)',
    when = 'binary_op(op) != NULL',   -- comparisons: an i32 result, no gradient
    inputs = { 'a', 'b' },
    saves = saves_by('binary_saves(op)', { { 'SAVE_A', 'a' }, { 'SAVE_B', 'b' }, { 'SAVE_OUT', '*out' } }) },
  { 'usg_ad_binary_scalar(usg_tensor **out, usg_binop op, usg_tensor *a, double s, bool scalar_first)',
    forward = 'usg_binary_scalar(out, op, a, s, scalar_first)', node = '&scalar_ops[op]',
    when = 'binary_op(op) != NULL',
    -- both saved for every op: a is alive anyway, and out only costs a header
    inputs = 'a', saves = { 'a', '*out' }, ctx = { 'scalar_ctx', '{op, s, scalar_first}' } },
  { 'usg_ad_unary(usg_tensor **out, usg_unop op, usg_tensor *a)',
    forward = 'usg_unary(out, op, a)', node = '&unary_ops[op]',
    when = 'unary_saves(op) >= 0',    -- sign, floor, ceil, round: no gradient
    inputs = 'a', saves = saves_by('(unsigned)unary_saves(op)', { { 'SAVE_A', 'a' }, { 'SAVE_OUT', '*out' } }),
    ctx = { 'usg_unop', 'op' } },
  { 'usg_ad_clamp(usg_tensor **out, usg_tensor *a, double lo, double hi)',
    forward = 'usg_clamp(out, a, lo, hi)', backward = 'clamp_backward',
    inputs = 'a', saves = 'a', ctx = { 'clamp_ctx', '{lo, hi}' } },
  -- cond is not an input of the node: it selects, it has no gradient
  { 'usg_ad_where(usg_tensor **out, usg_tensor *cond, usg_tensor *a, usg_tensor *b)',
    forward = 'usg_where(out, cond, a, b)', backward = 'where_backward',
    inputs = { 'a', 'b' }, saves = 'cond' },
  { 'usg_ad_mm(usg_tensor **out, usg_tensor *a, usg_tensor *b)',
    forward = 'usg_mm(out, a, b)', backward = 'mm_backward', inputs = { 'a', 'b' }, saves = { 'a', 'b' } },
  { 'usg_ad_bmm(usg_tensor **out, usg_tensor *a, usg_tensor *b)',
    forward = 'usg_bmm(out, a, b)', backward = 'bmm_backward', inputs = { 'a', 'b' }, saves = { 'a', 'b' } },
  { 'usg_ad_matmul(usg_tensor **out, usg_tensor *a, usg_tensor *b)',
    forward = 'usg_matmul(out, a, b)', backward = 'matmul_backward', inputs = { 'a', 'b' },
    saves = { 'a', 'b' } },
  { 'usg_ad_addmm(usg_tensor **out, usg_tensor *c, usg_tensor *a, usg_tensor *b, double beta, double alpha)',
    forward = 'usg_addmm(out, c, a, b, beta, alpha)', backward = 'addmm_backward',
    inputs = { 'c', 'a', 'b' }, saves = { 'a', 'b' }, ctx = { 'addmm_ctx', '{beta, alpha}' } },
}

return {
  name = 'math',
  opener = 'usg_lua_open_math_ops',
  about = 'The elementwise ops and matrix products (table: host/ops/math.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
  records = records,
}
