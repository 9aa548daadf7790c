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
  if opts.batch_first ~= nil and type(opts.batch_first) ~= 'boolean' then
    R.fail(class, 'batch_first must be true or false, got ' .. type(opts.batch_first))
  end
  if opts.merge ~= nil and opts.merge ~= 'concat' and opts.merge ~= 'sum' then
    R.fail(class, ("merge must be 'concat' or 'sum', got '%s'"):format(tostring(opts.merge)))
  end
  if opts.bidirectional and opts.carry then
    R.fail(class, 'carry does not go with bidirectional: the reverse direction starts at the end')
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

-- The carried states as a table {h =, c =} (empty after a reset), and
-- putting such a table back: what a run's checkpoint keeps of a module
-- whose state crosses the steps of a training loop (usagi.run, carry).
function R.get_carried(self, names)
  local out = {}
  for _, n in ipairs(names) do out[n] = rawget(self, n) end
  return out
end

function R.set_carried(self, names, s)
  for _, n in ipairs(names) do rawset(self, n, s and s[n] or nil) end
  return self
end

-- A cell's step input (B, n): an error at the caller of forward otherwise.
function R.check_step(class, t, n, what)
  if not usagi.is_tensor(t) or t:dim() ~= 2 then
    error(('%s: %s must be (B, %d), got %s'):format(class, what, n,
      usagi.is_tensor(t) and tostring(t:size()) or type(t)), 3)
  end
end

-- The layers' parameters: register(self, suffix, input_size, H) for each
-- layer l (suffix '_l<l>') and, when bidirectional, its reverse direction
-- ('_l<l>_reverse'), in PyTorch's order. Layer l > 0 reads H features, or
-- 2H when the two directions are concatenated.
function R.register_layers(self, input_size, H, opts, register)
  self.bidirectional = opts.bidirectional and true or false
  self.batch_first = opts.batch_first and true or false
  self.merge = opts.merge or 'concat'
  local width = self.bidirectional and self.merge == 'concat' and 2 * H or H
  for l = 0, self.num_layers - 1 do
    local n = l == 0 and input_size or width
    register(self, '_l' .. l, n, H)
    if self.bidirectional then register(self, '_l' .. l .. '_reverse', n, H) end
  end
end

-- The forward of a bidirectional module: run(l, suffix, x, init, lengths)
-- runs one direction of layer l (its weights are the ones with `suffix`)
-- and returns its output and final states (1, B, H); states lists the
-- initial states given (each nil or (2L, B, H)), names them for errors.
-- See modules/birnn.
function R.bidirectional(self, class, x, states, names, lengths, run)
  local L2 = 2 * self.num_layers
  for k = 1, #names do
    local s = states[k]
    if s ~= nil and not (usagi.is_tensor(s) and s:dim() == 3 and s:size(1) == L2) then
      error(('%s: %s must be (2 * num_layers, B, H) = (%d, B, %d) for a bidirectional net, got %s')
        :format(class, names[k], L2, self.hidden_size, usagi.is_tensor(s) and tostring(s:size()) or type(s)), 3)
    end
  end
  local birnn = require 'usagi.birnn'
  return birnn.stack(x, states, lengths, {
    layers = self.num_layers, states = #names, merge = self.merge,
    dropout = self.training and self.dropout or 0, run = run,
  })
end

-- batch_first = true, as PyTorch: the input and the output are (B, T, F)
-- and the states stay (layers, B, H). The fused ops run time-major, so the
-- input goes in as a transposed view (the op makes it contiguous) and the
-- output comes back as one; autograd sees two transposes. time_major(self,
-- class, x) is the input the op takes; batch_major(self, out) the output
-- the caller gets.
function R.time_major(self, class, x)
  if not self.batch_first then return x end
  if not (usagi.is_tensor(x) and x:dim() == 3) then
    error(('%s: input must be (B, T, %d) with batch_first, got %s'):format(class, self.input_size,
      usagi.is_tensor(x) and tostring(x:size()) or type(x)), 3)
  end
  return x:transpose(1, 2)
end

function R.batch_major(self, out)
  if self.batch_first then return out:transpose(1, 2) end
  return out
end

-- The lengths of a batch as the ops take them: an i32 tensor (B); a Lua
-- list of integers is converted. nil stays nil.
function R.lengths(v)
  if v == nil or usagi.is_tensor(v) then return v end
  if type(v) == 'table' then return usagi.tensor(v, { dtype = 'i32' }) end
  return v                                        -- the op names the bad type
end

-- Calls op(...) and raises its error at the caller of forward (the
-- forward that calls this is level 2).
function R.call(op, ...)
  local r = table.pack(pcall(op, ...))
  if not r[1] then error(r[2], 3) end
  return table.unpack(r, 2, r.n)
end

return R
