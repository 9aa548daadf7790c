-- modules/rnn/ops.lua -- the op table of the RNN plugin (host/ops/README.md):
-- `require 'usagi.rnn'` loads usagi/rnn.so, whose entry point, generated
-- from this table, registers rnn.rnn and runs the Lua face (rnn.lua:
-- nn.RNN). The math is in rnn.c, the autograd op in rnn_ad.c.
--
--   local rnn = require 'usagi.rnn'
--   local out, h_n = rnn.rnn(x, h0, { {w_ih, w_hh, b_ih, b_hh}, ... },
--                            { nonlinearity = 'tanh', dropout = 0 })
return {
  name = 'rnn',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'usagi/recurrent.h', 'rnn.h' },
  ops = {
    {
      name = 'rnn',
      doc = 'rnn.rnn(x, h0, weights [, {nonlinearity = \'tanh\', dropout = 0, lengths}]) -> out, h_n\n'
        .. 'x (T, B, I), h0 (L, B, H) or nil; weights { {w_ih, w_hh [, b_ih, b_hh]}, ... } a layer each;\n'
        .. 'out (T, B, H), h_n (L, B, H). Dropout between layers draws from the run\'s generator; pass 0\n'
        .. 'when evaluating. lengths (i32 (B), 1..T): out is zero past each sequence\'s length, and h_n\n'
        .. 'holds each one\'s state at its own last step.\n'
        .. 'h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), BPTT by hand in C.\nEquations: modules/rnn/README.md.',
      forms = { 'usagi' },
      args = { { 'tensor', 'x' }, { 'tensor', 'h0', default = 'NULL' },
        { 'layers', 'w', names = { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh' }, required = 2 },
        { 'recopts', 'opt', op = 'rnn', extra = { 'nonlinearity' } } },
      -- nonlinearity is the one option the recurrent options do not know
      pre = [[
usg_rnn_act f = USG_RNN_TANH;
if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "nonlinearity") != LUA_TNIL) {
    const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    if (!usg_rnn_act_parse(name, &f))
        return luaL_argerror(L, 4, lua_pushfstring(L, "nonlinearity must be 'tanh', "
                             "'relu' or 'sigmoid', got '%s'", name));
}]],
      call = 'usg_ad_rnn(&r1, &r2, x, h0, w_count, w, f, dropout, usg_lua_rng(L), lengths)',
      returns = { 'tensor', 'tensor' },
      grad = true,
      dtypes = 'float',
      test = { shapes = { { 3, 2, 4 }, { 1, 2, 5 } }, layers = { { 5, 4 }, { 5, 5 }, { 5 }, { 5 } } },
    },
  },
}
