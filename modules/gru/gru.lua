-- gru.lua -- the Lua face of the GRU plugin: nn.GRU over the fused op
-- gru.gru (one autograd node per layer, BPTT written out in C) and
-- nn.GRUCell for step-by-step decoding. Receives the module table M that
-- the C side made; `require 'usagi.gru'` registers both classes in nn.
--
--   r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
--   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
--   h' = (1 - z) ⊙ n + z ⊙ h
--
--   local nn = require 'usagi.nn'
--   require 'usagi.gru'
--   local gru = nn.GRU(8, 16, { num_layers = 2 })
--   local out, h_n = gru(x)              -- x (T, B, 8) -> (T, B, 16), (2, B, 16)
local M = ...
local nn = require 'usagi.nn'
local R = require 'usagi.recurrent'

local STATE = { 'h' }

-- One layer's parameters under PyTorch's names plus `suffix` ('_l0', ... or
-- '' for the cell), gates stacked (r, z, n), drawn in PyTorch's order.
local function register_layer(self, suffix, input_size, H, opts)
  local uniform = R.uniform(H, opts.dtype)
  self:register_parameter('weight_ih' .. suffix, uniform { 3 * H, input_size })
  self:register_parameter('weight_hh' .. suffix, uniform { 3 * H, H })
  if opts.bias ~= false then
    self:register_parameter('bias_ih' .. suffix, uniform { 3 * H })
    self:register_parameter('bias_hh' .. suffix, uniform { 3 * H })
  end
end

local function layer_weights(self, suffix)
  return { self['weight_ih' .. suffix], self['weight_hh' .. suffix], self['bias_ih' .. suffix],
           self['bias_hh' .. suffix] }
end

-- ==== nn.GRU =============================================================

local GRU = nn.Module:extend 'GRU'

local KNOWN = { num_layers = true, bias = true, dropout = true, carry = true, dtype = true,
                batch_first = true, bidirectional = true, merge = true }

-- nn.GRU(input_size, hidden_size [, opts]), opts (PyTorch's names):
--   num_layers 1, bias true, dropout 0 (between layers, when training),
--   carry false (start each forward from the last final state, detached),
--   bidirectional false (each layer also runs backwards: weight_ih_l0_reverse,
--   ...; out (T, B, 2H), h_n (2 * num_layers, B, H)), merge 'concat' (or
--   'sum': how the two directions join), batch_first false (x and out are
--   (B, T, ...) instead of (T, B, ...); h unchanged), dtype 'f32'.
-- Parameters: weight_ih_l0 (3H, I), weight_hh_l0 (3H, H), bias_ih_l0,
-- bias_hh_l0 (3H), ..., so a PyTorch state_dict loads.
function GRU:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  R.check_size('GRU', 'input_size', input_size)
  R.check_size('GRU', 'hidden_size', hidden_size)
  opts = R.check_opts('GRU', opts, KNOWN)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.num_layers = opts.num_layers or 1
  R.check_size('GRU', 'num_layers', self.num_layers)
  self.dropout = R.check_dropout('GRU', opts.dropout)
  self.bias, self.carry = opts.bias ~= false, opts.carry and true or false
  R.register_layers(self, input_size, hidden_size, opts, function(m, suffix, n, H)
    register_layer(m, suffix, n, H, opts)
  end)
end

-- The weights as gru.gru takes them.
function GRU:layer_weights()
  local ws = {}
  for l = 0, self.num_layers - 1 do ws[l + 1] = layer_weights(self, '_l' .. l) end
  return ws
end

-- forward(x [, h0 [, lengths]]) -> out (T, B, H), h_n (num_layers, B, H).
-- lengths (B) (an i32 tensor or a list): out is zero past each sequence's
-- length and h_n holds each one's state at its own last step.
function GRU:forward(x, h0, lengths)
  x = R.time_major(self, 'GRU', x)
  if self.bidirectional then
    local out, fin = R.bidirectional(self, 'GRU', x, { h0 }, { 'h0' }, R.lengths(lengths),
      function(l, suffix, xl, init, len)
        local y, hn = R.call(M.gru, xl, init[1], { layer_weights(self, '_l' .. l .. suffix) }, { lengths = len })
        return y, { hn }
      end)
    return R.batch_major(self, out), fin[1]
  end
  if h0 == nil then h0 = (R.carried(self, 'GRU', x, STATE) or {})[1] end
  local out, h_n = R.call(M.gru, x, h0, self:layer_weights(),
    { dropout = self.training and self.dropout or 0, lengths = R.lengths(lengths) })
  R.keep(self, STATE, h_n)
  return R.batch_major(self, out), h_n
end

-- Forget the carried state: the next forward starts from zeros.
function GRU:reset() return R.reset(self, STATE) end

-- The state carried to the next forward, h as a table (empty after a
-- reset): what a run checkpoints of a loop that carries it (run:progress's
-- carry), so that a resumed run starts its next window from the same bits.
function GRU:carried() return R.get_carried(self, STATE) end

-- Put back a state that carried() gave.
function GRU:set_carried(s) return R.set_carried(self, STATE, s) end

function GRU:extra_repr()
  local s = ('%d, %d'):format(self.input_size, self.hidden_size)
  if self.num_layers ~= 1 then s = s .. ', num_layers=' .. self.num_layers end
  if not self.bias then s = s .. ', bias=false' end
  if self.dropout ~= 0 then s = s .. ', dropout=' .. self.dropout end
  if self.carry then s = s .. ', carry=true' end
  if self.bidirectional then s = s .. ', bidirectional=true' .. (self.merge == 'sum' and ", merge='sum'" or '') end
  if self.batch_first then s = s .. ', batch_first=true' end
  return s
end

-- ==== nn.GRUCell =========================================================

local Cell = nn.Module:extend 'GRUCell'

-- nn.GRUCell(input_size, hidden_size [, {bias, dtype}]): one step, as
-- PyTorch's (weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh), for
-- decoding a step at a time. The same fused op with T = 1.
function Cell:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  R.check_size('GRUCell', 'input_size', input_size)
  R.check_size('GRUCell', 'hidden_size', hidden_size)
  opts = R.check_opts('GRUCell', opts, { bias = true, dtype = true })
  self.input_size, self.hidden_size, self.bias = input_size, hidden_size, opts.bias ~= false
  register_layer(self, '', input_size, hidden_size, opts)
end

-- forward(x (B, I) [, h (B, H)]) -> h' (B, H)
function Cell:forward(x, h)
  R.check_step('GRUCell', x, self.input_size, 'input')
  if h ~= nil then R.check_step('GRUCell', h, self.hidden_size, 'h') end
  local _, h1 = R.call(M.gru, x:unsqueeze(1), h and h:unsqueeze(1), { layer_weights(self, '') })
  return h1:squeeze(1)
end

function Cell:extra_repr()
  return ('%d, %d'):format(self.input_size, self.hidden_size) .. (self.bias and '' or ', bias=false')
end

nn.GRU, nn.GRUCell = GRU, Cell
M.GRU, M.GRUCell = GRU, Cell

return M
