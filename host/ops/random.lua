-- host/ops/random.lua -- the op table of the random tensors, every draw
-- from the run's one generator (usg_lua_rng, in host/lua/random_lua.c,
-- which keeps its state). Kernels: host/core/random.c; the backward of
-- dropout: host/core/ad_nn.c. host/ops/README.md describes the fields.
--
-- A shape is numbers, one table or a usagi.Size; options are a trailing
-- table (`randn(4, {dtype = 'f64', std = 0.1})`), an unknown key an error.
-- Indices (multinomial, randperm) are 1-based. There is no scalar
-- reference for a draw: test.random tells tests/lua/ops_spec.lua to check
-- that a seed gives the same draws, the forms agree, and the draws have
-- the dtype, shape and range they should.
local ops = {}
local function op(t) ops[#ops + 1] = t end
local t = { 'tensor', 't' }
local shape = { 'shape', 'shape' }
local function options(...)
  return { name = 'opt', trailing = true, options = { { 'dtype', 'dtype', default = 'USG_F32' }, ... } }
end

op {
  name = 'rand',
  doc = 'usagi.rand(d1, ... [, {dtype = \'f32\', lo = 0, hi = 1}]) -> uniform draws in [lo, hi).',
  forms = { 'usagi' },
  args = { shape, options({ 'number', 'lo', default = 0 }, { 'number', 'hi', default = 1 }) },
  call = 'usg_rand(&r, usg_lua_rng(L), dtype, shape_ndim, shape, lo, hi)',
  grad = 'a draw: nothing to differentiate',
  dtypes = 'float',
  test = { shape = { 40, 50 }, random = { lo = 0, hi = 1, mean = 0.5, var = 1 / 12 } },
}
op {
  name = 'randn',
  doc = 'usagi.randn(d1, ... [, {dtype = \'f32\', mean = 0, std = 1}]) -> normal draws.',
  forms = { 'usagi' },
  args = { shape, options({ 'number', 'mean', default = 0 }, { 'number', 'std', default = 1 }) },
  call = 'usg_randn(&r, usg_lua_rng(L), dtype, shape_ndim, shape, mean, std)',
  grad = 'a draw: nothing to differentiate',
  dtypes = 'float',
  test = { shape = { 40, 50 }, random = { mean = 0, var = 1 } },
}

-- The fills draw into any float tensor, a parameter too (nn.init runs them
-- under no_grad; t:uniform_ outside it stays allowed, as it always was).
op {
  name = 'uniform_',
  doc = 't:uniform_([lo = 0 [, hi = 1]]) -> t, filled with uniform draws in [lo, hi) in place.',
  args = { t, { 'number', 'lo', default = '0' }, { 'number', 'hi', default = '1' } },
  call = 'usg_uniform_(t, usg_lua_rng(L), lo, hi)',
  returns = 'self',
  check_inplace = false,
  grad = 'a draw in place',
  dtypes = 'float',
  test = { shapes = { { 40, 50 } }, numbers = { -1, 3 }, random = { lo = -1, hi = 3, mean = 1, var = 16 / 12 } },
}
op {
  name = 'normal_',
  doc = 't:normal_([mean = 0 [, std = 1]]) -> t, filled with normal draws in place.',
  args = { t, { 'number', 'mean', default = '0' }, { 'number', 'std', default = '1' } },
  call = 'usg_normal_(t, usg_lua_rng(L), mean, std)',
  returns = 'self',
  check_inplace = false,
  grad = 'a draw in place',
  dtypes = 'float',
  test = { shapes = { { 40, 50 } }, numbers = { 2, 0.5 }, random = { mean = 2, var = 0.25 } },
}
op {
  name = 'bernoulli',
  doc = 'usagi.bernoulli(p_tensor) or bernoulli(p, d1, ... [, {dtype}]) -> 0/1 draws with\n'
    .. 'probability p.',
  overloads = {
    -- probabilities as a tensor: f32 or f64 only
    { args = { { 'tensor', 'p' } }, call = 'usg_bernoulli(&r, usg_lua_rng(L), p)', dtypes = 'float' },
    { args = { { 'number', 'p' }, shape, options() },
      call = 'usg_bernoulli_p(&r, usg_lua_rng(L), dtype, shape_ndim, shape, p)' },
  },
  grad = 'a draw: nothing to differentiate',
  dtypes = 'any',   -- 0/1 draws in any dtype asked for
  test = { domain = { 'unit' }, numbers = { 0.3 }, random = { lo = 0, hi = 1 } },
}
op {
  name = 'multinomial',
  doc = 'usagi.multinomial(weights, n [, replacement = false]) -> 1-based i32 indices drawn\n'
    .. 'in proportion to the weights: (n) from (C), (R, n) from (R, C).',
  args = { { 'tensor', 'w' }, { 'integer', 'n' }, { 'boolean', 'replacement', default = 'false' } },
  call = 'usg_multinomial(&r, usg_lua_rng(L), w, (int64_t)n, replacement, 1)',
  grad = 'a draw of indices',
  dtypes = 'i32',
  test = { domain = { 'positive' }, numbers = { 3 }, random = { lo = 1, hi = 4, integer = true } },
}
op {
  name = 'randperm',
  doc = 'usagi.randperm(n) -> a random permutation of 1..n (i32).',
  forms = { 'usagi' },
  args = { { 'integer', 'n' } },
  call = 'usg_randperm(&r, usg_lua_rng(L), (int64_t)n, 1)',
  grad = 'a draw of indices',
  dtypes = 'i32',
  test = { numbers = { 6 }, random = { lo = 1, hi = 6, integer = true } },
}
-- The mask is the one the node keeps for its backward; usg_lua_dropout
-- (random_lua.c) says why and how evaluation differs.
op {
  name = 'dropout',
  doc = 'usagi.dropout(x, p [, training = true]) -> x with each element zeroed with\n'
    .. 'probability p and the rest scaled by 1/(1-p) (inverted dropout), and the 0/1 mask;\n'
    .. 'not training: a copy of x and nil.',
  args = { { 'tensor', 'x' }, { 'number', 'p' }, { 'boolean', 'training', default = 'true' } },
  call = 'usg_lua_dropout(&r1, &r2, usg_lua_rng(L), x, p, training)',
  returns = { 'tensor', 'tensor?' },
  grad = true,
  dtypes = 'float',
  test = { numbers = { 0.25 }, random = {} },
}

return {
  name = 'random',
  opener = 'usg_lua_open_random_ops',
  about = 'The random tensors (table: host/ops/random.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
}
