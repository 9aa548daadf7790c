-- modules/gru/ops.lua -- the op table of the GRU plugin (host/ops/README.md):
-- `require 'usagi.gru'` loads usagi/gru.so, whose entry point, generated
-- from this table, registers gru.gru and runs the Lua face (gru.lua:
-- nn.GRU, nn.GRUCell). The math is in gru.c, the autograd op in gru_ad.c.
--
--   local gru = require 'usagi.gru'
--   local out, h_n = gru.gru(x, h0, { {w_ih, w_hh, b_ih, b_hh}, ... }, { dropout = 0 })
return {
  name = 'gru',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'usagi/recurrent.h', 'gru.h' },
  ops = {
    {
      name = 'gru',
      doc = 'gru.gru(x, h0, weights [, {dropout = 0, lengths}]) -> out, h_n\n'
        .. 'x (T, B, I), h0 (L, B, H) or nil; weights { {w_ih, w_hh [, b_ih, b_hh]}, ... } a layer each,\n'
        .. 'gates in PyTorch\'s order r, z, n; out (T, B, H), h_n (L, B, H). Dropout between layers draws\n'
        .. 'from the run\'s generator. lengths (i32 (B), 1..T): out is zero past each length, h_n each\n'
        .. 'sequence\'s own last state.\n'
        .. 'PyTorch\'s and cuDNN\'s equations, BPTT by hand in C. Equations: modules/gru/README.md.',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'tensor', 'h0', default = 'NULL' },
        { 'layers', 'w', names = { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh' }, required = 2 },
        { 'recopts', 'opt', op = 'gru' } },
      call = 'usg_ad_gru(&r1, &r2, x, h0, w_count, w, dropout, usg_lua_rng(L), lengths)',
      returns = { 'tensor', 'tensor' },
      grad = true,
      dtypes = 'float',
      test = { shapes = { { 3, 2, 4 }, { 1, 2, 5 } }, layers = { { 15, 4 }, { 15, 5 }, { 15 }, { 15 } } },
    },
  },
}
