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

local function fail(class, msg, level) error(class .. ': ' .. msg, level or 5) end

local function check_size(class, what, v)
  if math.type(v) ~= 'integer' or v < 1 then
    fail(class, ('%s must be a positive integer, got %s'):format(what, tostring(v)))
  end
end

local function check_opts(class, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then fail(class, 'options must be a table, got ' .. type(opts)) end
  for k in pairs(opts) do
    if not known[k] then fail(class, ("unknown option '%s'"):format(tostring(k))) end
  end
  if opts.batch_first then fail(class, 'batch_first is not supported: sequences are time-major (T, B, I)') end
  if opts.bidirectional then
    fail(class, 'bidirectional is not there yet (modules/birnn); run a second LSTM on the reversed sequence')
  end
  return opts
end

-- One layer's parameters, registered under PyTorch's names plus `suffix`
-- ('_l0', ... for nn.LSTM; '' for nn.LSTMCell), all from U(-1/√H, 1/√H) as
-- PyTorch draws them, in its order; the peepholes (ours) after them.
-- forget_bias, when given, makes b_ih + b_hh = forget_bias on the forget
-- gate (b_ih's f-slice set to it, b_hh's to 0).
local function register_layer(self, suffix, input_size, H, opts)
  local k, dt = 1 / math.sqrt(H), opts.dtype or 'f32'
  local function uniform(shape) return usagi.rand(shape, { lo = -k, hi = k, dtype = dt }) end
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

-- lstm.lstm, its errors raised at the caller of forward (level 3 from here)
local function run(x, h0, c0, weights, opts)
  local ok, out, h_n, c_n = pcall(M.lstm, x, h0, c0, weights, opts)
  if not ok then error(out, 3) end
  return out, h_n, c_n
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
                carry = true, dtype = true, batch_first = true, bidirectional = true }

-- nn.LSTM(input_size, hidden_size [, opts]), opts (PyTorch's names first):
--   num_layers   1       layer l > 1 reads layer l-1's outputs
--   bias         true    b_ih and b_hh per layer (both, so PyTorch's weights load)
--   dropout      0       on every layer's output but the last, when training
--   peephole     false   p_i, p_f, p_o (Gers & Schmidhuber): weight_ci_l0, weight_cf_l0, weight_co_l0 (H)
--   forget_bias  nil     start the forget gate's bias here (1 is the usual choice)
--   carry        false   start each forward from the last final (h, c), detached
--   dtype        'f32'
-- Parameters: weight_ih_l0 (4H, I), weight_hh_l0 (4H, H), bias_ih_l0, bias_hh_l0 (4H),
-- gates stacked (i, f, g, o) as in PyTorch, so its state_dict loads.
function LSTM:__init(input_size, hidden_size, opts)
  nn.Module.__init(self)
  check_size('LSTM', 'input_size', input_size)
  check_size('LSTM', 'hidden_size', hidden_size)
  opts = check_opts('LSTM', opts, KNOWN)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.num_layers = opts.num_layers or 1
  check_size('LSTM', 'num_layers', self.num_layers)
  self.dropout = opts.dropout or 0
  if type(self.dropout) ~= 'number' or not (self.dropout >= 0 and self.dropout < 1) then
    fail('LSTM', ('dropout must be a number in [0, 1), got %s'):format(tostring(self.dropout)), 4)
  end
  if opts.forget_bias ~= nil and type(opts.forget_bias) ~= 'number' then
    fail('LSTM', 'forget_bias must be a number, got ' .. type(opts.forget_bias), 4)
  end
  self.bias, self.peephole, self.forget_bias = opts.bias ~= false, opts.peephole and true or false, opts.forget_bias
  self.carry = opts.carry and true or false
  for l = 0, self.num_layers - 1 do
    register_layer(self, '_l' .. l, l == 0 and input_size or hidden_size, hidden_size, opts)
  end
end

-- The weights as lstm.lstm takes them.
function LSTM:layer_weights()
  local ws = {}
  for l = 0, self.num_layers - 1 do ws[l + 1] = layer_weights(self, '_l' .. l) end
  return ws
end

-- forward(x [, h0 [, c0]]) -> out (T, B, H), h_n, c_n (num_layers, B, H);
-- h0 may also be the pair {h0, c0}.
function LSTM:forward(x, h0, c0)
  if type(h0) == 'table' and not usagi.is_tensor(h0) then h0, c0 = h0[1], h0[2] end
  if h0 == nil and c0 == nil and self.carry and self.h then
    if usagi.is_tensor(x) and x:dim() == 3 and x:size(2) ~= self.h:size(2) then
      error(('LSTM: the carried state is for batches of %d, this input %s has %d; '
        .. 'call :reset() first'):format(self.h:size(2), tostring(x:size()), x:size(2)), 2)
    end
    h0, c0 = self.h, self.c
  end
  local out, h_n, c_n = run(x, h0, c0, self:layer_weights(), { dropout = self.training and self.dropout or 0 })
  if self.carry then
    rawset(self, 'h', h_n:detach())
    rawset(self, 'c', c_n:detach())
  end
  return out, h_n, c_n
end

-- Forget the carried state: the next forward starts from zeros.
function LSTM:reset()
  rawset(self, 'h', nil)
  rawset(self, 'c', nil)
  return self
end

function LSTM:extra_repr()
  local s = ('%d, %d'):format(self.input_size, self.hidden_size)
  if self.num_layers ~= 1 then s = s .. ', num_layers=' .. self.num_layers end
  if self.dropout ~= 0 then s = s .. ', dropout=' .. self.dropout end
  if self.carry then s = s .. ', carry=true' end
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
  check_size('LSTMCell', 'input_size', input_size)
  check_size('LSTMCell', 'hidden_size', hidden_size)
  opts = check_opts('LSTMCell', opts, CELL_KNOWN)
  self.input_size, self.hidden_size = input_size, hidden_size
  self.bias, self.peephole, self.forget_bias = opts.bias ~= false, opts.peephole and true or false, opts.forget_bias
  register_layer(self, '', input_size, hidden_size, opts)
end

-- forward(x (B, I) [, h (B, H) [, c (B, H)]]) -> h', c' (B, H); h may be {h, c}.
function Cell:forward(x, h, c)
  if type(h) == 'table' and not usagi.is_tensor(h) then h, c = h[1], h[2] end
  if not usagi.is_tensor(x) or x:dim() ~= 2 then
    error(('LSTMCell: input must be (B, %d), got %s'):format(self.input_size,
      usagi.is_tensor(x) and tostring(x:size()) or type(x)), 2)
  end
  local function state(s, name)
    if s == nil then return nil end
    if not usagi.is_tensor(s) or s:dim() ~= 2 then
      error(('LSTMCell: %s must be (B, %d), got %s'):format(name, self.hidden_size,
        usagi.is_tensor(s) and tostring(s:size()) or type(s)), 3)
    end
    return s:unsqueeze(1)
  end
  local _, h1, c1 = run(x:unsqueeze(1), state(h, 'h'), state(c, 'c'), { layer_weights(self, '') })
  return h1:squeeze(1), c1:squeeze(1)
end

function Cell:extra_repr()
  return describe(self, ('%d, %d'):format(self.input_size, self.hidden_size))
end

nn.LSTM, nn.LSTMCell = LSTM, Cell
M.LSTM, M.LSTMCell = LSTM, Cell
return M
