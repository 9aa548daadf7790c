-- usagi.optim -- optimizers, gradient clipping and learning-rate schedules,
-- with PyTorch 1.13's semantics:
--
--   local optim = require 'usagi.optim'
--   local opt = optim.Adam(model:parameters(), { lr = 1e-3 })
--   local sched = optim.StepLR(opt, { step_size = 10, gamma = 0.5 })
--   opt:zero_grad(); loss:backward()
--   optim.clip_grad_norm(model:parameters(), 5); opt:step(); sched:step()
--
-- An optimizer holds param_groups (a list of {params = {...}, lr = ...,
-- ...}; one group unless a list of group tables is given) and per-parameter
-- state ({step = n, exp_avg = tensor, ...}, keyed by the parameter). The
-- update of each parameter is one call into C (host/core/optim.c, through
-- usagi._optim), whose comments give each rule's equations. Parameters
-- without a gradient are skipped and their step count does not advance.
-- Changing group.lr between steps (schedules do) takes effect at the next
-- step.
local usagi = require 'usagi'
local K = usagi._optim

local optim = {}

-- ==== Helpers ============================================================

local sorted_keys = require('usagi.util').sorted_keys

-- A list of tensors from a list, a single tensor, or anything with
-- :parameters() (a Module).
local function tensor_list(fn, params)
  if usagi.is_tensor(params) then return { params } end
  if type(params) == 'table' and type(params.parameters) == 'function' then
    return params:parameters()
  end
  if type(params) ~= 'table' then
    error(('%s: params must be a list of tensors, got %s'):format(fn, type(params)), 3)
  end
  return params
end

local function check_param(fn, p, i)
  if not usagi.is_tensor(p) then
    error(('%s: parameter %d must be a tensor, got %s'):format(fn, i, type(p)), 4)
  end
  if p:dtype() == 'i32' then
    error(('%s: parameter %d must be f32 or f64, got i32'):format(fn, i), 4)
  end
  if not p:is_leaf() then
    error(('%s: parameter %d is the result of an op, not a leaf; optimize leaves '
      .. '(or t:detach():requires_grad(true))'):format(fn, i), 4)
  end
end

-- ==== Optimizer ==========================================================

-- optim.Optimizer: what SGD, Adam, AdamW, Adagrad and RMSprop share:
-- opt = optim.SGD(params, {lr = ...}) with params a list of tensors, a
-- Module, or groups {{params = {...}, lr = ...}, ...}; opt:zero_grad(),
-- opt:step(), opt:minimize(loss [, {clip}]); opt.param_groups[i].lr.
local Optimizer = {}
Optimizer.__index = Optimizer
optim.Optimizer = Optimizer

-- A new optimizer class: name, defaults (every allowed option with its
-- default; nil defaults are listed in `required`), a check of the group's
-- values, and update(self, p, g, state, group).
local function optimizer_class(name, defaults, required, check, update)
  local cls = setmetatable({ __name = name }, { __index = Optimizer })
  cls.__index = cls
  cls.__tostring = Optimizer.__tostring
  cls.defaults, cls.check, cls.update = defaults, check, update

  local function make_group(g, opts, gi)
    local group = {}
    for k, v in pairs(cls.defaults) do group[k] = v end
    for _, src in ipairs { opts, g } do
      for k, v in pairs(src) do
        if k ~= 'params' then
          if cls.defaults[k] == nil and not required[k] then
            error(('%s: unknown option \'%s\' (expected %s)')
              :format(name, tostring(k), table.concat(sorted_keys(cls.defaults), ', ')), 4)
          end
          group[k] = v
        end
      end
    end
    for k in pairs(required) do
      if group[k] == nil then error(('%s: option %s is required'):format(name, k), 4) end
    end
    group.params = {}
    for i, p in ipairs(tensor_list(name, g.params)) do
      check_param(name, p, i)
      group.params[i] = p
    end
    cls.check(group, name)
    return group
  end

  -- cls(params, opts): params a list of tensors, a Module, or a list of
  -- groups {{params = {...}, lr = ...}, ...} whose options override opts.
  setmetatable(cls, {
    __index = Optimizer,
    __call = function(_, params, opts)
      opts = opts or {}
      if type(opts) ~= 'table' then error(name .. ': options must be a table, got ' .. type(opts), 2) end
      local self = setmetatable({ param_groups = {}, state = {} }, cls)
      local list = tensor_list(name, params)
      local grouped = type(list[1]) == 'table' and not usagi.is_tensor(list[1])
      for gi, g in ipairs(grouped and list or { { params = list } }) do
        self.param_groups[gi] = make_group(g, opts, gi)
      end
      local seen = {}
      for _, g in ipairs(self.param_groups) do
        for _, p in ipairs(g.params) do
          if seen[p] then error(name .. ': a parameter appears twice (in one group or in two)', 2) end
          seen[p] = true
        end
      end
      if not next(seen) then error(name .. ': got an empty parameter list', 2) end
      return self
    end,
  })
  optim[name] = cls
  return cls
