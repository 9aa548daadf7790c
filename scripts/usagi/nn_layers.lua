-- usagi.nn_layers -- the layers, activations and criterions of usagi.nn
-- (Linear, Embedding, Dropout, Tanh, ..., CrossEntropyLoss, ...) and the
-- functional forms (nn.cross_entropy, ...), added to the usagi.nn table.
-- scripts/usagi/nn.lua loads this file once its Module is defined; use the
-- classes through require 'usagi.nn'.
--
-- Each class is nn.Module:extend 'Name' with an __init that checks its
-- arguments (errors name the class) and a forward over the usagi ops.
local usagi = require 'usagi'

local sorted_keys = require('usagi.util').sorted_keys

local nn = require 'usagi.nn'
local Module = nn.Module

-- ==== Layers =============================================================

local function check_opts(fn, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then error(('%s: options must be a table, got %s'):format(fn, type(opts)), 3) end
  for k in pairs(opts) do
    if not known[k] then
      local names = sorted_keys(known)
      error(('%s: unknown option \'%s\' (expected %s)'):format(fn, tostring(k), table.concat(names, ', ')), 3)
    end
  end
  return opts
end

local function check_size(fn, what, v)
  if math.type(v) ~= 'integer' or v < 1 then
    error(('%s: %s must be a positive integer, got %s'):format(fn, what, tostring(v)), 3)
  end
end

-- nn.Linear(in, out [, {bias = true, dtype = 'f32'}]): y = x W^T + b with
-- W (out, in) and b (out) drawn from U(-1/sqrt(in), 1/sqrt(in)), PyTorch's
-- default, from the run's generator (weight first, then bias).
local Linear = Module:extend 'Linear'
nn.Linear = Linear

function Linear:__init(in_features, out_features, opts)
  Module.__init(self)
  check_size('Linear', 'in_features', in_features)
  check_size('Linear', 'out_features', out_features)
  opts = check_opts('Linear', opts, { bias = true, dtype = true })
  local k, dt = 1 / math.sqrt(in_features), opts.dtype or 'f32'
  self.in_features, self.out_features = in_features, out_features
  self:register_parameter('weight', usagi.rand(out_features, in_features, { lo = -k, hi = k, dtype = dt }))
  self:register_parameter('bias', opts.bias ~= false
    and usagi.rand(out_features, { lo = -k, hi = k, dtype = dt }) or nil)
end

function Linear:forward(x) return usagi.linear(x, self.weight, self.bias) end

function Linear:extra_repr()
  return ('in_features=%d, out_features=%d, bias=%s')
    :format(self.in_features, self.out_features, tostring(self.bias ~= nil))
end

-- nn.Embedding(V, D [, {padding_idx = id, dtype = 'f32'}]): rows of a
-- (V, D) table drawn from N(0, 1); ids are 1-based. The padding row starts
-- at zero and gets no gradient (its outputs are masked), as in PyTorch.
local Embedding = Module:extend 'Embedding'
nn.Embedding = Embedding

function Embedding:__init(num, dim, opts)
  Module.__init(self)
  check_size('Embedding', 'num_embeddings', num)
  check_size('Embedding', 'embedding_dim', dim)
  opts = check_opts('Embedding', opts, { padding_idx = true, dtype = true })
  self.num_embeddings, self.embedding_dim = num, dim
  local pad = opts.padding_idx
  if pad ~= nil then
    if math.type(pad) ~= 'integer' or pad == 0 or pad > num or pad < -num then
      error(('Embedding: padding_idx must be an id in 1..%d (or -1..-%d), got %s')
        :format(num, num, tostring(pad)), 2)
    end
    if pad < 0 then pad = num + 1 + pad end
    self.padding_idx = pad
  end
  local w = usagi.randn(num, dim, { dtype = opts.dtype or 'f32' })
  if pad then w[pad]:zero_() end
  self:register_parameter('weight', w)
end

function Embedding:forward(ids)
  local out = usagi.embedding(self.weight, ids)
  if self.padding_idx then
    out = out * ids:ne(self.padding_idx):to(self.weight:dtype()):unsqueeze(-1)
  end
  return out
end

function Embedding:extra_repr()
  return ('%d, %d'):format(self.num_embeddings, self.embedding_dim) ..
    (self.padding_idx and (', padding_idx=%d'):format(self.padding_idx) or '')
end

-- nn.Dropout(p = 0.5): inverted dropout while training, identity in eval.
local Dropout = Module:extend 'Dropout'
nn.Dropout = Dropout

function Dropout:__init(p)
  Module.__init(self)
  p = p == nil and 0.5 or p
  if type(p) ~= 'number' or not (p >= 0 and p < 1) then
    error('Dropout: p must be a number in [0, 1), got ' .. tostring(p), 3)
  end
  self.p = p
end

function Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return (usagi.dropout(x, self.p, true))
end

function Dropout:extra_repr() return 'p=' .. self.p end

-- ==== Activations ========================================================

local function activation(name, f)
  local cls = Module:extend(name)
  function cls:forward(x) return f(x) end
  nn[name] = cls
  return cls
end

-- nn.Identity(): returns its input
activation('Identity', function(x) return x end)
-- nn.Tanh(): tanh x, elementwise
activation('Tanh', function(x) return x:tanh() end)
-- nn.Sigmoid(): 1 / (1 + e^-x), elementwise
activation('Sigmoid', function(x) return x:sigmoid() end)
-- nn.ReLU(): max(x, 0), elementwise
activation('ReLU', function(x) return x:relu() end)

-- nn.Softmax(dim) and nn.LogSoftmax(dim): dim defaults to the last.
for _, name in ipairs { 'Softmax', 'LogSoftmax' } do
  local f = name == 'Softmax' and usagi.softmax or usagi.log_softmax
  local cls = Module:extend(name)
  function cls:__init(dim)
    Module.__init(self)
    if dim ~= nil and math.type(dim) ~= 'integer' then
      error(name .. ': dim must be an integer, got ' .. tostring(dim), 3)
    end
    self.dim = dim
  end
  function cls:forward(x) return f(x, self.dim) end
  function cls:extra_repr() return self.dim and 'dim=' .. self.dim or '' end
  nn[name] = cls
end

-- ==== Functional forms and criterions ====================================

nn.linear, nn.softmax, nn.log_softmax = usagi.linear, usagi.softmax, usagi.log_softmax
nn.mse_loss, nn.bce_loss, nn.bce_with_logits = usagi.mse_loss, usagi.bce_loss, usagi.bce_with_logits
nn.embedding = usagi.embedding

-- Class losses take scores (N, C) with targets (N); time-major scores
-- (T, B, C) with targets (T, B) are flattened to (T*B, C), and a single
-- sample (C) with a 0-dim or (1) target is taken as a batch of one.
-- reduction = 'none' gives the loss in the targets' shape.
local function class_loss(f)
  -- nn.cross_entropy(x, target [, opts]) and nn.nll_loss: usagi's, taking
  -- (N, C) with (N), (T, B, C) with (T, B), or (C) with one target
  return function(x, target, opts)
    if not usagi.is_tensor(x) or not usagi.is_tensor(target) or (x:dim() == 2) then
      return f(x, target, opts)
    end
    local tshape = target:size()
    local c = x:size(-1)
    x = x:reshape(-1, c)
    target = target:reshape(-1)
    if opts and opts.mask then
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.mask = opts.mask:reshape(-1)
      opts = o
    end
    local out = f(x, target, opts)
    if opts and opts.reduction == 'none' then out = out:view(tshape) end
    return out
  end
end

nn.cross_entropy = class_loss(usagi.cross_entropy)
nn.nll_loss = class_loss(usagi.nll_loss)

local function criterion(name, f, known)
  local cls = Module:extend(name)
  function cls:__init(opts)
    Module.__init(self)
    self.opts = check_opts(name, opts, known)
  end
  function cls:forward(input, target) return f(input, target, self.opts) end
  function cls:extra_repr()
    local parts = {}
    for _, k in ipairs(sorted_keys(self.opts)) do
      if not usagi.is_tensor(self.opts[k]) then parts[#parts + 1] = k .. '=' .. tostring(self.opts[k]) end
    end
    return table.concat(parts, ', ')
  end
  nn[name] = cls
end

local CLASS_OPTS = { reduction = true, ignore_index = true, mask = true }
local POINT_OPTS = { reduction = true }
-- nn.CrossEntropyLoss([{reduction, ignore_index, mask}]): crit(scores, target)
-- is nn.cross_entropy, -log softmax(scores)[target] (Torch7: CrossEntropyCriterion)
criterion('CrossEntropyLoss', nn.cross_entropy, CLASS_OPTS)
-- nn.NLLLoss([{reduction, ignore_index, mask}]): crit(logp, target) is
-- nn.nll_loss, -logp[target] (Torch7: ClassNLLCriterion)
criterion('NLLLoss', nn.nll_loss, CLASS_OPTS)
-- nn.MSELoss([{reduction}]): crit(x, y), the mean squared error (Torch7: MSECriterion)
criterion('MSELoss', usagi.mse_loss, POINT_OPTS)
-- nn.BCELoss([{reduction}]): crit(p, y), binary cross-entropy of
-- probabilities (Torch7: BCECriterion)
criterion('BCELoss', usagi.bce_loss, POINT_OPTS)
-- nn.BCEWithLogitsLoss([{reduction}]): crit(z, y) = BCELoss(sigmoid(z), y),
-- computed stably
criterion('BCEWithLogitsLoss', usagi.bce_with_logits, POINT_OPTS)

-- Torch7's names for the same classes.
nn.SoftMax, nn.LogSoftMax = nn.Softmax, nn.LogSoftmax
nn.CrossEntropyCriterion, nn.ClassNLLCriterion = nn.CrossEntropyLoss, nn.NLLLoss
nn.MSECriterion, nn.BCECriterion = nn.MSELoss, nn.BCELoss

return nn
