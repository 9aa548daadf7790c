-- host/ops/create.lua -- the op table of the tensors made from nothing but
-- a shape (zeros, ones, full, arange, linspace, eye, zeros_like, ones_like)
-- and of the writes that fill a tensor (copy_, fill_, zero_). Kernels:
-- host/core/tensor.c. host/ops/README.md describes the fields; gen.lua
-- turns this into the Lua binding. A shape is numbers, one table or a
-- usagi.Size; a dtype is 'f32', 'f64', 'i32' or {dtype = ...}.
local ops = {}
local function op(t) ops[#ops + 1] = t end
local t = { 'tensor', 't' }
local shape = { 'shape', 'shape' }
local function dtype(default) return { 'dtypeopt', 'dt', default = default or 'USG_F32' } end

-- The core's creation helper names itself in its messages ("full: shape
-- ... is too large"): errors_as gives each op its own name.
for _, c in ipairs {
  { 'zeros', '0', 'usagi.zeros(d1, ... [, dtype]) -> a tensor of zeros (dtype \'f32\', \'f64\' or \'i32\').' },
  { 'ones', '1', 'usagi.ones(d1, ... [, dtype]) -> a tensor of ones.' },
} do
  op {
    name = c[1], doc = c[3],
    forms = { 'usagi' },
    args = { shape, dtype() },
    call = ('usg_tensor_full(&r, dt, shape_ndim, shape, %s)'):format(c[2]),
    errors_as = c[1],
    grad = 'a new tensor: nothing to differentiate',
    dtypes = 'any',
    test = { ref = ('return function() return %s end'):format(c[2]) },
  }
end
op {
  name = 'full',
  doc = 'usagi.full(d1, ..., value [, dtype]) -> a tensor filled with value.',
  forms = { 'usagi' },
  args = { shape, { 'number', 'value' }, dtype() },
  call = 'usg_tensor_full(&r, dt, shape_ndim, shape, value)',
  errors_as = 'full',
  grad = 'a new tensor: nothing to differentiate',
  dtypes = 'any',
  test = { numbers = { 2.5 }, ref = 'return function(shape, v) return v end' },
}
for _, c in ipairs {
  { 'zeros_like', '0', 'usagi.zeros_like(t [, dtype]) -> zeros of t\'s shape (and dtype).' },
  { 'ones_like', '1', 'usagi.ones_like(t [, dtype]) -> ones of t\'s shape (and dtype).' },
} do
  op {
    name = c[1], doc = c[3],
    forms = { 'usagi' },
    args = { t, dtype('t->dtype') },
    call = ('usg_tensor_full(&r, dt, t->ndim, t->shape, %s)'):format(c[2]),
    errors_as = c[1],
    grad = 'a new tensor: nothing to differentiate',
    dtypes = 'any',
    test = { ref = ('return function() return %s end'):format(c[2]) },
  }
end

-- i32 when every number given is an integer, as PyTorch's int64.
local function ints(n)
  local c = {}
  for i = 1, n do c[i] = ('lua_isinteger(L, %d)'):format(i) end
  return ('(%s) ? USG_I32 : USG_F32'):format(table.concat(c, ' && '))
end
op {
  name = 'arange',
  doc = 'usagi.arange(stop) or arange(start, stop [, step]) [, dtype] -> [start, stop) as PyTorch;\n'
    .. 'i32 when every argument is an integer.',
  forms = { 'usagi' },
  overloads = {
    { args = { { 'number', 'stop' }, dtype(ints(1)) },
      call = 'usg_arange(&r, dt, 0, stop, 1)' },
    { args = { { 'number', 'start' }, { 'number', 'stop' }, dtype(ints(2)) },
      call = 'usg_arange(&r, dt, start, stop, 1)' },
    { args = { { 'number', 'start' }, { 'number', 'stop' }, { 'number', 'step' }, dtype(ints(3)) },
      call = 'usg_arange(&r, dt, start, stop, step)' },
  },
  errors_as = 'arange',
  grad = 'a new tensor: nothing to differentiate',
  dtypes = 'any',
  test = { numbers = { 5, 9, 2 } },
}
op {
  name = 'linspace',
  doc = 'usagi.linspace(start, stop, n [, dtype]) -> n evenly spaced values, both ends included.',
  forms = { 'usagi' },
  args = { { 'number', 'start' }, { 'number', 'stop' }, { 'integer', 'n' }, dtype() },
  call = 'usg_linspace(&r, dt, start, stop, (int64_t)n)',
  errors_as = 'linspace',
  grad = 'a new tensor: nothing to differentiate',
  dtypes = 'any',
  test = { numbers = { -1, 2, 7 } },
}
op {
  name = 'eye',
  doc = 'usagi.eye(n [, m] [, dtype]) -> the identity matrix (n, m).',
  forms = { 'usagi' },
  overloads = {
    { args = { { 'integer', 'n' }, dtype() }, call = 'usg_eye(&r, dt, (int64_t)n, (int64_t)n)' },
    { args = { { 'integer', 'n' }, { 'integer', 'm' }, dtype() },
      call = 'usg_eye(&r, dt, (int64_t)n, (int64_t)m)' },
  },
  errors_as = 'eye',
  grad = 'a new tensor: nothing to differentiate',
  dtypes = 'any',
  test = { numbers = { 3, 4 } },
}

-- The writes return t itself and refuse a tensor that requires grad
-- (outside usagi.no_grad). t:copy, t:fill and t:zero are Torch7's names.
op {
  name = 'copy_',
  doc = 't:copy_(src) -> t, with src (a tensor or a number) broadcast into it; t:copy is the same.',
  aliases = { 'copy' },
  args = { t, { 'scalar', 'src' } },
  call = 'usg_copy_(t, src)',
  returns = 'self',
  grad = 'a write in place',
  dtypes = 'any',
}
op {
  name = 'fill_',
  doc = 't:fill_(value) -> t, every element set to value; t:fill is the same.',
  aliases = { 'fill' },
  args = { t, { 'number', 'value' } },
  call = 'usg_fill_(t, value)',
  returns = 'self',
  grad = 'a write in place',
  dtypes = 'any',
}
op {
  name = 'zero_',
  doc = 't:zero_() -> t, every element set to 0; t:zero is the same.',
  aliases = { 'zero' },
  args = { t },
  call = 'usg_fill_(t, 0)',
  errors_as = 'zero_',
  returns = 'self',
  grad = 'a write in place',
  dtypes = 'any',
}

return {
  name = 'create',
  opener = 'usg_lua_open_create_ops',
  about = 'The tensors made from a shape, and the fills (table: host/ops/create.lua).',
  includes = { 'binding.h', 'usagi/autograd.h' },
  ops = ops,
}
