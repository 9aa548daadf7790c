-- usagi.nn -- modules, containers, layers, activations and criterions, with
-- PyTorch's semantics and Torch7's names:
--
--   local nn = require 'usagi.nn'
--   local model = nn.Sequential { nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1) }
--   local loss = nn.BCEWithLogitsLoss()(model(x), y)
--   print(model)                        -- the module tree with parameter counts
--
-- The math is in the usagi ops (usagi.linear, usagi.cross_entropy, ...),
-- which record themselves for autograd; nothing here loops over elements.
-- The layers, activations and criterions are in scripts/usagi/nn_layers.lua,
-- the initialisers (nn.init) in scripts/usagi/nn_init.lua.
--
-- ==== Writing a module (plugins do it this way too) ======================
--
--   local Scale = nn.Module:extend 'Scale'          -- a class named Scale
--   function Scale:__init(n)
--     nn.Module.__init(self)                         -- always first
--     self:register_parameter('weight', usagi.ones(n))
--     self.inner = nn.Linear(n, n)                   -- a child, registered by assignment
--   end
--   function Scale:forward(x) return self.inner(x) * self.weight end
--   function Scale:extra_repr() return 'n=' .. self.weight:numel() end  -- optional
--
--   local m = Scale(3)                               -- calling the class constructs
--   m(x)                                             -- calling an instance = m:forward(x)
--
-- A class is a table whose instances have it as metatable; Class.super is
-- the parent and Class.__name the name printed by tostring. Subclasses of
-- subclasses work the same way (nn.Linear:extend 'MyLinear').
--
-- Parameters are registered explicitly (register_parameter makes them
-- require grad); a Module assigned to a new field of a module becomes a
-- child. Both live in ordinary fields (self.weight, self.inner), which are
-- the truth: reassigning self.weight later replaces the parameter. Names are
-- kept in registration order, so parameters() and state_dict() are
-- deterministic. Sequential children are named '1', '2', ... and are also
-- model[1], model[2].
local usagi = require 'usagi'

local nn = {}

-- ==== Classes ============================================================

-- Metamethods are looked up raw in the metatable, so each class carries
-- its own copy of the ones its parent defines.
local METAMETHODS = { '__call', '__tostring', '__newindex', '__concat', '__eq', '__close' }

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  self:__init(...)
  return self
end

local Module = { __name = 'Module' }
Module.__index = Module
setmetatable(Module, { __call = construct, __tostring = function() return 'nn.Module' end })
nn.Module = Module

-- Cls:extend 'Name' -> a new class inheriting from Cls
function Module.extend(parent, name)
  assert(type(name) == 'string', 'extend: the class needs a name, as Module:extend \'Name\'')
  local cls = { __name = name, super = parent }
  for _, k in ipairs(METAMETHODS) do cls[k] = rawget(parent, k) end
  cls.__index = cls
  return setmetatable(cls, {
    __index = parent, __call = construct, __tostring = function() return 'nn.' .. name end,
  })
end

-- true when v is a Module instance (of any class)
function nn.is_module(v)
  local mt = getmetatable(v)
  while type(mt) == 'table' do
    if mt == Module then return true end
    mt = rawget(mt, 'super')
  end
  return false
end

-- ==== Module =============================================================

-- A name ('weight', '1') -> the field holding it (1 for '1', so Sequential
-- children are model[1]).
local function key_of(name) return math.tointeger(tonumber(name)) or name end

local function check_name(fn, name)
  if type(name) ~= 'string' and math.type(name) ~= 'integer' then
    error(('%s: name must be a string, got %s'):format(fn, type(name)), 3)
  end
  name = tostring(name)
  if name == '' or name:find('.', 1, true) then
    error(('%s: name must be non-empty and without dots, got "%s"'):format(fn, name), 3)
  end
  return name
end

-- The name list `field` of a module, or an error when __init was skipped.
local function names_of(self, field, fn)
  local list = rawget(self, field)
  if not list then
    error(('%s: the module is not initialised; call nn.Module.__init(self) first in __init')
      :format(fn), 3)
  end
  return list
