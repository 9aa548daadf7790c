-- modules/seq2seq/ops.lua -- the op table of the seq2seq plugin
-- (host/ops/README.md): `require 'usagi.seq2seq'` loads usagi/seq2seq.so,
-- whose entry point, generated from this table, registers seq2seq.topk and
-- runs the Lua face (seq2seq.lua: the encoder, the decoders, HRED and VHRED,
-- greedy and beam search). topk is the core's usg_topk.
return {
  name = 'seq2seq',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'usagi/ops.h' },
  ops = {
    {
      name = 'topk',
      doc = 'seq2seq.topk(x, k) -> values, indices: the k largest entries of each row of x (B, V),\n'
        .. 'largest first, with their 1-based i32 indices (beam search\'s step).',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'integer', 'k' } },
      call = 'usg_topk(&r1, &r2, x, (int64_t)k, 1)',
      returns = { 'tensor', 'tensor' },
      grad = 'a selection for decoding, not recorded',
      dtypes = 'float',
    },
  },
}
