-- usagi.nn_init -- the initialisers of nn.init, as torch.nn.init: each fills
-- a tensor in place from the run's generator (usagi.manual_seed), records
-- nothing for autograd, and returns the tensor.
--
--   nn.init.xavier_uniform_(layer.weight, nn.init.calculate_gain('tanh'))
--   nn.init.kaiming_normal_(w, { nonlinearity = 'relu' })
--   nn.init.orthogonal_(rnn.weight_hh)
--
-- Fans follow PyTorch: for a (out, in, k...) tensor, fan_in = in * prod(k),
-- fan_out = out * prod(k).
local usagi = require 'usagi'

local init = {}

local function check_tensor(fn, t)
  if not usagi.is_tensor(t) then
    error(('%s: expected a tensor, got %s'):format(fn, type(t)), 3)
  end
  if t:dtype() == 'i32' then error(fn .. ': the tensor must be f32 or f64, got i32', 3) end
end

-- Run f(t) without recording, so parameters that require grad can be filled.
local function fill(fn, t, f)
  check_tensor(fn, t)
  usagi.no_grad(f, t)
  return t
end

-- fan_in, fan_out of a tensor with at least two dims
function init.calculate_fan_in_and_fan_out(t, fn)
  fn = fn or 'calculate_fan_in_and_fan_out'
  if t:dim() < 2 then
    error(('%s: fans need a tensor with at least 2 dims, got %s'):format(fn, tostring(t:size())), 3)
  end
  local receptive = 1
  for d = 3, t:dim() do receptive = receptive * t:size(d) end
  return t:size(2) * receptive, t:size(1) * receptive
end

-- The recommended gain for a nonlinearity (torch.nn.init.calculate_gain).
function init.calculate_gain(nonlinearity, param)
  local linear = { linear = 1, identity = 1, sigmoid = 1, conv1d = 1, conv2d = 1, conv3d = 1 }
  if linear[nonlinearity] then return 1 end
  if nonlinearity == 'tanh' then return 5 / 3 end
  if nonlinearity == 'relu' then return math.sqrt(2) end
  if nonlinearity == 'selu' then return 3 / 4 end
  if nonlinearity == 'leaky_relu' then
    local slope = param == nil and 0.01 or param
    if type(slope) ~= 'number' then
      error('calculate_gain: negative_slope must be a number, got ' .. type(slope), 2)
    end
    return math.sqrt(2 / (1 + slope * slope))
  end
  error(('calculate_gain: unsupported nonlinearity \'%s\' (expected linear, sigmoid, tanh, '
    .. 'relu, leaky_relu or selu)'):format(tostring(nonlinearity)), 2)
end

-- uniform_(t [, a = 0, b = 1]) -> t filled from U(a, b), in place
function init.uniform_(t, a, b)
  a, b = a or 0, b or 1
  return fill('uniform_', t, function(x) x:uniform_(a, b) end)
end

-- normal_(t [, mean = 0, std = 1]) -> t filled from N(mean, std^2), in place
function init.normal_(t, mean, std)
  mean, std = mean or 0, std or 1
  return fill('normal_', t, function(x) x:normal_(mean, std) end)
end

-- constant_(t, v) -> t filled with v
function init.constant_(t, v)
  if type(v) ~= 'number' then error('constant_: the value must be a number, got ' .. type(v), 2) end
  return fill('constant_', t, function(x) x:fill_(v) end)
end

-- zeros_(t) -> t filled with 0
function init.zeros_(t) return fill('zeros_', t, function(x) x:zero_() end) end
-- ones_(t) -> t filled with 1
function init.ones_(t) return fill('ones_', t, function(x) x:fill_(1) end) end

-- Glorot & Bengio (2010): U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))
function init.xavier_uniform_(t, gain)
  check_tensor('xavier_uniform_', t)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t, 'xavier_uniform_')
  local a = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return init.uniform_(t, -a, a)
end

-- N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out))
function init.xavier_normal_(t, gain)
  check_tensor('xavier_normal_', t)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t, 'xavier_normal_')
  return init.normal_(t, 0, (gain or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

-- He et al. (2015): std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a);
-- opts {a = 0, mode = 'fan_in' | 'fan_out', nonlinearity = 'leaky_relu'}
-- (with a = 0 the gain is sqrt(2), as for relu).
local function kaiming_std(fn, t, opts)
  check_tensor(fn, t)
  opts = opts or {}
  if type(opts) ~= 'table' then error(fn .. ': options must be a table, got ' .. type(opts), 3) end
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t, fn)
  local mode = opts.mode or 'fan_in'
  if mode ~= 'fan_in' and mode ~= 'fan_out' then
    error(('%s: mode must be \'fan_in\' or \'fan_out\', got %s'):format(fn, tostring(mode)), 3)
  end
  local gain = init.calculate_gain(opts.nonlinearity or 'leaky_relu', opts.a or 0)
  return gain / math.sqrt(mode == 'fan_in' and fan_in or fan_out)
end

-- kaiming_uniform_(t [, {a, mode, nonlinearity}]) -> t from U(-b, b),
-- b = sqrt(3) std with He et al.'s std (above)
function init.kaiming_uniform_(t, opts)
  local bound = math.sqrt(3) * kaiming_std('kaiming_uniform_', t, opts)
  return init.uniform_(t, -bound, bound)
end

-- kaiming_normal_(t [, {a, mode, nonlinearity}]) -> t from N(0, std^2),
-- He et al.'s std (above)
function init.kaiming_normal_(t, opts)
  return init.normal_(t, 0, kaiming_std('kaiming_normal_', t, opts))
end

-- Saxe et al. (2013): the Q of a QR decomposition of a normal matrix
-- (rows = size(1), cols = the rest), with R's diagonal made positive, times
-- gain. Q comes from Gram-Schmidt run twice per column (CGS2, as accurate
-- as Householder for this) in f64 over the columns of the tall orientation;
-- each column's projections are one matrix-vector product.
function init.orthogonal_(t, gain)
  check_tensor('orthogonal_', t)
  if t:dim() < 2 then
    error('orthogonal_: the tensor needs at least 2 dims, got ' .. tostring(t:size()), 2)
  end
  local rows = t:size(1)
  local cols = t:numel() // rows
  if rows == 0 or cols == 0 then return t end
  usagi.no_grad(function()
    local a = usagi.randn(rows, cols, { dtype = 'f64' })
    if rows < cols then a = a:t():contiguous() end            -- (m, n), m >= n
    local m, n = a:size(1), a:size(2)
    local q = usagi.zeros(m, n, { dtype = 'f64' })
    for j = 1, n do
      local v = a:select(2, j):clone():view(m, 1)              -- (m, 1)
      if j > 1 then
        local qj = q:narrow(2, 1, j - 1)                       -- (m, j-1)
        for _ = 1, 2 do v = v - qj:mm(qj:t():mm(v)) end
      end
      local norm = v:norm()
      if type(norm) ~= 'number' then norm = norm:item() end
      if norm == 0 then error('orthogonal_: the random matrix was rank deficient', 0) end
      q:select(2, j):copy_((v / norm):view(m))
    end
    if rows < cols then q = q:t() end
    t:copy_(q:reshape(t:size()) * (gain or 1))
  end)
  return t
end

return init
