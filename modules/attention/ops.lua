-- modules/attention/ops.lua -- the op table of the attention plugin
-- (host/ops/README.md): `require 'usagi.attention'` loads
-- usagi/attention.so, whose entry point, generated from this table,
-- registers attention.attend and runs the Lua face (attention.lua:
-- nn.Attention, nn.MultiheadAttention and the mask helpers). The math is in
-- attention.c, the autograd op in attention_ad.c.
--
--   local A = require 'usagi.attention'
--   local c, w = A.attend(q, k, v, { scale = 1 / math.sqrt(D), mask = m, causal = true })
return {
  name = 'attention',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'attention.h' },
  ops = {
    {
      name = 'attend',
      errname = 'attention',
      doc = 'attention.attend(q, k, v [, {scale = 1, mask, causal = false, u}]) -> c, w\n'
        .. 'q (B, Lq, D), k (B, Lk, D), v (B, Lk, Dv); mask (Bm, 1 or Lq, Lk) added to the scores\n'
        .. '(-inf: not allowed); causal: key j > query i not allowed; u (D): the additive score\n'
        .. 'sum_a u_a tanh(q_a + k_a) instead of q . k. w = softmax(scores), c = w v.\n'
        .. 'Equations: modules/attention/README.md.',
      forms = { 'usagi' },
      args = { { 'tensor', 'q' }, { 'tensor', 'k' }, { 'tensor', 'v' },
        { name = 'opt', options = { { 'number', 'scale', default = 1 }, { 'tensor', 'mask' },
          { 'boolean', 'causal' }, { 'tensor', 'u' } } } },
      call = 'usg_ad_attention(&r1, &r2, q, k, v, u, mask, scale, causal)',
      returns = { 'tensor', 'tensor' },
      grad = true,
      dtypes = 'float',
      test = { shapes = { { 2, 3, 4 }, { 2, 5, 4 }, { 2, 5, 6 } } },
    },
  },
}
