-- tensor_demo.lua -- a tour of tensors: build, multiply, slice and reduce
-- them, and fit a line by least squares with gradient descent written out
-- by hand (no autograd), all from the usagi module.
--
--   scripts/run experiments/tensor_demo.lua        -- 200 steps
--   scripts/run experiments/tensor_demo.lua 500    -- 500 steps
local usagi = require 'usagi'
local steps = tonumber(arg and arg[1]) or 200

usagi.manual_seed(1)
print(('usagi %s, BLAS %s (%s, %d threads)'):format(usagi.version,
      usagi.blas_info().config, usagi.blas_info().core, usagi.get_num_threads()))

local a = usagi.tensor{{1, 2, 3}, {4, 5, 6}}
print('a =') print(a)
print('a:t() =') print(a:t())
print('a:mm(a:t()) =') print(a:mm(a:t()))
print('a[2] =', a[2], ' a[{2, 3}] =', a[{2, 3}], ' a[{{}, {2, 3}}] =')
print(a[{{}, {2, 3}}])
print('sum of each column =') print(a:sum(1))

-- y = 3x - 2 + noise; fit w, b by gradient descent on the mean squared error
local n = 256
local x = usagi.rand(n, 1)
local y = x * 3 - 2 + usagi.randn(n, 1) * 0.05
local w, b, lr = 0, 0, 0.5
for step = 1, steps do
  local err = x * w + b - y                          -- (n, 1)
  local gw = (err * x):mean():item() * 2          -- a 0-dim tensor -> a number
  local gb = err:mean():item() * 2
  w, b = w - lr * gw, b - lr * gb
  if step % (steps // 4) == 0 then
    print(('step %4d  mse %.5f  w %.4f  b %.4f'):format(step, (err * err):mean():item(), w, b))
  end
end
print(('fitted y = %.3f x %+.3f (true: 3x - 2)'):format(w, b))
