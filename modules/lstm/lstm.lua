-- lstm.lua -- the Lua face of the LSTM plugin: nn.LSTM over the fused op
-- lstm.lstm (one autograd node per layer, BPTT written out in C) and
-- nn.LSTMCell for step-by-step decoding. Receives the module table M that
-- the C side made; `require 'usagi.lstm'` registers both classes in nn.
--
--   i = σ(W_ii x + W_hi h + b_i [+ p_i ⊙ c])    f = σ(W_if x + W_hf h + b_f [+ p_f ⊙ c])
--   g = tanh(W_ig x + W_hg h + b_g)             c' = f ⊙ c + i ⊙ g
--   o = σ(W_io x + W_ho h + b_o [+ p_o ⊙ c'])   h' = o ⊙ tanh(c')
--
--   local nn = require 'usagi.nn'
--   require 'usagi.lstm'
--   local lstm = nn.LSTM(8, 16, { num_layers = 2, dropout = 0.5 })
--   local out, h_n, c_n = lstm(x)        -- x (T, B, 8) -> (T, B, 16), (2, B, 16), (2, B, 16)
--   local out, h_n, c_n = lstm(x, h0, c0)
local M = ...
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local R = require 'usagi.recurrent'

local STATE = { 'h', 'c' }

-- One layer's parameters, registered under PyTorch's names plus `suffix`
-- ('_l0', ... for nn.LSTM; '' for nn.LSTMCell), all from U(-1/√H, 1/√H) as
-- PyTorch draws them, in its order; the peepholes (ours) after them.
-- forget_bias, when given, makes b_ih + b_hh = forget_bias on the forget
-- gate (b_ih's f-slice set to it, b_hh's to 0).
local function register_layer(self, suffix, input_size, H, opts)
  local uniform = R.uniform(H, opts.dtype)
  self:register_parameter('weight_ih' .. suffix, uniform { 4 * H, input_size })
  self:register_parameter('weight_hh' .. suffix, uniform { 4 * H, H })
  if opts.bias ~= false then
    local b_ih, b_hh = uniform { 4 * H }, uniform { 4 * H }
    if opts.forget_bias then
      b_ih:narrow(1, H + 1, H):fill_(opts.forget_bias)
      b_hh:narrow(1, H + 1, H):zero_()
    end
    self:register_parameter('bias_ih' .. suffix, b_ih)
    self:register_parameter('bias_hh' .. suffix, b_hh)
  end
  if opts.peephole then
    for _, g in ipairs { 'ci', 'cf', 'co' } do self:register_parameter('weight_' .. g .. suffix, uniform { H }) end
  end
end

local function layer_weights(self, suffix)
  return { self['weight_ih' .. suffix], self['weight_hh' .. suffix], self['bias_ih' .. suffix],
           self['bias_hh' .. suffix], self['weight_ci' .. suffix], self['weight_cf' .. suffix],
           self['weight_co' .. suffix] }
end

local function check_forget_bias(class, opts)
  if opts.forget_bias ~= nil and type(opts.forget_bias) ~= 'number' then
    R.fail(class, 'forget_bias must be a number, got ' .. type(opts.forget_bias))
  end
end

local function describe(self, s)
  if not self.bias then s = s .. ', bias=false' end
  if self.peephole then s = s .. ', peephole=true' end
  if self.forget_bias then s = s .. ', forget_bias=' .. self.forget_bias end
  return s
end

-- ==== nn.LSTM ============================================================

local LSTM = nn.Module:extend 'LSTM'

local KNOWN = { num_layers = true, bias = true, dropout = true, peephole = true, forget_bias = true,
                carry = true, dtype = true, batch_first = true, bidirectional = true, merge = true }

-- nn.LSTM(input_size, hidden_size [, opts]), opts (PyTorch's names first):
--   num_layers   1       layer l > 1 reads layer l-1's outputs
--   bias         true    b_ih and b_hh per layer (both, so PyTorch's weights load)
--   dropout      0       on every layer's output but the last, when training
--   peephole     false   p_i, p_f, p_o (Gers & Schmidhuber): weight_ci_l0, weight_cf_l0, weight_co_l0 (H)
--   forget_bias  nil     start the forget gate's bias here (1 is the usual choice)
--   carry        false   start each forward from the last final (h, c), detached
--   bidirectional false  each layer also runs backwards (weight_ih_l0_reverse, ...);
--                        out (T, B, 2H), h_n and c_n (2 * num_layers, B, H)
--   merge        'concat' how the two directions join: 'concat' (2H) or 'sum' (H)
--   batch_first  false   x and out are (B, T, ...) instead of (T, B, ...); states unchanged
--   dtype        'f32'
-- Parameters: weight_ih_l0 (4H, I), weight_hh_l0 (4H, H), bias_ih_l0, bias_hh_l0 (4H),
-- gates stacked (i, f, g, o) as in PyTorch, so its state_dict loads.
function LSTM:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  R.check_size('LSTM', 'input_size', input_size)
  R.check_size('LSTM', 'hidden_size', hidden_size)
  opts = R.check_opts('LSTM', opts, KNOWN)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.num_layers = opts.num_layers or 1
  R.check_size('LSTM', 'num_layers', self.num_layers)
  self.dropout = R.check_dropout('LSTM', opts.dropout)
  check_forget_bias('LSTM', opts)
  self.bias, self.peephole, self.forget_bias = opts.bias ~= false, opts.peephole and true or false, opts.forget_bias
  self.carry = opts.carry and true or false
  R.register_layers(self, input_size, hidden_size, opts, function(m, suffix, n, H)
    register_layer(m, suffix, n, H, opts)
  end)
end

-- The weights as lstm.lstm takes them.
function LSTM:layer_weights()
  local ws = {}
  for l = 0, self.num_layers - 1 do ws[l + 1] = layer_weights(self, '_l' .. l) end
  return ws
end

-- forward(x [, h0 [, c0 [, lengths]]]) -> out (T, B, H), h_n, c_n (num_layers, B, H);
-- h0 may also be the pair {h0, c0}, then lengths comes third. lengths (B)
-- (an i32 tensor or a list): out is zero past each sequence's length and
-- h_n, c_n hold each one's states at its own last step.
function LSTM:forward(x, h0, c0, lengths)
  if type(h0) == 'table' and not usagi.is_tensor(h0) then h0, c0, lengths = h0[1], h0[2], c0 end
  x = R.time_major(self, 'LSTM', x)
  if self.bidirectional then
    local out, fin = R.bidirectional(self, 'LSTM', x, { h0, c0 }, { 'h0', 'c0' }, R.lengths(lengths),
      function(l, suffix, xl, init, len)
        local y, hn, cn = R.call(M.lstm, xl, init[1], init[2], { layer_weights(self, '_l' .. l .. suffix) },
          { lengths = len })
        return y, { hn, cn }
      end)
    return R.batch_major(self, out), fin[1], fin[2]
  end
  if h0 == nil and c0 == nil then
    local c = R.carried(self, 'LSTM', x, STATE)
    if c then h0, c0 = c[1], c[2] end
  end
  local out, h_n, c_n = R.call(M.lstm, x, h0, c0, self:layer_weights(),
    { dropout = self.training and self.dropout or 0, lengths = R.lengths(lengths) })
  R.keep(self, STATE, h_n, c_n)
  return R.batch_major(self, out), h_n, c_n
end

-- Forget the carried state: the next forward starts from zeros.
function LSTM:reset() return R.reset(self, STATE) end

-- The state carried to the next forward, (h, c) as a table (empty after a
-- reset): what a run checkpoints of a loop that carries it (run:progress's
-- carry), so that a resumed run starts its next window from the same bits.
function LSTM:carried() return R.get_carried(self, STATE) end

-- Put back a state that carried() gave.
function LSTM:set_carried(s) return R.set_carried(self, STATE, s) end

function LSTM:extra_repr()
  local s = ('%d, %d'):format(self.input_size, self.hidden_size)
  if self.num_layers ~= 1 then s = s .. ', num_layers=' .. self.num_layers end
  if self.dropout ~= 0 then s = s .. ', dropout=' .. self.dropout end
  if self.carry then s = s .. ', carry=true' end
  if self.bidirectional then s = s .. ', bidirectional=true' .. (self.merge == 'sum' and ", merge='sum'" or '') end
  if self.batch_first then s = s .. ', batch_first=true' end
  return describe(self, s)
end

-- ==== nn.LSTMCell ========================================================

local Cell = nn.Module:extend 'LSTMCell'

local CELL_KNOWN = { bias = true, peephole = true, forget_bias = true, dtype = true }

-- nn.LSTMCell(input_size, hidden_size [, {bias, peephole, forget_bias, dtype}]):
-- one step, as PyTorch's (weight_ih (4H, I), weight_hh (4H, H), bias_ih,
-- bias_hh), for decoding a step at a time. The same fused op with T = 1.
function Cell:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  R.check_size('LSTMCell', 'input_size', input_size)
  R.check_size('LSTMCell', 'hidden_size', hidden_size)
  opts = R.check_opts('LSTMCell', opts, CELL_KNOWN)
  check_forget_bias('LSTMCell', opts)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.bias, self.peephole, self.forget_bias = opts.bias ~= false, opts.peephole and true or false, opts.forget_bias
  register_layer(self, '', input_size, hidden_size, opts)
end

-- forward(x (B, I) [, h (B, H) [, c (B, H)]]) -> h', c' (B, H); h may be {h, c}.
function Cell:forward(x, h, c)
  if type(h) == 'table' and not usagi.is_tensor(h) then h, c = h[1], h[2] end
  R.check_step('LSTMCell', x, self.input_size, 'input')
  if h ~= nil then R.check_step('LSTMCell', h, self.hidden_size, 'h') end
  if c ~= nil then R.check_step('LSTMCell', c, self.hidden_size, 'c') end
  local _, h1, c1 = R.call(M.lstm, x:unsqueeze(1), h and h:unsqueeze(1), c and c:unsqueeze(1),
    { layer_weights(self, '') })
  return h1:squeeze(1), c1:squeeze(1)
end

function Cell:extra_repr()
  return describe(self, ('%d, %d'):format(self.input_size, self.hidden_size))
end

nn.LSTM, nn.LSTMCell = LSTM, Cell
M.LSTM, M.LSTMCell = LSTM, Cell

return M
