-- usagi.recurrent -- what the Lua faces of the recurrent plugins (nn.RNN,
-- nn.LSTM, nn.GRU and their cells) share: option checks whose errors name
-- the class and point at the caller of the constructor, PyTorch's uniform
-- initialisation, and the carried state of truncated BPTT.
local usagi = require 'usagi'

local R = {}

-- Errors raised here name the class and point at the caller of nn.X(...):
-- level 5 from a helper called in __init (error, the helper, __init, the
-- class's constructor, the caller).
function R.fail(class, msg, level) error(class .. ': ' .. msg, level or 5) end

function R.check_size(class, what, v)
  if math.type(v) ~= 'integer' or v < 1 then
    R.fail(class, ('%s must be a positive integer, got %s'):format(what, tostring(v)))
  end
end

-- opts (nil or a table) checked against `known` (a set of option names).
function R.check_opts(class, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then R.fail(class, 'options must be a table, got ' .. type(opts)) end
  for k in pairs(opts) do
    if not known[k] then R.fail(class, ("unknown option '%s'"):format(tostring(k))) end
  end
  if opts.batch_first then R.fail(class, 'batch_first is not supported: sequences are time-major (T, B, I)') end
  if opts.bidirectional then
    R.fail(class, 'bidirectional is not there yet (modules/birnn); run a second one on the reversed sequence')
  end
  return opts
end

function R.check_dropout(class, p)
  p = p or 0
  if type(p) ~= 'number' or not (p >= 0 and p < 1) then
    R.fail(class, ('dropout must be a number in [0, 1), got %s'):format(tostring(p)))
  end
  return p
end

-- A drawer of U(-1/√H, 1/√H) tensors, PyTorch's init for its recurrent
-- layers, from the run's generator.
function R.uniform(H, dtype)
  local k = 1 / math.sqrt(H)
  return function(shape) return usagi.rand(shape, { lo = -k, hi = k, dtype = dtype or 'f32' }) end
end

-- With carry = true a module starts each forward from its previous final
-- states (detached) unless the caller gives some; they live in the fields
-- `names` ({'h'}, or {'h', 'c'}). carried returns them, or nil; an input
-- whose batch differs is an error, at the caller of forward, that says to
-- reset. keep stores the new ones, reset forgets them.
function R.carried(self, class, x, names)
  local first = rawget(self, names[1])
  if not (self.carry and first) then return nil end
  if usagi.is_tensor(x) and x:dim() == 3 and x:size(2) ~= first:size(2) then
    error(('%s: the carried state is for batches of %d, this input %s has %d; call :reset() first')
      :format(class, first:size(2), tostring(x:size()), x:size(2)), 3)
  end
  local out = {}
  for i, n in ipairs(names) do out[i] = rawget(self, n) end
  return out
end

function R.keep(self, names, ...)
  if not self.carry then return end
  for i, s in ipairs { ... } do rawset(self, names[i], s:detach()) end
end

function R.reset(self, names)
  for _, n in ipairs(names) do rawset(self, n, nil) end
  return self
end

-- A cell's step input (B, n): an error at the caller of forward otherwise.
function R.check_step(class, t, n, what)
  if not usagi.is_tensor(t) or t:dim() ~= 2 then
    error(('%s: %s must be (B, %d), got %s'):format(class, what, n,
      usagi.is_tensor(t) and tostring(t:size()) or type(t)), 3)
  end
end

-- Calls op(...) and raises its error at the caller of forward (the
-- forward that calls this is level 2).
function R.call(op, ...)
  local r = table.pack(pcall(op, ...))
  if not r[1] then error(r[2], 3) end
  return table.unpack(r, 2, r.n)
end

return R
