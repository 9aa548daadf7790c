local usagi = require 'usagi'
local optim = require 'usagi.optim'

-- optim_spec.lua -- scripts/usagi/optim.lua and its C update loops: the first
-- three steps of each optimizer and option on a small quadratic against
-- reference values, state_dict round trips (a resumed optimizer continues
-- to the same numbers), param groups, skipped parameters, clip_grad_norm,
-- the lr schedules' sequences, and errors that name the function.
--
-- The quadratic: L(p) = sum_i w_i (p_i - c_i)^2, g = 2 w (p - c), from
-- p0 = (1, -2, 0.5), c = (0.5, 1, -1), w = (1, 0.5, 2). The reference values
-- were computed in double by a plain-Python transcription of PyTorch 1.13's
-- torch/optim single-tensor update functions (the same numbers are in
-- tests/c/test_optim.c). By hand: SGD lr 0.1 takes g = (1, -3, 6) to
-- p1 = (0.9, -1.7, -0.1); Adam's first step is lr sign(g).

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local fails, near_list = h.fails, h.near_list

local P0, C, W = { 1, -2, 0.5 }, { 0.5, 1, -1 }, { 1, 0.5, 2 }

local function values(t) return t:detach():contiguous():view(-1):totable() end

local function set_grad(p)
  local c, w = usagi.tensor(C, p:dtype()), usagi.tensor(W, p:dtype())
  p.grad = (p:detach() - c) * w * 2
end

local function param(dt) return usagi.tensor(P0, dt):requires_grad(true) end

-- ==== Reference runs =====================================================

