-- modules/hello/ops.lua -- the op table of the example plugin
-- (host/ops/README.md): usagi_add_plugin(... OPS ops.lua) turns it into the
-- plugin's Lua binding and entry point, with the argument checks, help()
-- texts and the table-driven test (tests/lua/ops_spec.lua) for free.
return {
  name = 'hello',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'hello.h' },
  ops = {
    {
      name = 'iota',
      doc = 'hello.iota(n) -> the f32 tensor 1, 2, ..., n (the example plugin: modules/README.md).',
      forms = { 'usagi' },
      args = { { 'integer', 'n' } },
      pre = 'luaL_argcheck(L, n >= 0, 1, "n must be >= 0");',
      call = 'usg_arange(&r, USG_F32, 1, (double)n + 1, 1)',
      grad = 'a constant',
      dtypes = 'f32',
      test = { numbers = { 5 } },
    },
    {
      name = 'scale',
      doc = 'hello.scale(x, a) -> a x, differentiable in x (the example of a kernel, its backward\n'
        .. 'and a table entry: modules/hello/).',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'number', 'a' } },
      call = 'hello_scale(&r, x, a)',
      grad = true,
      dtypes = 'any',
      test = { numbers = { 1.5 }, ref = 'return function(x, a) return a * x end' },
    },
  },
  -- The recorded entry point hello.scale calls: run the kernel, and when x
  -- requires grad, a node named hello.scale whose backward is
  -- scale_backward (hello.c) and whose context is a copy of a.
  records = {
    { 'hello_scale(usg_tensor **out, usg_tensor *x, double a)', name = 'hello.scale',
      forward = 'usg_binary_scalar(out, USG_MUL, x, a, false)', backward = 'scale_backward',
      inputs = 'x', ctx = { 'double', 'a' } },
  },
}
