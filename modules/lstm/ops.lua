-- modules/lstm/ops.lua -- the op table of the LSTM plugin
-- (host/ops/README.md): `require 'usagi.lstm'` loads usagi/lstm.so, whose
-- entry point, generated from this table, registers lstm.lstm and runs the
-- Lua face (lstm.lua: nn.LSTM, nn.LSTMCell). The math is in lstm.c, the
-- autograd op in lstm_ad.c.
--
--   local lstm = require 'usagi.lstm'
--   local out, h_n, c_n = lstm.lstm(x, h0, c0, { {w_ih, w_hh, b_ih, b_hh}, ... })
return {
  name = 'lstm',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'usagi/recurrent.h', 'lstm.h' },
  ops = {
    {
      name = 'lstm',
      doc = 'lstm.lstm(x, h0, c0, weights [, {dropout = 0, lengths}]) -> out, h_n, c_n\n'
        .. 'x (T, B, I); h0, c0 (L, B, H) or nil; weights { {w_ih, w_hh [, b_ih, b_hh, w_ci, w_cf, w_co]},\n'
        .. '... } a layer each (gates in PyTorch\'s order i, f, g, o; w_c* the peepholes, (H) each);\n'
        .. 'out (T, B, H), h_n, c_n (L, B, H). Dropout between layers draws from the run\'s generator.\n'
        .. 'lengths (i32 (B), 1..T): out is zero past each length, h_n and c_n each sequence\'s states\n'
        .. 'at its own last step.\n'
        .. 'One autograd node per layer, BPTT by hand in C. Equations: modules/lstm/README.md.',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'tensor', 'h0', default = 'NULL' }, { 'tensor', 'c0', default = 'NULL' },
        { 'layers', 'w', names = { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh', 'weight_ci',
          'weight_cf', 'weight_co' }, required = 2 },
        { 'recopts', 'opt', op = 'lstm' } },
      call = 'usg_ad_lstm(&r1, &r2, &r3, x, h0, c0, w_count, w, dropout, usg_lua_rng(L), lengths)',
      returns = { 'tensor', 'tensor', 'tensor' },
      grad = true,
      dtypes = 'float',
      test = { shapes = { { 3, 2, 4 }, { 1, 2, 5 }, { 1, 2, 5 } },
        layers = { { 20, 4 }, { 20, 5 }, { 20 }, { 20 }, { 5 }, { 5 }, { 5 } } },
    },
  },
}