local CASES = {
  { 'SGD', { lr = 0.1 }, {
    { 0.9, -1.7, -0.1 }, { 0.82, -1.43, -0.46 }, { 0.756, -1.187, -0.676 } } },
  { 'SGD', { lr = 0.1, momentum = 0.9, dampening = 0.5, weight_decay = 0.1 }, {
    { 0.89, -1.68, -0.105 },
    { 0.74754999999999994, -1.2495999999999998, -0.82797500000000002 },
    { 0.59085224999999997, -0.74351199999999984, -1.508917625 } },
    momentum_buffer = { 1.5669775000000001, -5.06088, 6.8094262500000005 } },
  { 'SGD', { lr = 0.1, momentum = 0.9, nesterov = true }, {
    { 0.81, -1.43, -0.64 }, { 0.6112, -0.7253, -1.3996 },
    { 0.445824, 0.018037000000000081, -1.6499440000000001 } },
    momentum_buffer = { 1.5904, -6.3423, 4.5576 } },
  { 'Adam', { lr = 0.1 }, {
    { 0.90000000099999999, -1.9000000003333333, 0.4000000001666667 },
    { 0.80118742165916679, -1.8001027077505518, 0.30023906195422528 },
    { 0.70487125256029959, -1.7003815239578244, 0.20090287000446624 } },
    exp_avg = { 0.2132374845118333, -0.78401027080505503, 1.5100956248416897 },
    exp_avg_sq = { 0.0020002164550595889, 0.025224174175883397, 0.094306621899164944 } },
  { 'Adam', { lr = 0.1, betas = { 0.8, 0.5 }, weight_decay = 0.1, amsgrad = true }, {
    { 0.90000000090909082, -1.9000000003124999, 0.40000000016528925 },
    { 0.7981097480786099, -1.7996229013541378, 0.29926775319825522 },
    { 0.70215124765958015, -1.6986398620174641, 0.19730321952898197 } },
    max_exp_avg_sq = { 0.69855000169909087, 8.1059889572030066, 26.188465440379375 } },
  { 'AdamW', { lr = 0.1 }, {
    { 0.89900000099999999, -1.8980000003333333, 0.39950000016666665 },
    { 0.79930830337733527, -1.7962070949010098, 0.29934110594762653 },
    { 0.70225828735409168, -1.6946961380458634, 0.19970958351436735 } } },
  { 'AdamW', { lr = 0.1, betas = { 0.8, 0.5 }, weight_decay = 0.5, amsgrad = true }, {
    { 0.85000000099999995, -1.8000000003333332, 0.37500000016666662 },
    { 0.70543792944795147, -1.6092792652337702, 0.25535684827640304 },
    { 0.58283044151062191, -1.4269416013094725, 0.14023117561535478 } },
    max_exp_avg_sq = { 0.5, 6.4891691424561078, 24.669866533949047 } },
  { 'Adagrad', { lr = 0.1 }, {
    { 0.90000000001000002, -1.9000000000033332, 0.40000000000166663 },
    { 0.83753049525848333, -1.8304977903202102, 0.33176817496645344 },
    { 0.79089917679624999, -1.7743593459421911, 0.27732453908112381 } },
    sum = { 2.0957073409497484, 25.421717741026924, 95.737703549730313 } },
  { 'Adagrad', { lr = 0.1, lr_decay = 0.5, weight_decay = 0.1, initial_accumulator_value = 0.2 }, {
    { 0.90736328869048433, -1.9009624863086374, 0.40027209083991533 },
    { 0.86693919363902849, -1.8548775322145048, 0.35487442156193455 },
    { 0.84285965097734494, -1.8267638012927609, 0.3273760642945297 } },
    sum = { 2.9032019850224344, 29.23846517172985, 98.381547652774344 } },
  { 'RMSprop', { lr = 0.01 }, {
    { 0.90000000999999907, -1.9000000033333333, 0.40000000166666672 },
    { 0.83733917795749246, -1.8303174519233238, 0.33158511361963217 },
    { 0.7904332263210434, -1.7738885724144244, 0.27685149625274852 } },
    square_avg = { 0.020688909156201467, 0.25157496897801757, 0.94699902710934625 } },
  { 'RMSprop', { lr = 0.01, alpha = 0.9, momentum = 0.9, centered = true, weight_decay = 0.1 }, {
    { 0.96666666767676768, -1.9666666670138888, 0.46666666685032138 },
    { 0.91198749619399622, -1.9113157421007276, 0.41145409728988475 },
    { 0.84244120249337162, -1.8393564876800477, 0.33997817123888446 } },
    square_avg = { 0.27724529819925398, 2.692558935265887, 9.3460319510032193 },
    grad_avg = { 0.27331737439164827, -0.8541447316654549, 1.5909461799566209 },
    momentum_buffer = { 6.9546293700624542, -7.1959254420679883, 7.1475926051000291 } },
}

local STATE_NAMES = { 'momentum_buffer', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'sum',
  'square_avg', 'grad_avg' }

