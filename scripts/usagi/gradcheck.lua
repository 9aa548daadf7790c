-- usagi.gradcheck(f, inputs [, opts]) -- compare the gradients autograd
-- computes with central finite differences, in f64.
--
--   f       a function of the inputs returning one tensor (or a table of them)
--   inputs  a list of tensors; those with requires_grad are checked (all float
--           inputs when opts.all is true)
--   opts    eps (1e-6), atol (1e-5), rtol (1e-3), raise (true)
--
-- Each checked input is cloned to f64. The scalar checked is
-- L = sum_k sum(out_k .* R_k) with fixed weights R (1 + 0.1 (i mod 7)), so
-- every output element counts and no symmetry hides a wrong sign. For each
-- element x_i: numeric = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps), computed
-- without recording. Returns true, or false and a message (raises it when
-- opts.raise, the default).
local usagi = require 'usagi'

local function outputs_of(f, xs)
  local out = f(table.unpack(xs, 1, xs.n))
  if usagi.is_tensor(out) then return { out } end
  assert(type(out) == 'table', 'gradcheck: f must return a tensor or a table of tensors')
  return out
end

local function weights(t)
  local n = t:numel()
  local w = usagi.arange(0, n, { dtype = 'f64' })
  return ((w - (w / 7):floor() * 7) * 0.1 + 1):view(t:size())
end

local function loss_of(outs)
  local L
  for _, o in ipairs(outs) do
    if o:dtype() ~= 'i32' then
      local term = (o:double() * weights(o)):sum(nil)
      L = L and L + term or term
    end
  end
  return L
end

local function scalar(L) return usagi.is_tensor(L) and L:item() or L end

-- usagi.gradcheck(f, inputs [, {eps, atol, rtol, raise, all}]) -> true, or false
-- and a message naming the worst element (an error when raise): autograd's
-- gradients against central differences in f64 (see the top of this file).
return function(f, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  assert(type(f) == 'function', 'gradcheck: f must be a function')
  assert(type(inputs) == 'table', 'gradcheck: inputs must be a list of tensors')
  local xs, checked = { n = #inputs }, {}
  for i = 1, #inputs do
    local x = inputs[i]
    if usagi.is_tensor(x) and x:dtype() ~= 'i32' and (opts.all or x:requires_grad()) then
      xs[i] = x:detach():double():clone():requires_grad(true)
      checked[#checked + 1] = i
    else
      xs[i] = x
    end
  end
  if #checked == 0 then error('gradcheck: no input requires grad (set requires_grad or opts.all)', 2) end

  local L = loss_of(outputs_of(f, xs))
  if not L or not L:requires_grad() then
    error('gradcheck: the output does not depend on any checked input through autograd', 2)
  end
  L:backward()

  local worst = { err = -1 }
  usagi.no_grad(function()
    for _, i in ipairs(checked) do
      local x = xs[i]
      local flat = x:view(-1)
      local grad = x.grad and x.grad:view(-1)
      for k = 1, flat:numel() do
        local x0 = flat[k]
        flat[k] = x0 + eps
        local lp = scalar(loss_of(outputs_of(f, xs)))
        flat[k] = x0 - eps
        local lm = scalar(loss_of(outputs_of(f, xs)))
        flat[k] = x0
        local num = (lp - lm) / (2 * eps)
        local ana = grad and grad[k] or 0
        local err = math.abs(num - ana) - (atol + rtol * math.abs(num))
        if err > worst.err then worst = { err = err, input = i, k = k, num = num, ana = ana } end
      end
    end
  end)
  if worst.err > 0 then
    local msg = ('gradcheck: input %d, element %d: analytic %.9g, numeric %.9g (atol %g, rtol %g)')
      :format(worst.input, worst.k, worst.ana, worst.num, atol, rtol)
    if opts.raise == false then return false, msg end
    error(msg, 2)
  end
  return true
end
