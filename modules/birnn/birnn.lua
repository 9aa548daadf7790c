-- birnn.lua -- the Lua face of the bidirectional plugin: the stack of
-- bidirectional layers behind nn.RNN, nn.LSTM and nn.GRU with
-- bidirectional = true, over any of their fused layer ops.
--
-- Layer l reads x_l and runs two directions, each a fused op of its own
-- weights (PyTorch's names: weight_ih_l0 and weight_ih_l0_reverse, ...):
--
--   forward   y_f = layer_f(x_l)
--   reverse   y_b = rev(layer_b(rev(x_l)))      rev: each sequence reversed
--                                               within its own length
--   x_{l+1}  = [y_f ; y_b]  (merge = 'concat', 2H)   or   y_f + y_b  ('sum', H)
--
-- with dropout between layers when training. With lengths, the reverse
-- direction starts at each sequence's own last step, and both directions'
-- outputs are zero past it. Final states come in PyTorch's order, layer by
-- layer, forward then reverse: (2 * num_layers, B, H).
local M = ...
local usagi = require 'usagi'

-- M.stack(x, s0, lengths, spec) -> out, finals (a list, one per state)
--   s0       nil, or a list of initial states (2L, B, H), each or nil
--   spec     { layers =, states =, merge = 'concat'|'sum', dropout =,
--              run = function(l, dir, x, init, lengths) -> y, finals }
--            where dir is '' or '_reverse', init a list of (1, B, H) or
--            nil, and finals a list of (1, B, H).
function M.stack(x, s0, lengths, spec)
  local cur, fin = x, {}
  for k = 1, spec.states do fin[k] = {} end
  for l = 0, spec.layers - 1 do
    local function init(d)
      local list = {}
      for k = 1, spec.states do
        list[k] = s0 and s0[k] and s0[k]:narrow(1, 2 * l + d + 1, 1) or nil
      end
      return list
    end
    local yf, ff = spec.run(l, '', cur, init(0), lengths)
    local yb, fb = spec.run(l, '_reverse', M.reverse(cur, lengths), init(1), lengths)
    yb = M.reverse(yb, lengths)
    cur = spec.merge == 'sum' and yf + yb or usagi.cat({ yf, yb }, 3)
    if l < spec.layers - 1 and spec.dropout > 0 then cur = usagi.dropout(cur, spec.dropout, true) end
    for k = 1, spec.states do
      local n = #fin[k]
      fin[k][n + 1], fin[k][n + 2] = ff[k], fb[k]
    end
  end
  local finals = {}
  for k = 1, spec.states do finals[k] = usagi.cat(fin[k], 1) end
  return cur, finals
end

return M