local function describe_case(case)
  local opts = {}
  for k, v in pairs(case[2]) do
    opts[#opts + 1] = k .. '=' .. (type(v) == 'table' and '{' .. table.concat(v, ',') .. '}' or tostring(v))
  end
  table.sort(opts)
  return case[1] .. ' {' .. table.concat(opts, ', ') .. '}'
end

describe('optimizers against PyTorch 1.13 equations', function()
  for _, case in ipairs(CASES) do
    for _, dt in ipairs { 'f64', 'f32' } do
      it(describe_case(case) .. ' ' .. dt, function()
        local tol = dt == 'f64' and 1e-12 or 2e-6
        local p = param(dt)
        local opt = optim[case[1]]({ p }, case[2])
        for k = 1, 3 do
          set_grad(p)
          opt:step()
          near_list(values(p), case[3][k], tol, 'step ' .. k)
        end
        local st = opt.state[p]
        assert.equal(3, st.step)
        for _, name in ipairs(STATE_NAMES) do
          if case[name] then
            assert.equal(dt, st[name]:dtype())
            near_list(values(st[name]), case[name], tol, name)
          end
        end
      end)
    end
  end
end)

-- ==== The optimizer protocol ==============================================

describe('Optimizer', function()
  it('skips parameters without a gradient and keeps their step count', function()
    local a, b = param 'f64', param 'f64'
    local opt = optim.SGD({ a, b }, { lr = 0.1 })
    set_grad(a)
    opt:step()
    near_list(values(a), { 0.9, -1.7, -0.1 }, 1e-12)
    near_list(values(b), P0, 0)
    assert.equal(1, opt.state[a].step)
    assert.is_nil(opt.state[b])
  end)

  it('zero_grad drops the gradients, or zeroes them in place', function()
    local a = param 'f32'
    local opt = optim.Adam({ a })
    set_grad(a)
    opt:zero_grad(false)
    near_list(values(a.grad), { 0, 0, 0 }, 0)
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it('reads group.lr at each step and supports param groups', function()
    local a, b = param 'f64', param 'f64'
    local opt = optim.SGD({ { params = { a } }, { params = { b }, lr = 0.2 } }, { lr = 0.1 })
    assert.equal(0.1, opt.param_groups[1].lr)
    assert.equal(0.2, opt.param_groups[2].lr)
    set_grad(a); set_grad(b)
    opt:step()
    near_list(values(a), { 0.9, -1.7, -0.1 }, 1e-12)
    near_list(values(b), { 0.8, -1.4, -0.7 }, 1e-12)
    opt.param_groups[1].lr = 0
    set_grad(a)
    opt:step()
    near_list(values(a), { 0.9, -1.7, -0.1 }, 1e-12)
  end)

  it('step(closure) returns the closure\'s loss', function()
    local a = param 'f64'
    local opt = optim.SGD({ a }, { lr = 0.1 })
    local loss = opt:step(function() set_grad(a); return 42 end)
    assert.equal(42, loss)
    near_list(values(a), { 0.9, -1.7, -0.1 }, 1e-12)
  end)

  it('prints its groups', function()
    local s = tostring(optim.Adam({ param 'f32' }, { lr = 0.5 }))
    assert.is_truthy(s:find('Adam', 1, true))
    assert.is_truthy(s:find('lr: 0.5', 1, true))
    assert.is_truthy(s:find('betas: {0.9, 0.999}', 1, true))
  end)

  it('checks its options and parameters', function()
    local p = param 'f32'
    fails(function() optim.SGD({ p }) end, 'SGD: option lr is required')
    fails(function() optim.SGD({ p }, { lr = -1 }) end, 'SGD: lr must be a finite number >= 0')
    fails(function() optim.SGD({ p }, { lr = 0.1, nesterov = true }) end, 'SGD: nesterov needs momentum > 0')
    fails(function() optim.Adam({ p }, { lr = 0.1, beta = 0.9 }) end, "Adam: unknown option 'beta'")
    fails(function() optim.Adam({ p }, { betas = { 0.9, 1 } }) end, 'Adam: betas must be')
    fails(function() optim.AdamW({ p }, { eps = -1 }) end, 'AdamW: eps must be')
    fails(function() optim.Adagrad({ p }, { lr_decay = 'x' }) end, 'Adagrad: lr_decay must be')
    fails(function() optim.RMSprop({ p }, { alpha = -0.1 }) end, 'RMSprop: alpha must be')
    fails(function() optim.RMSprop({ p }, 3) end, 'RMSprop: options must be a table')
    fails(function() optim.SGD({ p, 3 }, { lr = 1 }) end, 'SGD: parameter 2 must be a tensor')
    fails(function() optim.SGD({ usagi.tensor({ 1 }, 'i32') }, { lr = 1 }) end, 'SGD: parameter 1 must be f32 or f64')
    fails(function() optim.SGD({ p, p }, { lr = 1 }) end, 'SGD: a parameter appears twice')
    fails(function() optim.SGD({}, { lr = 1 }) end, 'SGD: got an empty parameter list')
    fails(function() optim.SGD('w', { lr = 1 }) end, 'SGD: params must be a list of tensors')
  end)

  it('refuses a parameter that is not a leaf', function()
    local p = param 'f32'
    local y = usagi.linear(p:view(1, 3), usagi.ones(1, 3))       -- recorded: a non-leaf
    if y:is_leaf() then return end                               -- (no autograd in this build)
    fails(function() optim.SGD({ y }, { lr = 1 }) end, 'SGD: parameter 1 is the result of an op')
  end)

  it('raises the kernel\'s error when the state does not fit', function()
    local p = param 'f64'
    local opt = optim.Adam({ p })
    set_grad(p); opt:step()
    opt.state[p].exp_avg = usagi.zeros(2, { dtype = 'f64' })
    set_grad(p)
    fails(function() opt:step() end, 'Adam: exp_avg must be f64 (3,) like the param, got f64 (2,)')
  end)
end)

-- ==== state_dict ==========================================================

describe('Optimizer state_dict', function()
  it('holds step counts, state tensors and hyper-parameters', function()
    local a, b = param 'f64', param 'f64'
    local opt = optim.Adam({ a, b }, { lr = 0.1 })
    for _ = 1, 2 do set_grad(b); opt:step() end
    local sd = opt:state_dict()
    assert.is_nil(sd.state[1])
    assert.equal(2, sd.state[2].step)
    assert.is_true(usagi.is_tensor(sd.state[2].exp_avg))
    assert.same({ 1, 2 }, sd.param_groups[1].params)
    assert.equal(0.1, sd.param_groups[1].lr)
    assert.same({ 0.9, 0.999 }, sd.param_groups[1].betas)
    sd.param_groups[1].betas[1] = 0                     -- a copy: the optimizer keeps its own
    assert.equal(0.9, opt.param_groups[1].betas[1])
  end)

  for _, name in ipairs { 'SGD', 'Adam', 'AdamW', 'Adagrad', 'RMSprop' } do
    it(name .. ': a resumed optimizer continues to the same values', function()
      local opts = ({
        SGD = { lr = 0.1, momentum = 0.9 }, Adam = { lr = 0.1, amsgrad = true },
        AdamW = { lr = 0.1 }, Adagrad = { lr = 0.1, initial_accumulator_value = 0.1 },
        RMSprop = { lr = 0.01, centered = true, momentum = 0.5 },
      })[name]
      local a = param 'f64'
      local opt = optim[name]({ a }, opts)
      for _ = 1, 2 do set_grad(a); opt:step() end
      local sd = opt:state_dict()
      local b = usagi.tensor(values(a), 'f64'):requires_grad(true)
      local opt2 = optim[name]({ b }, { lr = 123 })
      opt2:load_state_dict(sd)
      assert.equal(opts.lr, opt2.param_groups[1].lr)
      for _ = 1, 3 do
        set_grad(a); opt:step()
        set_grad(b); opt2:step()
      end
      near_list(values(b), values(a), 0)
      assert.equal(5, opt2.state[b].step)
      -- the loaded state is a copy: the first optimizer's tensors are not shared
      for k, v in pairs(opt2.state[b]) do
        if usagi.is_tensor(v) then assert.is_false(rawequal(v, opt.state[a][k])) end
      end
    end)
  end

  it('refuses a state that does not fit, changing nothing', function()
    local a = param 'f64'
    local opt = optim.Adam({ a }, { lr = 0.1 })
    set_grad(a); opt:step()
    local sd = opt:state_dict()
    local two = optim.Adam({ param 'f64', param 'f64' })
    fails(function() two:load_state_dict(sd) end, 'Adam.load_state_dict: group 1 has 1 params in the state and 2 here')
    local small = optim.Adam({ usagi.zeros(2):requires_grad(true) })
    fails(function() small:load_state_dict(sd) end, 'Adam.load_state_dict: state 1.exp_avg is (3,), the parameter is (2,)')
    assert.same({}, small.state)
    fails(function() opt:load_state_dict({}) end, 'Adam.load_state_dict: expected a table')
    fails(function() opt:load_state_dict({ state = {}, param_groups = {} }) end, 'the state has 0 param groups')
    sd.param_groups[1].lr = -1
    fails(function() opt:load_state_dict(sd) end, 'lr must be a finite number >= 0')
    assert.equal(0.1, opt.param_groups[1].lr)
  end)
end)

-- ==== Gradient clipping ===================================================

describe('clip_grad_norm', function()
  local function pair()
    local a = usagi.zeros(2, { dtype = 'f64' }):requires_grad(true)
    local b = usagi.zeros(1, 2):requires_grad(true)
    local c = usagi.zeros(3):requires_grad(true)          -- no grad: skipped
    a.grad = usagi.tensor({ 3, -4 }, 'f64')
    b.grad = usagi.tensor { { 12, 0 } }
    return { a, b, c }, a, b
  end

  it('returns the global norm and leaves small gradients alone', function()
    local ps, a = pair()
    assert.equal(13, optim.clip_grad_norm(ps, 20))
    near_list(values(a.grad), { 3, -4 }, 0)
    assert.equal(13, optim.grad_norm(ps))
  end)

  it('scales every gradient by max_norm / (total + 1e-6) when above', function()
    local ps, a, b = pair()
    local total = optim.clip_grad_norm(ps, 1.3)
    assert.equal(13, total)
    local c = 1.3 / (13 + 1e-6)
    near_list(values(a.grad), { 3 * c, -4 * c }, 1e-12)
    near_list(values(b.grad), { 12 * c, 0 }, 1e-6)
    near_list({ optim.grad_norm(ps) }, { 1.3 }, 1e-6)
  end)

  it('takes other norms, a single tensor and modules\' parameter lists', function()
    local ps, a = pair()
    assert.equal(19, optim.grad_norm(ps, 1))
    assert.equal(12, optim.grad_norm(ps, math.huge))
    assert.equal(12, optim.clip_grad_norm(ps, 6, 'inf'))
    near_list(values(a.grad), { 1.5, -2 }, 1e-6)
    near_list({ optim.grad_norm(a) }, { 2.5 }, 1e-6)
    assert.equal(0, optim.clip_grad_norm({}, 1))
  end)

  it('checks its arguments', function()
    local ps = pair()
    fails(function() optim.clip_grad_norm(ps, -1) end, 'clip_grad_norm: max_norm must be >= 0')
    fails(function() optim.clip_grad_norm(ps, 1, 0) end, 'clip_grad_norm: norm_type must be > 0')
    fails(function() optim.clip_grad_norm(ps, 'x') end, 'clip_grad_norm')
    fails(function() optim.clip_grad_norm({ 1 }, 1) end, 'clip_grad_norm: params must be tensors')
  end)
end)

-- ==== Learning-rate schedules =============================================

describe('lr schedules', function()
  local function lrs(sched, n)
    local out = {}
    for i = 1, n do
      out[i] = sched:get_lr()
      sched:step()
    end
    return out
  end

  it('StepLR decays by gamma every step_size epochs', function()
    local opt = optim.SGD({ param 'f32' }, { lr = 0.1 })
    local s = optim.StepLR(opt, { step_size = 3, gamma = 0.1 })
    near_list(lrs(s, 8), { 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001 }, 1e-15)
    assert.equal(8, s.last_epoch)
    near_list({ optim.StepLR(optim.SGD({ param 'f32' }, { lr = 1 }), { step_size = 1 }):get_lr() }, { 1 }, 0)
  end)

  it('ExponentialLR multiplies by gamma each epoch', function()
    local opt = optim.Adam({ param 'f32' }, { lr = 1 })
    near_list(lrs(optim.ExponentialLR(opt, { gamma = 0.5 }), 4), { 1, 0.5, 0.25, 0.125 }, 1e-15)
  end)

  it('CosineAnnealingLR follows the closed form, periodic past T_max', function()
    local opt = optim.SGD({ param 'f32' }, { lr = 0.1 })
    local s = optim.CosineAnnealingLR(opt, { T_max = 4, eta_min = 0.01 })
    local a, b = 0.01 + 0.09 * (1 + math.sqrt(0.5)) / 2, 0.01 + 0.09 * (1 - math.sqrt(0.5)) / 2
    near_list(lrs(s, 9), { 0.1, a, 0.055, b, 0.01, b, 0.055, a, 0.1 }, 1e-12)
    near_list(lrs(optim.CosineAnnealingLR(optim.SGD({ param 'f32' }, { lr = 1 }), { T_max = 2 }), 3),
      { 1, 0.5, 0 }, 1e-12)
  end)

  it('sets every group\'s lr, which the next step uses', function()
    local a, b = param 'f64', param 'f64'
    local opt = optim.SGD({ { params = { a } }, { params = { b }, lr = 1 } }, { lr = 0.1 })
    local s = optim.StepLR(opt, { step_size = 1, gamma = 0.5 })
    s:step()
    local la, lb = s:get_lr()
    assert.equal(0.05, la)
    assert.equal(0.5, lb)
    set_grad(a)
    opt:step()
    near_list(values(a), { 0.95, -1.85, 0.2 }, 1e-12)
  end)

  it('saves and restores its position', function()
    local opt = optim.SGD({ param 'f32' }, { lr = 0.1 })
    local s = optim.StepLR(opt, { step_size = 2, gamma = 0.1 })
    s:step(); s:step(); s:step()
    local sd = s:state_dict()
    assert.equal(3, sd.last_epoch)
    assert.equal(2, sd.step_size)
    local opt2 = optim.SGD({ param 'f32' }, { lr = 0.1 })
    local s2 = optim.StepLR(opt2, { step_size = 2, gamma = 0.1 })
    s2:load_state_dict(sd)
    near_list({ s2:get_lr() }, { 0.01 }, 1e-15)
    s:step(); s2:step()
    assert.equal(s:get_lr(), s2:get_lr())
  end)

  it('checks its options', function()
    local opt = optim.SGD({ param 'f32' }, { lr = 0.1 })
    fails(function() optim.StepLR(opt, {}) end, 'StepLR: step_size must be a positive integer')
    fails(function() optim.StepLR(opt, { step_size = 2, gama = 1 }) end, "StepLR: unknown option 'gama'")
    fails(function() optim.ExponentialLR(opt, {}) end, 'ExponentialLR: option gamma is required')
    fails(function() optim.CosineAnnealingLR(opt, { T_max = 0 }) end, 'CosineAnnealingLR: T_max must be')
    fails(function() optim.CosineAnnealingLR({}, { T_max = 2 }) end, 'CosineAnnealingLR: the first argument must be an optimizer')
    fails(function() optim.StepLR(opt, { step_size = 1 }):step(1.5) end, 'StepLR:step: epoch must be an integer')
  end)
end)

describe('Optimizer:minimize', function()
  it('is zero_grad, backward, clip and step in one call', function()
    local optim = require 'usagi.optim'
    local function setup()
      usagi.manual_seed(3)
      local w = usagi.randn(4, 3):requires_grad(true)
      local x = usagi.randn(5, 4)
      return w, x, optim.SGD({ w }, { lr = 0.1 })
    end
    local w1, x1, o1 = setup()
    w1.grad = usagi.ones(4, 3)                      -- stale: minimize must clear it
    local l1 = o1:minimize(usagi.mm(x1, w1):square():sum(), { clip = 0.5 })
    local w2, x2, o2 = setup()
    local loss = usagi.mm(x2, w2):square():sum()
    o2:zero_grad()
    loss:backward()
    optim.clip_grad_norm({ w2 }, 0.5)
    o2:step()
    assert.are.equal(loss:item(), l1)
    assert.are.equal(0, (w1 - w2):abs():max():item())
  end)
end)
