local usagi = require 'usagi'
local nn = require 'usagi.nn'
local optim = require 'usagi.optim'

-- nn_module_spec.lua -- scripts/usagi/nn.lua and nn_init.lua: the class
-- helper, the module tree (printing, parameter order, children, modules),
-- train/eval, zero_grad, state_dict round trips and load errors, the layers,
-- activations and criterions against the functional ops, the initialisers'
-- statistics and orthogonality, and a small MLP learning XOR with Adam.

local h = dofile('tests/lua/helpers.lua')   -- shared assertion helpers
local flat, fails, near_list = h.flat, h.fails, h.near_list

local function values(t)
  t = t:detach()
  return t:dim() == 0 and { t:item() } or flat(t:totable())
end

local function num(x) return type(x) == 'number' and x or x:item() end

local function same_tensor(a, b, tol) near_list(values(a), values(b), tol or 0) end

local function names(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p[1] end
  return out
end

-- A custom module with a child assigned as a field, as plugins write them.
local Block = nn.Module:extend 'Block'
function Block:__init(i, o)
  nn.Module.__init(self)
  self.fc = nn.Linear(i, o)
  self.act = nn.ReLU()
end
function Block:forward(x) return self.act(self.fc(x)) end

-- ==== Classes ============================================================

describe('nn.Module classes', function()
  it('extend makes named, callable, inheriting classes', function()
    local Scale = nn.Module:extend 'Scale'
    function Scale:__init(k) nn.Module.__init(self); self.k = k end
    function Scale:forward(x) return x * self.k end
    local Twice = Scale:extend 'Twice'
    function Twice:__init() Scale.__init(self, 2) end
    local m = Twice()
    assert.equal(Scale, Twice.super)
    assert.equal('nn.Twice', tostring(Twice))
    assert.is_true(nn.is_module(m))
    assert.is_false(nn.is_module({}))
    assert.is_false(nn.is_module(usagi.zeros(1)))
    same_tensor(m(usagi.tensor { 1, 2 }), usagi.tensor { 2, 4 })
    assert.equal('Twice()', tostring(m))
    fails(function() nn.Module()(usagi.zeros(1)) end, 'Module: forward is not implemented')
  end)

  it('registers children assigned as fields, parameters explicitly', function()
    local b = Block(3, 4)
    assert.same({ 'fc', 'act' }, names(b:named_children()))
    assert.same({ 'fc.weight', 'fc.bias' }, names(b:named_parameters()))
    assert.is_true(b.fc.weight:requires_grad())
    local p = usagi.zeros(2)
    assert.equal(p, b:register_parameter('scale', p))
    assert.is_true(p:requires_grad())
    assert.same({ 'scale', 'fc.weight', 'fc.bias' }, names(b:named_parameters()))
    fails(function() b:register_parameter('a.b', usagi.zeros(1)) end,
      'register_parameter: name must be non-empty and without dots, got "a.b"')
    fails(function() b:register_parameter('w', 3) end, 'register_parameter: w must be a tensor or nil')
    fails(function() b:add_module('m', {}) end, 'add_module: m must be an nn.Module')
    fails(function() b:register_buffer('', usagi.zeros(1)) end, 'register_buffer: name must be non-empty')
    local Bad = nn.Module:extend 'Bad'
    function Bad:__init() self:register_parameter('w', usagi.zeros(1)) end
    fails(function() Bad() end, 'register_parameter: the module is not initialised')
  end)
end)

-- ==== The module tree ====================================================

describe('module tree', function()
  local function model()
    usagi.manual_seed(7)
    return nn.Sequential { Block(3, 4), nn.Linear(4, 2, { bias = false }), nn.LogSoftmax(2) }
  end

  it('prints like PyTorch, with parameter counts', function()
    assert.equal(table.concat({
      'Sequential(  -- 24 params',
      '  (1): Block(  -- 16 params',
      '    (fc): Linear(in_features=3, out_features=4, bias=true)  -- 16 params',
      '    (act): ReLU()',
      '  )',
      '  (2): Linear(in_features=4, out_features=2, bias=false)  -- 8 params',
      '  (3): LogSoftmax(dim=2)',
      ')' }, '\n'), tostring(model()))
    assert.equal('Linear(in_features=100, out_features=100, bias=true)  -- 10,100 params',
      tostring(nn.Linear(100, 100)))
    assert.equal('Embedding(10, 3, padding_idx=1)  -- 30 params',
      tostring(nn.Embedding(10, 3, { padding_idx = 1 })))
    assert.equal('CrossEntropyLoss(ignore_index=1, reduction=sum)',
      tostring(nn.CrossEntropyLoss { reduction = 'sum', ignore_index = 1 }))
    assert.equal('Dropout(p=0.25)', tostring(nn.Dropout(0.25)))
  end)

  it('lists parameters in registration order, with dotted names', function()
    local m = model()
    assert.same({ '1.fc.weight', '1.fc.bias', '2.weight' }, names(m:named_parameters()))
    local ps = m:parameters()
    assert.equal(3, #ps)
    assert.equal(m[1].fc.weight, ps[1])
    assert.equal(m[2].weight, ps[3])
    assert.equal(24, m:num_parameters())
    assert.equal(3, #m)
    assert.equal(3, #m:children())
    assert.same({ '', '1', '1.fc', '1.act', '2', '3' }, names(m:named_modules()))
    assert.equal(6, #m:modules())
  end)

  it('lists a shared module or tensor once', function()
    local lin = nn.Linear(2, 2)
    local m = nn.Sequential { lin, nn.Tanh(), lin }
    assert.same({ '1.weight', '1.bias' }, names(m:named_parameters()))
    assert.same({ '', '1', '2' }, names(m:named_modules()))
    local tied = nn.Sequential { nn.Linear(2, 2), nn.Linear(2, 2) }
    tied[2].weight = tied[1].weight                    -- weight tying
    assert.same({ '1.weight', '1.bias', '2.bias' }, names(tied:named_parameters()))
  end)

  it('Sequential takes add, checks its elements and chains all values', function()
    local m = nn.Sequential():add(nn.Identity()):add(nn.Tanh())
    assert.equal(2, #m)
    same_tensor(m(usagi.tensor { 0, 1 }), usagi.tensor { 0, math.tanh(1) }, 1e-6)
    local Pair = nn.Module:extend 'Pair'
    function Pair:forward(x) return x, x * 2 end
    local Sum = nn.Module:extend 'Sum'
    function Sum:forward(a, b) return a + b end
    same_tensor(nn.Sequential { Pair(), Sum() }(usagi.tensor { 1 }), usagi.tensor { 3 })
    fails(function() nn.Sequential { nn.Tanh(), 3 } end, 'Sequential: element 2 must be an nn.Module')
    fails(function() nn.Sequential():add('x') end, 'Sequential.add: expected an nn.Module')
  end)

  it('apply visits every module, children first', function()
    local m = model()
    local seen = {}
    assert.equal(m, m:apply(function(sub) seen[#seen + 1] = getmetatable(sub).__name end))
    assert.same({ 'Linear', 'ReLU', 'Block', 'Linear', 'LogSoftmax', 'Sequential' }, seen)
    m:apply(function(sub)
      if getmetatable(sub) == nn.Linear then nn.init.zeros_(sub.weight) end
    end)
    same_tensor(m[2].weight, usagi.zeros(2, 4))
    assert.equal(nn.LogSoftmax, nn.LogSoftMax)            -- Torch7's names
    assert.equal(nn.NLLLoss, nn.ClassNLLCriterion)
  end)

  it('train and eval set training on the whole tree', function()
    local m = model()
    assert.is_true(m[1].fc.training)
    assert.equal(m, m:eval())
    for _, sub in ipairs(m:modules()) do assert.is_false(sub.training) end
    m:train()
    for _, sub in ipairs(m:modules()) do assert.is_true(sub.training) end
  end)

  it('zero_grad drops or zeroes the gradients', function()
    local m = model()
    for _, p in ipairs(m:parameters()) do p.grad = usagi.ones_like(p) end
    m:zero_grad(false)
    same_tensor(m[2].weight.grad, usagi.zeros(2, 4))
    m:zero_grad()
    for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
  end)
end)

-- ==== State ==============================================================

describe('state_dict', function()
  local function model(seed)
    usagi.manual_seed(seed)
    local m = nn.Sequential { nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2) }
    m[1]:register_buffer('count', usagi.zeros(1))
    return m
  end

  it('maps names to detached references of the parameters and buffers', function()
    local m = model(1)
    local sd = m:state_dict()
    local keys = {}
    for k, v in pairs(sd) do
      keys[#keys + 1] = k
      assert.is_false(v:requires_grad())
    end
    table.sort(keys)
    assert.same({ '1.bias', '1.count', '1.weight', '3.bias', '3.weight' }, keys)
    usagi.no_grad(function() m[1].weight:fill_(0.5) end)
    same_tensor(sd['1.weight'], usagi.full(4, 3, 0.5))
  end)

  it('round-trips into another model', function()
    local a, b = model(1), model(2)
    local x = usagi.randn(5, 3)
    assert.is_false(usagi.equal(a(x):detach(), b(x):detach()))
    local sd = {}
    for k, v in pairs(a:state_dict()) do sd[k] = v:clone() end
    local r = b:load_state_dict(sd)
    assert.same({}, r.missing)
    assert.same({}, r.unexpected)
    same_tensor(a(x), b(x))
    assert.is_true(b[1].weight:requires_grad())
    -- loaded by copy: b keeps its own storage
    usagi.no_grad(function() sd['1.weight']:fill_(9) end)
    assert.is_false(usagi.equal(b[1].weight:detach(), sd['1.weight']))
  end)

  it('names missing and unexpected keys and size mismatches, copying nothing', function()
    local a, b = model(1), model(2)
    local before = b[3].weight:clone()
    local sd = a:state_dict()
    sd['1.count'] = nil
    sd['9.weight'] = usagi.zeros(1)
    fails(function() b:load_state_dict(sd) end,
      'load_state_dict: missing keys: 1.count; unexpected keys: 9.weight')
    same_tensor(b[3].weight, before)
    local r = b:load_state_dict(sd, false)
    assert.same({ '1.count' }, r.missing)
    assert.same({ '9.weight' }, r.unexpected)
    same_tensor(b[3].weight, a[3].weight)

    local c = model(3)
    local bad = a:state_dict()
    bad['3.weight'] = usagi.zeros(3, 4)
    fails(function() c:load_state_dict(bad, false) end,
      'load_state_dict: size mismatch for 3.weight: expected (2, 4), got (3, 4)')
    bad['3.weight'] = 'w'
    fails(function() c:load_state_dict(bad) end, 'load_state_dict: 3.weight: expected a tensor, got string')
    fails(function() c:load_state_dict(3) end, 'load_state_dict: state_dict must be a table')
  end)
end)

-- ==== Layers =============================================================

describe('layers', function()
  it('Linear draws U(-1/sqrt(in), 1/sqrt(in)) and computes x W^T + b', function()
    usagi.manual_seed(3)
    local l = nn.Linear(16, 300)
    local k = 1 / 4
    assert.same({ 300, 16 }, { l.weight:size(1), l.weight:size(2) })
    assert.is_true(num(l.weight:max()) <= k and num(l.weight:min()) >= -k)
    assert.is_true(num(l.weight:max()) > 0.9 * k and num(l.weight:min()) < -0.9 * k)
    assert.is_true(num(l.bias:abs():max()) <= k)
    local x = usagi.randn(2, 16)
    same_tensor(l(x), usagi.linear(x, l.weight, l.bias), 1e-6)
    local nb = nn.Linear(2, 3, { bias = false, dtype = 'f64' })
    assert.is_nil(nb.bias)
    assert.equal('f64', nb.weight:dtype())
    assert.equal(1, #nb:parameters())
    usagi.manual_seed(3)
    same_tensor(nn.Linear(16, 300).weight, l.weight)    -- the run's generator
    fails(function() nn.Linear(0, 2) end, 'Linear: in_features must be a positive integer, got 0')
    fails(function() nn.Linear(2, 2, { bias = true, baias = 1 }) end, "Linear: unknown option 'baias'")
  end)

  it('Embedding looks up 1-based rows; the padding row is zero and gets no gradient', function()
    usagi.manual_seed(4)
    local e = nn.Embedding(6, 3, { padding_idx = 2 })
    same_tensor(e.weight[2], usagi.zeros(3))
    local ids = usagi.tensor({ { 1, 2 }, { 6, 2 } }, 'i32')
    local out = e(ids)
    assert.same({ 2, 2, 3 }, { out:size(1), out:size(2), out:size(3) })
    same_tensor(out[1][1], e.weight[1])
    same_tensor(out[2][1], e.weight[6])
    same_tensor(out[2][2], usagi.zeros(3))
    local loss = (out * out):sum()
    if usagi.is_tensor(loss) and not loss:is_leaf() then
      loss:backward()
      same_tensor(e.weight.grad[2], usagi.zeros(3))
      same_tensor(e.weight.grad[6], e.weight[6]:detach() * 2, 1e-6)
    end
    assert.equal(-1 + 7, nn.Embedding(6, 3, { padding_idx = -1 }).padding_idx)
    fails(function() nn.Embedding(6, 3, { padding_idx = 7 }) end, 'Embedding: padding_idx must be an id in 1..6')
  end)

  it('Dropout drops and rescales in training, is the identity in eval', function()
    usagi.manual_seed(5)
    local d = nn.Dropout(0.5)
    local x = usagi.ones(1000)
    local y = d(x)
    local zeros, twos = 0, 0
    for _, v in ipairs(values(y)) do
      if v == 0 then zeros = zeros + 1 elseif v == 2 then twos = twos + 1 end
    end
    assert.equal(1000, zeros + twos)
    assert.is_true(zeros > 400 and zeros < 600)
    d:eval()
    assert.equal(x, d(x))
    assert.equal(x, nn.Dropout(0)(x))
    fails(function() nn.Dropout(1) end, 'Dropout: p must be a number in [0, 1)')
  end)

  it('activations apply their function', function()
    local x = usagi.tensor { { -1, 0, 2 } }
    same_tensor(nn.Tanh()(x), usagi.tensor { { math.tanh(-1), 0, math.tanh(2) } }, 1e-6)
    same_tensor(nn.Sigmoid()(x), usagi.tensor { { 1 / (1 + math.exp(1)), 0.5, 1 / (1 + math.exp(-2)) } }, 1e-6)
    same_tensor(nn.ReLU()(x), usagi.tensor { { 0, 0, 2 } })
    assert.equal(x, nn.Identity()(x))
    same_tensor(nn.Softmax(2)(x), usagi.softmax(x, 2), 1e-7)
    same_tensor(nn.Softmax()(x), usagi.softmax(x, 2), 1e-7)
    same_tensor(nn.LogSoftmax(1)(x), usagi.zeros(1, 3), 1e-7)
    fails(function() nn.Softmax('x') end, 'Softmax: dim must be an integer')
  end)
end)

-- ==== Criterions =========================================================

describe('criterions', function()
  local logits = usagi.tensor { { 1, 2, 0.5 }, { 0, -1, 3 }, { 2, 2, 2 }, { 0.1, 0.2, 0.3 } }
  local target = usagi.tensor({ 2, 3, 1, 1 }, 'i32')

  it('forward to the functional losses with their options', function()
    same_tensor(nn.CrossEntropyLoss()(logits, target), usagi.cross_entropy(logits, target), 1e-7)
    same_tensor(nn.CrossEntropyLoss { reduction = 'sum', ignore_index = 1 }(logits, target),
      usagi.cross_entropy(logits, target, { reduction = 'sum', ignore_index = 1 }), 1e-7)
    local logp = usagi.log_softmax(logits, 2)
    same_tensor(nn.NLLLoss()(logp, target), nn.cross_entropy(logits, target), 1e-6)
    local a, b = usagi.tensor { 0.2, 0.7 }, usagi.tensor { 0, 1 }
    near_list(values(nn.MSELoss()(a, b)), { ((0.2 ^ 2) + (0.3 ^ 2)) / 2 }, 1e-6)
    near_list(values(nn.BCELoss { reduction = 'sum' }(a, b)), { -math.log(0.8) - math.log(0.7) }, 1e-6)
    same_tensor(nn.BCEWithLogitsLoss()(a, b), usagi.bce_with_logits(a, b), 1e-7)
    fails(function() nn.MSELoss { ignore_index = 1 } end, "MSELoss: unknown option 'ignore_index'")
  end)

  it('cross_entropy takes time-major (T, B, V) scores with (T, B) targets', function()
    local x = logits:view(2, 2, 3)
    local y = target:view(2, 2)
    same_tensor(nn.cross_entropy(x, y), usagi.cross_entropy(logits, target), 1e-7)
    local none = nn.CrossEntropyLoss { reduction = 'none', ignore_index = 3 }(x, y)
    assert.same({ 2, 2 }, { none:size(1), none:size(2) })
    same_tensor(none, usagi.cross_entropy(logits, target, { reduction = 'none', ignore_index = 3 }):view(2, 2), 1e-7)
    local mask = usagi.tensor { { 1, 0 }, { 1, 1 } }
    same_tensor(nn.cross_entropy(x, y, { mask = mask }),
      usagi.cross_entropy(logits, target, { mask = mask:view(4) }), 1e-7)
    same_tensor(nn.nll_loss(usagi.log_softmax(x, 3), y), usagi.cross_entropy(logits, target), 1e-6)
    -- one sample: (C) scores and a 0-dim target
    local one = nn.cross_entropy(logits[2], target:narrow(1, 2, 1):view({}), { reduction = 'none' })
    assert.equal(0, one:dim())
    near_list(values(one), values(usagi.cross_entropy(logits:narrow(1, 2, 1), target:narrow(1, 2, 1))), 1e-6)
  end)
end)

-- ==== Initialisers =======================================================

describe('nn.init', function()
  local init = nn.init

  -- mean, std, min, max of all elements
  local function stats(t)
    t = t:detach()
    return num(t:mean()), num(t:std()), num(t:min()), num(t:max())
  end

  local function close(got, want, rel, what)
    assert.is_true(math.abs(got - want) <= rel * math.abs(want),
      ('%s: got %.6g, want %.6g'):format(what, got, want))
  end

  it('uniform_, normal_, constant_, zeros_, ones_ fill in place without recording', function()
    usagi.manual_seed(11)
    local w = usagi.zeros(200, 300):requires_grad(true)
    assert.equal(w, init.uniform_(w, -2, 2))
    assert.is_nil(w:grad_fn())
    local mean, std, lo, hi = stats(w)
    assert.is_true(lo >= -2 and hi < 2 and lo < -1.99 and hi > 1.99)
    assert.is_true(math.abs(mean) < 0.02)
    close(std, 4 / math.sqrt(12), 0.02, 'uniform std')
    init.normal_(w, 1, 3)
    mean, std = stats(w)
    assert.is_true(math.abs(mean - 1) < 0.03)
    close(std, 3, 0.02, 'normal std')
    same_tensor(init.constant_(usagi.zeros(2), 0.25), usagi.tensor { 0.25, 0.25 })
    same_tensor(init.ones_(usagi.zeros(2)), usagi.ones(2))
    same_tensor(init.zeros_(usagi.ones(2)), usagi.zeros(2))
    assert.is_true(w:requires_grad())
  end)

  it('xavier_ and kaiming_ have the Glorot and He scales', function()
    usagi.manual_seed(12)
    local w = usagi.zeros(200, 300)                    -- fan_in 300, fan_out 200
    local a = math.sqrt(6 / 500)
    init.xavier_uniform_(w)
    local _, std, lo, hi = stats(w)
    assert.is_true(lo >= -a and hi <= a and hi > 0.99 * a)
    close(std, a / math.sqrt(3), 0.02, 'xavier_uniform std')
    init.xavier_uniform_(w, init.calculate_gain 'tanh')
    _, _, _, hi = stats(w)
    assert.is_true(hi <= 5 / 3 * a and hi > 0.99 * 5 / 3 * a)
    init.xavier_normal_(w, 2)
    _, std = stats(w)
    close(std, 2 * math.sqrt(2 / 500), 0.02, 'xavier_normal std')
    init.kaiming_normal_(w)
    _, std = stats(w)
    close(std, math.sqrt(2 / 300), 0.02, 'kaiming_normal std')
    init.kaiming_normal_(w, { mode = 'fan_out', nonlinearity = 'relu' })
    _, std = stats(w)
    close(std, math.sqrt(2 / 200), 0.02, 'kaiming_normal fan_out std')
    init.kaiming_uniform_(w, { nonlinearity = 'linear' })
    _, std, _, hi = stats(w)
    assert.is_true(hi <= math.sqrt(3 / 300))
    close(std, 1 / math.sqrt(300), 0.02, 'kaiming_uniform std')
    local conv = usagi.zeros(8, 4, 5)                  -- fan_in 20, fan_out 40
    local fi, fo = init.calculate_fan_in_and_fan_out(conv)
    assert.same({ 20, 40 }, { fi, fo })
    close(init.calculate_gain 'relu', math.sqrt(2), 1e-15, 'gain')
    close(init.calculate_gain('leaky_relu', 0.2), math.sqrt(2 / 1.04), 1e-15, 'gain')
    assert.equal(1, init.calculate_gain 'sigmoid')
  end)

  it('orthogonal_ gives Q^T Q = I (tall) and Q Q^T = I (wide), times gain', function()
    usagi.manual_seed(13)
    local tall = init.orthogonal_(usagi.zeros(40, 12, { dtype = 'f64' }))
    same_tensor(tall:t():mm(tall), usagi.eye(12, 12, { dtype = 'f64' }), 1e-12)
    local wide = init.orthogonal_(usagi.zeros(6, 30):requires_grad(true), 2)
    same_tensor(wide:detach():mm(wide:detach():t()), usagi.eye(6, 6) * 4, 1e-5)
    local sq = init.orthogonal_(usagi.zeros(3, 2, 2))   -- rows 3, cols 4
    local m = sq:view(3, 4)
    same_tensor(m:mm(m:t()), usagi.eye(3, 3), 1e-5)
    local _, std = stats(init.orthogonal_(usagi.zeros(64, 64)))
    close(std, 1 / 8, 0.05, 'orthogonal entries')        -- rows of norm 1
  end)

  it('are reproducible from the seed', function()
    usagi.manual_seed(21)
    local a = init.orthogonal_(usagi.zeros(5, 5))
    local b = init.xavier_normal_(usagi.zeros(5, 5))
    usagi.manual_seed(21)
    same_tensor(init.orthogonal_(usagi.zeros(5, 5)), a)
    same_tensor(init.xavier_normal_(usagi.zeros(5, 5)), b)
  end)

  it('check their arguments', function()
    fails(function() init.xavier_uniform_(usagi.zeros(3)) end, 'xavier_uniform_: fans need a tensor with at least 2 dims, got (3,)')
    fails(function() init.kaiming_normal_(usagi.zeros(3, 3), { mode = 'in' }) end, "kaiming_normal_: mode must be 'fan_in' or 'fan_out'")
    fails(function() init.orthogonal_(usagi.zeros(3)) end, 'orthogonal_: the tensor needs at least 2 dims')
    fails(function() init.normal_('w') end, 'normal_: expected a tensor, got string')
    fails(function() init.uniform_(usagi.zeros(2, 'i32')) end, 'uniform_: the tensor must be f32 or f64')
    fails(function() init.constant_(usagi.zeros(2)) end, 'constant_: the value must be a number')
    fails(function() init.calculate_gain 'softplus' end, "calculate_gain: unsupported nonlinearity 'softplus'")
  end)
end)

-- ==== Training ===========================================================

describe('training', function()
  it('a 2-8-1 tanh MLP learns XOR with Adam', function()
    usagi.manual_seed(1)
    local x = usagi.tensor { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } }
    local y = usagi.tensor { { 0 }, { 1 }, { 1 }, { 0 } }
    local model = nn.Sequential { nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1) }
    local crit = nn.BCEWithLogitsLoss()
    local opt = optim.Adam(model, { lr = 0.05 })
    local loss
    for _ = 1, 300 do
      opt:zero_grad()
      loss = crit(model(x), y)
      loss:backward()
      opt:step()
    end
    assert.is_true(num(loss) < 0.01, 'final loss ' .. num(loss))
    local p = values(model(x):sigmoid())
    assert.is_true(p[1] < 0.05 and p[2] > 0.95 and p[3] > 0.95 and p[4] < 0.05)
  end)
end)
