-- modules/birnn/ops.lua -- the op table of the bidirectional plugin
-- (host/ops/README.md): `require 'usagi.birnn'` loads usagi/birnn.so, whose
-- entry point, generated from this table, registers birnn.reverse and runs
-- the Lua face (birnn.lua).
--
--   y[t, b] = x[len_b - 1 - t, b]    for t < len_b
--   y[t, b] = x[t, b]                 for t >= len_b (the padding stays put)
--
-- The reversal itself is the core's usg_ad_reverse_padded (it is its own
-- inverse, so its backward is the same reversal of the gradient). The Lua
-- face runs a layer forward on x and on reverse(x), reverses the second
-- output back and joins the two.
return {
  name = 'birnn',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'usagi/autograd.h' },
  ops = {
    {
      name = 'reverse',
      doc = 'birnn.reverse(x [, lengths]) -> y: each sequence of x (T, B, n) reversed within its\n'
        .. 'length (an i32 (B) tensor, or nil for all T), differentiable.\n'
        .. 'The backward direction of a bidirectional layer runs over it (modules/birnn/README.md).',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'tensor', 'lengths', default = 'NULL' } },
      call = 'usg_ad_reverse_padded(&r, x, lengths, "birnn.reverse")',
      grad = true,
      dtypes = 'any',
      test = { shapes = { { 4, 2, 3 } } },
    },
  },
}