end

-- step([closure]): one update of every parameter that has a gradient.
-- closure (optional) re-evaluates the loss (with grad mode on) and its
-- value is returned.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then loss = usagi.enable_grad(closure) end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then
        local st = self.state[p]
        if not st then
          st = { step = 0 }
          self.state[p] = st
        end
        st.step = st.step + 1
        self:update(p, g, st, group)
      end
    end
  end
  return loss
end

-- zero_grad(set_to_none = true): drop the gradients (or zero them in place)
function Optimizer:zero_grad(set_to_none)
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      if set_to_none == false then
        local g = p.grad
        if g then g:zero_() end
      else
        p.grad = nil
      end
    end
  end
end

-- opt:minimize(loss [, {clip = max_norm}]) -> loss as a number: the whole
-- training step, zero_grad, loss:backward(), the gradients of this
-- optimizer's parameters clipped to max_norm (optim.clip_grad_norm) when
-- clip is given, step.
function Optimizer:minimize(loss, opts)
  self:zero_grad()
  loss:backward()
  if opts and opts.clip then
    local params = {}
    for _, group in ipairs(self.param_groups) do
      for _, p in ipairs(group.params) do params[#params + 1] = p end
    end
    optim.clip_grad_norm(params, opts.clip)
  end
  self:step()
  return loss:item()
end

function Optimizer:__tostring()
  local lines = { self.__name .. ' (' }
  for gi, g in ipairs(self.param_groups) do
    lines[#lines + 1] = ('  group %d: %d params'):format(gi, #g.params)
    for _, k in ipairs(sorted_keys(g)) do
      if k ~= 'params' then
        local v = g[k]
        if type(v) == 'table' then v = '{' .. table.concat(v, ', ') .. '}' end
        lines[#lines + 1] = ('    %s: %s'):format(k, tostring(v))
      end
    end
  end
  lines[#lines + 1] = ')'
  return table.concat(lines, '\n')
end

-- state_dict() -> {state = {[i] = {step = n, <name> = tensor, ...}},
-- param_groups = {{lr = ..., ..., params = {i, ...}}}}, where i numbers the
-- parameters across groups from 1, as PyTorch. The state tensors are the
-- optimizer's own (references); the hyper-parameters are copies.
function Optimizer:state_dict()
  local sd, i = { state = {}, param_groups = {} }, 0
  for gi, group in ipairs(self.param_groups) do
    local g = { params = {} }
    for k, v in pairs(group) do
      if k ~= 'params' then
        if type(v) == 'table' then v = table.move(v, 1, #v, 1, {}) end
        g[k] = v
      end
    end
    for _, p in ipairs(group.params) do
      i = i + 1
      g.params[#g.params + 1] = i
      local st = self.state[p]
      if st then
        local copy = {}
        for k, v in pairs(st) do copy[k] = v end
        sd.state[i] = copy
      end
    end
    sd.param_groups[gi] = g
  end
  return sd
end

-- load_state_dict(sd): take the step counts and state tensors (copied, in
-- each parameter's dtype) and the groups' hyper-parameters. Everything is
-- checked before anything changes.
function Optimizer:load_state_dict(sd)
  local fn = self.__name .. '.load_state_dict'
  if type(sd) ~= 'table' or type(sd.state) ~= 'table' or type(sd.param_groups) ~= 'table' then
    error(fn .. ': expected a table {state = ..., param_groups = ...} from state_dict()', 2)
  end
  if #sd.param_groups ~= #self.param_groups then
    error(('%s: the state has %d param groups, this optimizer %d')
      :format(fn, #sd.param_groups, #self.param_groups), 2)
  end
  local flat = {}
  for gi, group in ipairs(self.param_groups) do
    local n = type(sd.param_groups[gi].params) == 'table' and #sd.param_groups[gi].params or -1
    if n ~= #group.params then
      error(('%s: group %d has %d params in the state and %d here')
        :format(fn, gi, n, #group.params), 2)
    end
    for _, p in ipairs(group.params) do flat[#flat + 1] = p end
  end
  local new = {}
  for i, st in pairs(sd.state) do
    local p = flat[i]
    if not p then error(('%s: state for parameter %s, which does not exist'):format(fn, tostring(i)), 2) end
    if type(st) ~= 'table' or math.type(st.step) ~= 'integer' or st.step < 0 then
      error(('%s: state %d must have an integer step count'):format(fn, i), 2)
    end
    local copy = {}
    for _, k in ipairs(sorted_keys(st)) do
      local v = st[k]
      if usagi.is_tensor(v) then
        if v:size() ~= p:size() then
          error(('%s: state %d.%s is %s, the parameter is %s')
            :format(fn, i, k, tostring(v:size()), tostring(p:size())), 2)
        end
        v = v:detach():to(p:dtype()):clone()
      end
      copy[k] = v
    end
    new[p] = copy
  end
  for gi, group in ipairs(self.param_groups) do
    local src = sd.param_groups[gi]
    local g = { params = group.params }
    for k, v in pairs(src) do
      if k ~= 'params' then g[k] = type(v) == 'table' and table.move(v, 1, #v, 1, {}) or v end
    end
    self.check(g, fn)
  end
  for gi, group in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi]) do
      if k ~= 'params' then group[k] = type(v) == 'table' and table.move(v, 1, #v, 1, {}) or v end
    end
  end
  self.state = new
end

-- ==== Checks of hyper-parameters =========================================

local function nonneg(name, group, ...)
  for _, k in ipairs { ... } do
    local v = group[k]
    if type(v) ~= 'number' or not (v >= 0) or v == math.huge then
      error(('%s: %s must be a finite number >= 0, got %s'):format(name, k, tostring(v)), 5)
    end
  end
end

local function zeros_like(p) return usagi.zeros_like(p) end

-- ==== SGD ================================================================

-- optim.SGD(params, {lr, momentum = 0, dampening = 0, nesterov = false,
-- weight_decay = 0}), lr required:
-- p = p - lr d_p, with d_p = g + wd p, through a momentum buffer
-- b = mu b + (1 - dampening) d_p when momentum > 0 (Nesterov: d_p + mu b).
optimizer_class('SGD',
  { momentum = 0, dampening = 0, nesterov = false, weight_decay = 0 }, { lr = true },
  function(g, name)
    nonneg(name, g, 'lr', 'momentum', 'dampening', 'weight_decay')
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      error(name .. ': nesterov needs momentum > 0 and dampening = 0', 5)
    end
  end,
  function(_, p, grad, st, group)
    if group.momentum ~= 0 and not st.momentum_buffer then st.momentum_buffer = zeros_like(p) end
    K.sgd_step(p, grad, group.momentum ~= 0 and st.momentum_buffer or nil, st.step, group)
  end)

-- ==== Adam and AdamW =====================================================

local function check_adam(g, name)
  nonneg(name, g, 'lr', 'eps', 'weight_decay')
  local b = g.betas
  if type(b) ~= 'table' or type(b[1]) ~= 'number' or type(b[2]) ~= 'number'
    or not (b[1] >= 0 and b[1] < 1) or not (b[2] >= 0 and b[2] < 1) then
    error(name .. ': betas must be {beta1, beta2} with both in [0, 1)', 5)
  end
end

local function adam_update(decoupled)
  return function(_, p, grad, st, group)
    if not st.exp_avg then
      st.exp_avg, st.exp_avg_sq = zeros_like(p), zeros_like(p)
    end
    if group.amsgrad and not st.max_exp_avg_sq then st.max_exp_avg_sq = zeros_like(p) end
    K.adam_step(p, grad, st.exp_avg, st.exp_avg_sq, group.amsgrad and st.max_exp_avg_sq or nil,
      st.step, group, decoupled)
  end
end

-- optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8,
-- weight_decay = 0, amsgrad = false}):
-- Kingma & Ba: m and v moving averages of g and g^2, bias-corrected;
-- weight_decay adds wd p to g (L2).
optimizer_class('Adam',
  { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, amsgrad = false }, {},
  check_adam, adam_update(false))

-- optim.AdamW(params, {lr = 1e-3, betas, eps, weight_decay = 1e-2, amsgrad}):
-- Loshchilov & Hutter: as Adam, but p = p (1 - lr wd) before the update.
optimizer_class('AdamW',
  { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, amsgrad = false }, {},
  check_adam, adam_update(true))

-- ==== Adagrad ============================================================

-- optim.Adagrad(params, {lr = 1e-2, lr_decay = 0, weight_decay = 0,
-- initial_accumulator_value = 0, eps = 1e-10}):
-- sum += g^2; p = p - lr / (1 + (t - 1) lr_decay) g / (sqrt(sum) + eps)
optimizer_class('Adagrad',
  { lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10 }, {},
  function(g, name) nonneg(name, g, 'lr', 'lr_decay', 'weight_decay', 'initial_accumulator_value', 'eps') end,
  function(_, p, grad, st, group)
    if not st.sum then st.sum = usagi.zeros_like(p):fill_(group.initial_accumulator_value) end
    K.adagrad_step(p, grad, st.sum, st.step, group)
  end)

-- ==== RMSprop ============================================================

-- optim.RMSprop(params, {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0,
-- momentum = 0, centered = false}):
-- v = alpha v + (1 - alpha) g^2; p = p - lr g / (sqrt(v) + eps), centered
-- subtracts the squared mean gradient from v, momentum goes through a buffer.
optimizer_class('RMSprop',
  { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false }, {},
  function(g, name) nonneg(name, g, 'lr', 'alpha', 'eps', 'weight_decay', 'momentum') end,
  function(_, p, grad, st, group)
    if not st.square_avg then st.square_avg = zeros_like(p) end
    if group.centered and not st.grad_avg then st.grad_avg = zeros_like(p) end
    if group.momentum > 0 and not st.momentum_buffer then st.momentum_buffer = zeros_like(p) end
    K.rmsprop_step(p, grad, st.square_avg, group.centered and st.grad_avg or nil,
      group.momentum > 0 and st.momentum_buffer or nil, group)
  end)

-- ==== Gradient clipping ==================================================

local function grads_of(fn, params)
  local gs = {}
  for _, p in ipairs(tensor_list(fn, params)) do
    if not usagi.is_tensor(p) then error(fn .. ': params must be tensors, got ' .. type(p), 3) end
    local g = p.grad
    if g ~= nil then gs[#gs + 1] = g end
  end
  return gs
end

-- clip_grad_norm(params, max_norm [, norm_type = 2]) -> total norm
-- The norm of all gradients as one vector (norm_type = math.huge or 'inf':
-- the largest |g|); when it exceeds max_norm, every gradient is scaled by
-- max_norm / (total + 1e-6) in place (torch.nn.utils.clip_grad_norm_).
-- Parameters without a gradient are skipped. Returns the norm before
-- clipping, as a number.
function optim.clip_grad_norm(params, max_norm, norm_type)
  return K.clip_grad_norm(grads_of('clip_grad_norm', params), max_norm, norm_type)
end
optim.clip_grad_norm_ = optim.clip_grad_norm

-- grad_norm(params [, norm_type = 2]) -> the same norm, without clipping
function optim.grad_norm(params, norm_type)
  return K.grad_norm(grads_of('grad_norm', params), norm_type)
end

-- ==== Learning-rate schedules ============================================

-- A schedule sets group.lr = f(base_lr, epoch) for every group, with
-- epoch = the number of sched:step() calls so far (PyTorch's last_epoch;
-- construction applies epoch 0, i.e. the base lr). Call sched:step() after
-- opt:step(). get_lr() returns the current lr of each group.
local Scheduler = {}
Scheduler.__index = Scheduler
optim.LRScheduler = Scheduler

local function scheduler_class(name, known, check, lr_at)
  local cls = setmetatable({ __name = name }, { __index = Scheduler })
  cls.__index = cls
  cls.lr_at, cls.known = lr_at, known
  setmetatable(cls, {
    __index = Scheduler,
    __call = function(_, opt, opts)
      if type(opt) ~= 'table' or type(opt.param_groups) ~= 'table' then
        error(name .. ': the first argument must be an optimizer', 2)
      end
      opts = opts or {}
      if type(opts) ~= 'table' then error(name .. ': options must be a table, got ' .. type(opts), 2) end
      for k in pairs(opts) do
        if not known[k] then
          error(('%s: unknown option \'%s\' (expected %s)')
            :format(name, tostring(k), table.concat(sorted_keys(known), ', ')), 2)
        end
      end
      local self = setmetatable({ optimizer = opt, last_epoch = 0, base_lrs = {} }, cls)
      for k in pairs(known) do self[k] = opts[k] end
      check(self, name)
      for i, g in ipairs(opt.param_groups) do
        if g.initial_lr == nil then g.initial_lr = g.lr end
        self.base_lrs[i] = g.initial_lr
      end
      self:apply()
      return self
    end,
  })
  optim[name] = cls
  return cls
end

-- apply(): set every group's lr for the current epoch
function Scheduler:apply()
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = self:lr_at(self.base_lrs[i], self.last_epoch)
  end
end

-- step([epoch]): advance one epoch (or jump to `epoch`) and set the lrs
function Scheduler:step(epoch)
  if epoch ~= nil and math.type(epoch) ~= 'integer' then
    error(self.__name .. ':step: epoch must be an integer, got ' .. tostring(epoch), 2)
  end
  self.last_epoch = epoch or self.last_epoch + 1
  self:apply()
end

-- get_lr() -> the current lr of each group (also get_last_lr)
function Scheduler:get_lr()
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do lrs[i] = g.lr end
  return table.unpack(lrs)
end
Scheduler.get_last_lr = Scheduler.get_lr

-- state_dict() -> {last_epoch, base_lrs, options}: what resumes the schedule
function Scheduler:state_dict()
  local sd = { last_epoch = self.last_epoch, base_lrs = table.move(self.base_lrs, 1, #self.base_lrs, 1, {}) }
  for k in pairs(self.known or {}) do sd[k] = self[k] end
  return sd
end

-- load_state_dict(sd): continue from a state_dict
function Scheduler:load_state_dict(sd)
  if type(sd) ~= 'table' or math.type(sd.last_epoch) ~= 'integer' then
    error(self.__name .. '.load_state_dict: expected a table with an integer last_epoch', 2)
  end
  self.last_epoch = sd.last_epoch
  if type(sd.base_lrs) == 'table' then self.base_lrs = table.move(sd.base_lrs, 1, #sd.base_lrs, 1, {}) end
  self:apply()
end

local function positive_int(self, name, k)
  if math.type(self[k]) ~= 'integer' or self[k] < 1 then
    error(('%s: %s must be a positive integer, got %s'):format(name, k, tostring(self[k])), 4)
  end
end

local function number(self, name, k, default)
  if self[k] == nil then self[k] = default end
  if type(self[k]) ~= 'number' then
    error(('%s: %s must be a number, got %s'):format(name, k, tostring(self[k])), 4)
  end
end

-- optim.StepLR(opt, {step_size, gamma = 0.1}): sched:step() after each epoch;
-- lr = base gamma^floor(epoch / step_size)
scheduler_class('StepLR', { step_size = true, gamma = true },
  function(self, name) positive_int(self, name, 'step_size'); number(self, name, 'gamma', 0.1) end,
  function(self, base, epoch) return base * self.gamma ^ (epoch // self.step_size) end)

-- optim.ExponentialLR(opt, {gamma}): lr = base gamma^epoch
scheduler_class('ExponentialLR', { gamma = true },
  function(self, name)
    if self.gamma == nil then error(name .. ': option gamma is required', 4) end
    number(self, name, 'gamma')
  end,
  function(self, base, epoch) return base * self.gamma ^ epoch end)

-- optim.CosineAnnealingLR(opt, {T_max, eta_min = 0}):
-- lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2
-- (SGDR without restarts; PyTorch's closed form)
scheduler_class('CosineAnnealingLR', { T_max = true, eta_min = true },
  function(self, name) positive_int(self, name, 'T_max'); number(self, name, 'eta_min', 0) end,
  function(self, base, epoch)
    return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
  end)

return optim