end

local function add_name(list, name)
  for _, n in ipairs(list) do if n == name then return end end
  list[#list + 1] = name
end

-- nn.Module: the base of every layer. A subclass (nn.Module:extend 'Name')
-- registers parameters and children in __init and computes in forward;
-- m(x) calls m:forward(x). See the top of scripts/usagi/nn.lua.
function Module:__init()
  rawset(self, '_param_names', {})
  rawset(self, '_buffer_names', {})
  rawset(self, '_module_names', {})
  rawset(self, 'training', true)
end

-- Assigning a Module to a new field registers it as a child.
function Module:__newindex(k, v)
  if nn.is_module(v) and type(k) == 'string' and rawget(self, '_module_names') then
    self:add_module(k, v)
  else
    rawset(self, k, v)
  end
end

function Module:__call(...) return self:forward(...) end

-- forward(...): what calling the module computes; every layer defines it
-- (m(x) is m:forward(x)).
function Module:forward()
  error(tostring(getmetatable(self).__name) .. ': forward is not implemented', 2)
end

-- register_parameter(name, t): t (a float tensor, or nil for an absent
-- optional parameter such as a disabled bias) becomes a parameter; it is
-- made to require grad. Returns t.
function Module:register_parameter(name, t)
  name = check_name('register_parameter', name)
  if t ~= nil and not usagi.is_tensor(t) then
    error(('register_parameter: %s must be a tensor or nil, got %s'):format(name, type(t)), 2)
  end
  if t ~= nil and not t:requires_grad() then t:requires_grad(true) end
  add_name(names_of(self, '_param_names', 'register_parameter'), name)
  rawset(self, key_of(name), t)
  return t
end

-- register_buffer(name, t): state that is saved in state_dict but not
-- trained (running statistics, masks). Returns t.
function Module:register_buffer(name, t)
  name = check_name('register_buffer', name)
  if t ~= nil and not usagi.is_tensor(t) then
    error(('register_buffer: %s must be a tensor or nil, got %s'):format(name, type(t)), 2)
  end
  add_name(names_of(self, '_buffer_names', 'register_buffer'), name)
  rawset(self, key_of(name), t)
  return t
end

-- add_module(name, m): register m as a child under name (assigning a
-- module to a new field does the same); returns m.
function Module:add_module(name, m)
  name = check_name('add_module', name)
  if m ~= nil and not nn.is_module(m) then
    error(('add_module: %s must be an nn.Module, got %s'):format(name, type(m)), 2)
  end
  add_name(names_of(self, '_module_names', 'add_module'), name)
  rawset(self, key_of(name), m)
  return m
end

-- {{name, child}, ...} of the direct children, in order
function Module:named_children()
  local out = {}
  for _, name in ipairs(self._module_names) do
    local m = self[key_of(name)]
    if m ~= nil then out[#out + 1] = { name, m } end
  end
  return out
end

-- {child, ...}: the direct children, in order
function Module:children()
  local out = {}
  for _, p in ipairs(self:named_children()) do out[#out + 1] = p[2] end
  return out
end

-- {{'', self}, {'1', child}, {'1.fc', grandchild}, ...}, each module once
function Module:named_modules()
  local out, seen = {}, {}
  local function walk(m, prefix)
    if seen[m] then return end
    seen[m] = true
    out[#out + 1] = { prefix, m }
    for _, c in ipairs(m:named_children()) do
      walk(c[2], prefix == '' and c[1] or prefix .. '.' .. c[1])
    end
  end
  walk(self, '')
  return out
end

-- {self, child, grandchild, ...}: every module of the tree once
function Module:modules()
  local out = {}
  for _, p in ipairs(self:named_modules()) do out[#out + 1] = p[2] end
  return out
end

-- {{'1.weight', t}, ...}: own parameters first, then the children's, each
-- tensor once (a shared weight is listed under its first name).
local function named_tensors(self, list_field)
  local out, seen = {}, {}
  for _, nm in ipairs(self:named_modules()) do
    local prefix, m = nm[1], nm[2]
    for _, name in ipairs(m[list_field]) do
      local t = m[key_of(name)]
      if t ~= nil and not seen[t] then
        seen[t] = true
        out[#out + 1] = { prefix == '' and name or prefix .. '.' .. name, t }
      end
    end
  end
  return out
end

-- {{'weight', t}, {'1.bias', t}, ...}: every parameter of the tree with its dotted name
function Module:named_parameters() return named_tensors(self, '_param_names') end
-- {{name, t}, ...}: every buffer of the tree with its dotted name
function Module:named_buffers() return named_tensors(self, '_buffer_names') end

-- {t, ...}: every parameter of the tree, in registration order (what an
-- optimizer takes)
function Module:parameters()
  local out = {}
  for _, p in ipairs(self:named_parameters()) do out[#out + 1] = p[2] end
  return out
end

-- the number of trained numbers: the sum of numel over parameters()
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

-- apply(fn): fn(m) for every module, children before parents (as PyTorch,
-- e.g. to initialise all Linear layers); returns self
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

-- train(mode = true) / eval(): set .training on the whole tree; returns self
function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m, 'training', mode and true or false) end
  return self
end

-- eval(): train(false), for evaluation (dropout off); returns self
function Module:eval() return self:train(false) end

-- zero_grad(set_to_none = true): drop the gradients (or fill them with 0)
function Module:zero_grad(set_to_none)
  for _, p in ipairs(self:parameters()) do
    if set_to_none == false then
      local g = p.grad
      if g then g:zero_() end
    else
      p.grad = nil
    end
  end
end

-- ==== State ==============================================================

-- name -> tensor for every parameter and buffer. The tensors are detached
-- views of the module's own storage (as PyTorch's references): clone them
-- to keep a snapshot.
function Module:state_dict()
  local sd = {}
  for _, p in ipairs(self:named_parameters()) do sd[p[1]] = p[2]:detach() end
  for _, b in ipairs(self:named_buffers()) do sd[b[1]] = b[2]:detach() end
  return sd
end

local sorted_keys = require('usagi.util').sorted_keys

-- load_state_dict(sd [, strict = true]): copy the tensors of sd into the
-- parameters and buffers of the same names. Everything is checked before
-- anything is copied: a shape mismatch is always an error; missing and
-- unexpected keys are errors when strict, else returned as
-- {missing = {...}, unexpected = {...}}.
function Module:load_state_dict(sd, strict)
  if type(sd) ~= 'table' then
    error('load_state_dict: state_dict must be a table of name -> tensor, got ' .. type(sd), 2)
  end
  if strict == nil then strict = true end
  local own, missing, unexpected, bad = {}, {}, {}, {}
  for _, list in ipairs { self:named_parameters(), self:named_buffers() } do
    for _, nt in ipairs(list) do
      local name, t = nt[1], nt[2]
      own[name] = t
      local src = sd[name]
      if src == nil then
        missing[#missing + 1] = name
      elseif not usagi.is_tensor(src) then
        bad[#bad + 1] = ('%s: expected a tensor, got %s'):format(name, type(src))
      elseif src:size() ~= t:size() then
        bad[#bad + 1] = ('size mismatch for %s: expected %s, got %s')
          :format(name, tostring(t:size()), tostring(src:size()))
      end
    end
  end
  for _, k in ipairs(sorted_keys(sd)) do
    if own[k] == nil then unexpected[#unexpected + 1] = k end
  end
  local problems = {}
  for _, b in ipairs(bad) do problems[#problems + 1] = b end
  if strict and #missing > 0 then
    problems[#problems + 1] = 'missing keys: ' .. table.concat(missing, ', ')
  end
  if strict and #unexpected > 0 then
    problems[#problems + 1] = 'unexpected keys: ' .. table.concat(unexpected, ', ')
  end
  if #problems > 0 then
    error('load_state_dict: ' .. table.concat(problems, '; '), 2)
  end
  usagi.no_grad(function()
    for name, t in pairs(own) do
      if sd[name] ~= nil then t:copy_(sd[name]) end
    end
  end)
  return { missing = missing, unexpected = unexpected }
end

-- ==== Printing ===========================================================

local function count_params(list)
  local n = 0
  for _, p in ipairs(list) do n = n + p[2]:numel() end
  return n
end

local function fmt_count(n)
  local s = tostring(n):reverse():gsub('(%d%d%d)', '%1,'):reverse()
  return (s:gsub('^,', ''))
end

-- PyTorch's repr, with the parameter count of each module that has any:
--   Sequential(                                        -- 33 params
--     (1): Linear(in_features=2, out_features=8, bias=true)  -- 24 params
--     (2): Tanh()
--   )
function Module:__tostring()
  local function render(m, indent)
    local name = tostring(getmetatable(m).__name)
    local extra = m.extra_repr and m:extra_repr() or ''
    local n = count_params(m:named_parameters())
    local note = n > 0 and ('  -- %s param%s'):format(fmt_count(n), n == 1 and '' or 's') or ''
    local kids = m:named_children()
    if #kids == 0 then return name .. '(' .. extra .. ')' .. note end
    local lines = { name .. '(' .. extra .. note }
    for _, c in ipairs(kids) do
      lines[#lines + 1] = indent .. '  (' .. c[1] .. '): ' .. render(c[2], indent .. '  ')
    end
    lines[#lines + 1] = indent .. ')'
    return table.concat(lines, '\n')
  end
  return render(self, '')
end

-- extra_repr() -> the text inside Name(...) when the module prints; a
-- layer overrides it to show its sizes
function Module:extra_repr() return '' end

-- ==== Containers =========================================================

-- nn.Sequential { m1, m2, ... } or nn.Sequential():add(m1):add(m2).
-- forward passes all values each module returns to the next one.
local Sequential = Module:extend 'Sequential'
nn.Sequential = Sequential

function Sequential:__init(list)
  Module.__init(self)
  if list ~= nil and type(list) ~= 'table' then
    error('Sequential: expected a list of modules, got ' .. type(list), 3)
  end
  for i, m in ipairs(list or {}) do
    if not nn.is_module(m) then
      error(('Sequential: element %d must be an nn.Module, got %s'):format(i, type(m)), 3)
    end
    self:add(m)
  end
end

-- seq:add(m) -> seq, with m appended as the next child
function Sequential:add(m)
  if not nn.is_module(m) then error('Sequential.add: expected an nn.Module, got ' .. type(m), 2) end
  self:add_module(tostring(#self._module_names + 1), m)
  return self
end

function Sequential:forward(...)
  local mods = self:children()
  local function chain(i, ...)
    if i > #mods then return ... end
    return chain(i + 1, mods[i](...))
  end
  return chain(1, ...)
end

-- nn_layers adds its classes to this table, found through package.loaded.
package.loaded['usagi.nn'] = nn
require 'usagi.nn_layers'

nn.init = require 'usagi.nn_init'

-- The classes of the plugins load on first use, as PyTorch's are simply
-- there: nn.LSTM requires usagi.lstm, whose face registers its classes in
-- this table, so no script or prompt needs a require first (an explicit
-- require still works and loads nothing twice). The REPL's completion and
-- help() read the names from the metatable's __lazy before anything loads.
local on_demand = {
  RNN = 'usagi.rnn', LSTM = 'usagi.lstm', LSTMCell = 'usagi.lstm', GRU = 'usagi.gru',
  GRUCell = 'usagi.gru', Attention = 'usagi.attention', MultiheadAttention = 'usagi.attention',
  Seq2Seq = 'usagi.seq2seq', HRED = 'usagi.seq2seq', GaussianLatent = 'usagi.vae',
  VAE = 'usagi.vae', Autoencoder = 'usagi.vae',
}
setmetatable(nn, {
  __lazy = on_demand,
  __index = function(t, k)
    local mod = on_demand[k]
    if not mod then return nil end
    require(mod)
    return rawget(t, k)
  end,
})

return nn
