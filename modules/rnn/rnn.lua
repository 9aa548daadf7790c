-- rnn.lua -- the Lua face of the RNN plugin: nn.RNN, the Elman RNN of the
-- course, an nn.Module over the fused op rnn.rnn (one autograd node per
-- layer, BPTT written out in C). Receives the module table M that the C
-- side made; `require 'usagi.rnn'` also registers the class as nn.RNN.
--
--   u^t = W_in x^t + W z^{t-1} + b_ih + b_hh,   z^t = f(u^t),   z^0 = h0 (zeros by default)
--
--   local nn = require 'usagi.nn'
--   require 'usagi.rnn'
--   local rnn = nn.RNN(8, 16, { num_layers = 2, nonlinearity = 'tanh' })
--   local out, h_n = rnn(x)              -- x (T, B, 8) -> out (T, B, 16), h_n (2, B, 16)
--
-- Truncated BPTT: carry the final state into the next chunk of a long
-- sequence without its history, so the backward stops at the chunk's start.
-- Either by hand:
--   local out, h = rnn(x1)
--   h = h:detach()                       -- keep the values, drop the graph
--   out, h = rnn(x2, h)
-- or with { carry = true }: each forward starts from the previous call's
-- final state (detached) and rnn:reset() forgets it (a new epoch, a new
-- stream of batches). An explicit h0 argument always wins.
local M = ...
local nn = require 'usagi.nn'
local R = require 'usagi.recurrent'

local RNN = nn.Module:extend 'RNN'

local KNOWN = { num_layers = true, nonlinearity = true, bias = true, dropout = true,
                carry = true, dtype = true, batch_first = true, bidirectional = true, merge = true }
local ACTS = { tanh = true, relu = true, sigmoid = true }
local STATE = { 'h' }

-- nn.RNN(input_size, hidden_size [, opts]), opts (PyTorch's names):
--   num_layers    1         layer l > 1 reads layer l-1's states
--   nonlinearity  'tanh'    or 'relu', 'sigmoid'
--   bias          true      b_ih and b_hh per layer (both, so PyTorch's weights load)
--   dropout       0         on every layer's output but the last, when training
--   carry         false     start each forward from the last final state (detached)
--   bidirectional false     each layer also runs backwards (weight_ih_l0_reverse, ...);
--                           out (T, B, 2H), h_n (2 * num_layers, B, H)
--   merge         'concat'  how the two directions join: 'concat' (2H) or 'sum' (H)
--   batch_first   false     x and out are (B, T, ...) instead of (T, B, ...); h unchanged
--   dtype         'f32'
-- Parameters, in PyTorch's order and names: weight_ih_l0 (H, I),
-- weight_hh_l0 (H, H), bias_ih_l0 (H), bias_hh_l0 (H), weight_ih_l1 (H, H), ...
-- (0-based like PyTorch's, so state_dicts carry over), all drawn from
-- U(-1/sqrt(H), 1/sqrt(H)) from the run's generator, in that order.
function RNN:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  R.check_size('RNN', 'input_size', input_size)
  R.check_size('RNN', 'hidden_size', hidden_size)
  opts = R.check_opts('RNN', opts, KNOWN)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.num_layers = opts.num_layers or 1
  R.check_size('RNN', 'num_layers', self.num_layers)
  self.nonlinearity = opts.nonlinearity or 'tanh'
  if not ACTS[self.nonlinearity] then
    R.fail('RNN', ("nonlinearity must be 'tanh', 'relu' or 'sigmoid', got '%s'"):format(tostring(self.nonlinearity)), 4)
  end
  self.bias = opts.bias ~= false
  self.dropout = R.check_dropout('RNN', opts.dropout)
  self.carry = opts.carry and true or false
  local uniform = R.uniform(hidden_size, opts.dtype)
  R.register_layers(self, input_size, hidden_size, opts, function(m, suffix, n, H)
    m:register_parameter('weight_ih' .. suffix, uniform { H, n })
    m:register_parameter('weight_hh' .. suffix, uniform { H, H })
    if m.bias then
      m:register_parameter('bias_ih' .. suffix, uniform { H })
      m:register_parameter('bias_hh' .. suffix, uniform { H })
    end
  end)
end

-- One direction of one layer's weights, as rnn.rnn takes them.
function RNN:direction_weights(suffix)
  return { self['weight_ih' .. suffix], self['weight_hh' .. suffix], self['bias_ih' .. suffix],
           self['bias_hh' .. suffix] }
end

-- The weights as rnn.rnn takes them: { {w_ih, w_hh [, b_ih, b_hh]}, ... }
function RNN:layer_weights()
  local ws = {}
  for l = 0, self.num_layers - 1 do ws[l + 1] = self:direction_weights('_l' .. l) end
  return ws
end

-- forward(x [, h0 [, lengths]]) -> out (T, B, H), h_n (num_layers, B, H).
-- lengths (B) (an i32 tensor or a list): out is zero past each sequence's
-- length and h_n holds each one's state at its own last step.
function RNN:forward(x, h0, lengths)
  x = R.time_major(self, 'RNN', x)
  if self.bidirectional then
    local out, fin = R.bidirectional(self, 'RNN', x, { h0 }, { 'h0' }, R.lengths(lengths),
      function(l, suffix, xl, init, len)
        local y, hn = R.call(M.rnn, xl, init[1], { self:direction_weights('_l' .. l .. suffix) },
          { nonlinearity = self.nonlinearity, lengths = len })
        return y, { hn }
      end)
    return R.batch_major(self, out), fin[1]
  end
  if h0 == nil then h0 = (R.carried(self, 'RNN', x, STATE) or {})[1] end
  local out, h_n = R.call(M.rnn, x, h0, self:layer_weights(), {
    nonlinearity = self.nonlinearity,
    dropout = self.training and self.dropout or 0,
    lengths = R.lengths(lengths),
  })
  R.keep(self, STATE, h_n)
  return R.batch_major(self, out), h_n
end

-- Forget the carried state: the next forward starts from zeros.
function RNN:reset() return R.reset(self, STATE) end

-- The state carried to the next forward, h as a table (empty after a
-- reset): what a run checkpoints of a loop that carries it (run:progress's
-- carry), so that a resumed run starts its next window from the same bits.
function RNN:carried() return R.get_carried(self, STATE) end

-- Put back a state that carried() gave.
function RNN:set_carried(s) return R.set_carried(self, STATE, s) end

function RNN:extra_repr()
  local s = ('%d, %d'):format(self.input_size, self.hidden_size)
  if self.num_layers ~= 1 then s = s .. ', num_layers=' .. self.num_layers end
  if self.nonlinearity ~= 'tanh' then s = s .. ", nonlinearity='" .. self.nonlinearity .. "'" end
  if not self.bias then s = s .. ', bias=false' end
  if self.dropout ~= 0 then s = s .. ', dropout=' .. self.dropout end
  if self.carry then s = s .. ', carry=true' end
  if self.bidirectional then s = s .. ', bidirectional=true' .. (self.merge == 'sum' and ", merge='sum'" or '') end
  if self.batch_first then s = s .. ', batch_first=true' end
  return s
end

nn.RNN = RNN
M.RNN = RNN

return M
