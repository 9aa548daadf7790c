-- vae_mnist.lua -- the variational autoencoder of Kingma & Welling (2014) on
-- Fashion-MNIST, MNIST or scikit-learn's 8x8 digits: an MLP 784-400-20
-- (the paper's), a Bernoulli decoder on dynamically binarized images (each
-- pass draws x_bin ~ Bernoulli(x) afresh), Adam.
--
--   q(z|x) = N(mu(x), diag sigma^2(x)),  z = mu + sigma * eps    (vae plugin, fused)
--   p(x|z) = Bernoulli(sigmoid(f(z))),   p(z) = N(0, I)
--   ELBO   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                (the loss is -ELBO)
--   log p(x) ~ log (1/k) sum_k p(x|z_k) p(z_k) / q(z_k|x)        (importance weighted, k samples)
--
-- Data (config `data`):
--   fashion  Fashion-MNIST, 60,000 train / 10,000 test (Debian's dataset-fashion-mnist)
--   mnist    MNIST, 60,000 train / 10,000 test, the usual protocol (usagi data get mnist)
--   mnist-t10k  MNIST's 10,000 test images alone, for a machine without the training
--            images: the first 9,000 to train, the last 1,000 held out (not the usual split)
--   digits   scikit-learn's 1,797 8x8 digits, 1,500 / 297 (the seconds-long smoke set)
-- Held-out figures: the ELBO over the held-out set, and the importance-
-- weighted estimate of log p(x) with `iw_k` samples on `iw_count` held-out
-- images (k = 5000 is the standard test figure). Pictures in the run
-- directory: samples from the prior, held-out images above their
-- reconstructions, and with latent = 2 the manifold (decoded grid over z)
-- and the encoded held-out images coloured by label.
--
--   usagi run experiments/vae_mnist.lua                          # Fashion-MNIST
--   usagi run experiments/vae_mnist.lua --set data=mnist          # 60,000 / 10,000
--   usagi run experiments/vae_mnist.lua --set latent=2           # the manifold pictures
--   usagi run experiments/vae_mnist.lua --smoke                  # digits, seconds
--   usagi infer runs/vae_mnist/<run-id> sample digit.png         # the trained model in use
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local plot = require 'usagi.plot'
require 'usagi.vae'

-- the mean ELBO over x, each image binarized once and z sampled (the model
-- stays in training mode, which is the one that samples), without a graph
local function elbo(model, x, batch)
  local total = 0
  usagi.no_grad(function()
    for i = 1, x:size(1), batch do
      local m = math.min(batch, x:size(1) - i + 1)
      local _, info = model:loss(usagi.bernoulli(x:narrow(1, i, m)))
      total = total + info.elbo * m
    end
  end)
  return total / x:size(1)
end

-- ==== The model in use ==================================================

-- A grey image file as (H, W) f32 in [0, 1]: PNG (usagi.image.load_png,
-- colours averaged) or the plain PGM/PNM formats P2 and P5.
local function read_image(path)
  if usagi.sys.kind(path) ~= 'file' then error(('vae_mnist: no image file %s'):format(path), 0) end
  local bytes = usagi.sys.read(path)
  if bytes:sub(1, 8) == '\137PNG\r\n\26\n' then
    if not usagi.image.load_png then error('vae_mnist: this usagi reads no PNG; give a PGM file', 0) end
    local img = usagi.image.load_png(path)          -- (H, W) or (H, W, C), 0..1
    if img:dim() == 3 then img = img:narrow(3, 1, math.min(3, img:size(3))):mean(3) end
    return img
  end
  local magic = bytes:sub(1, 2)
  if magic ~= 'P2' and magic ~= 'P5' then
    error(('vae_mnist: %s is neither a PNG nor a PGM image (P2 or P5)'):format(path), 0)
  end
  -- the header: magic, width, height, maxval, comments after '#'
  local fields, pos = {}, 3
  while #fields < 3 do
    local s, e, tok = bytes:find('^%s*([^%s#]+)', pos)
    if not s then
      local cs, ce = bytes:find('^%s*#[^\n]*', pos)
      if not cs then error(('vae_mnist: %s: a broken PGM header'):format(path), 0) end
      pos = ce + 1
    else
      fields[#fields + 1], pos = tonumber(tok), e + 1
      if not fields[#fields] then error(('vae_mnist: %s: a broken PGM header'):format(path), 0) end
    end
  end
  local W, H, maxval = math.tointeger(fields[1]), math.tointeger(fields[2]), fields[3]
  if not W or not H or W < 1 or H < 1 or W * H > 1 << 24 or maxval < 1 or maxval > 255 then
    error(('vae_mnist: %s: a PGM of %s x %s with maxval %s; expected 8-bit grey'):format(path,
      tostring(fields[1]), tostring(fields[2]), tostring(maxval)), 0)
  end
  local v = {}
  if magic == 'P5' then
    pos = pos + 1                                      -- one whitespace after maxval
    if #bytes - pos + 1 < W * H then error(('vae_mnist: %s: the PGM is cut short'):format(path), 0) end
    for i = 1, W * H do v[i] = bytes:byte(pos + i - 1) / maxval end
  else
    for n in bytes:sub(pos):gmatch('%d+') do v[#v + 1] = tonumber(n) / maxval end
    if #v < W * H then error(('vae_mnist: %s: the PGM is cut short'):format(path), 0) end
    for i = #v, W * H + 1, -1 do v[i] = nil end
  end
  return usagi.tensor(v):view(H, W)
end

-- One answer of the VAE: 'sample' (or no input) draws n images from the
-- prior into samples.png; an image file is encoded (its mu printed) and
-- decoded into reconstruction.png (the image above its reconstruction).
local function answer(model, input, ctx)
  local side, o = ctx.data.side, ctx.options
  if input == nil or input == 'sample' then
    if o.n < 1 or o.n > 400 then error(('vae_mnist: --n must be 1 to 400 samples, got %d'):format(o.n), 0) end
    local z = usagi.randn(o.n, ctx.config.latent)
    local path = ctx.path('samples.png')
    plot.grid { images = model:decode(z):sigmoid(), height = side, width = side,
                cols = math.min(o.n, 10), scale = math.max(2, 112 // side), path = path }
    return ('%d samples from the prior: %s'):format(o.n, path)
  end
  local img = read_image(input)
  if img:size(1) ~= side or img:size(2) ~= side then
    error(('vae_mnist: %s is %d x %d pixels; this model reads %d x %d images'):format(input, img:size(2),
      img:size(1), side, side), 0)
  end
  if o.invert then img = img * -1 + 1 end             -- dark on light made light on dark, as MNIST
  local x = img:reshape(1, side * side)
  local mu = model:encode(x)
  local path = ctx.path('reconstruction.png')
  plot.grid { images = x, under = model:decode(mu):sigmoid(), height = side, width = side, cols = 1,
              scale = math.max(2, 112 // side), path = path }      -- one image: drawn large
  local z = {}
  for i, v in ipairs(mu[1]:totable()) do z[i] = ('%.4f'):format(v) end
  return { 'z (mu) = ' .. table.concat(z, ' '), 'reconstruction: ' .. path }
end

return usagi.experiment {
  name = 'vae_mnist',
  config = { data = 'fashion', hidden = 400, latent = 20, epochs = 50, batch = 100, lr = 0.001,
             iw_k = 5000, iw_count = 1000, pictures = true },
  smoke = { data = 'digits', hidden = 32, latent = 2, epochs = 3, iw_k = 50, iw_count = 20 },
  checkpoint = { every_epochs = 5, keep = 1, best = 'test_elbo', mode = 'max' },

  -- the model of a config; data is what the run keeps (run:model below)
  model = function(cfg, d) return nn.VAE(d.side * d.side, { hidden = cfg.hidden, latent = cfg.latent }) end,

  -- usagi infer RUN_DIR digit.png -> its code and reconstruction; sample -> samples.png
  infer_help = "each INPUT is 'sample' (--n images drawn from the prior, to samples.png in --out) "
    .. 'or a grey image file of the size the model reads (PNG or PGM; light strokes on dark, as '
    .. 'MNIST, or --invert true): its code mu and its reconstruction (reconstruction.png)',
  infer_options = { n = 16, invert = false },
  infer = answer,

  run = function(run, cfg)
    local train, test, side = data.image_set(cfg.data)
    local N, D = train.x:size(1), train.x:size(2)
    local model = run:model { side = side }
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    run:track { model = model, optim = opt }
    run:print(('vae_mnist: %s, %d train / %d held-out images of %d pixels, %d-%d-%d, %d parameters')
      :format(cfg.data, N, test.x:size(1), D, D, cfg.hidden, cfg.latent, model:num_parameters()))

    local nb = math.ceil(N / cfg.batch)
    for epoch in run:epochs(cfg.epochs) do
      local sums, t0 = { elbo = 0 }, usagi.sys.monotonic()        -- carried over the batches
      for x in run:batches({ train.x }, cfg.batch, { carry = sums }) do
        local loss, info = model:loss(usagi.bernoulli(x))             -- dynamic binarization
        opt:minimize(loss)
        sums.elbo = sums.elbo + info.elbo
      end
      local total = sums.elbo
      local seconds = usagi.sys.monotonic() - t0
      local test_elbo = elbo(model, test.x, 500)
      run:log { epoch = epoch, train_elbo = total / nb, test_elbo = test_elbo, images_per_s = N / seconds }
      run:print(('epoch %3d  train ELBO %9.3f  held-out ELBO %9.3f nats  (%.0f images/s)')
        :format(epoch, total / nb, test_elbo, N / seconds))
    end

    -- the importance-weighted log p(x) of the first iw_count held-out images,
    -- each binarized once
    local n_iw = math.min(cfg.iw_count, test.x:size(1))
    local xb = usagi.bernoulli(test.x:narrow(1, 1, n_iw))
    local t0 = usagi.sys.monotonic()
    local log_px = model:importance_weighted(xb, cfg.iw_k)
    run:log { iw_log_px = log_px, iw_k = cfg.iw_k, iw_count = n_iw }
    run:print(('log p(x) ~ %.3f nats (importance weighted, k = %d, %d held-out images, %.0f s)')
      :format(log_px, cfg.iw_k, n_iw, usagi.sys.monotonic() - t0))

    if cfg.pictures and run.dir then
      model:eval()
      usagi.no_grad(function()
        local z = usagi.randn(100, cfg.latent)
        plot.grid { images = model:decode(z):sigmoid(), height = side, width = side, cols = 10,
                    path = run.dir .. '/samples.png' }
        local x = test.x:narrow(1, 1, 50)
        plot.grid { images = x, under = model:decode((model:encode(x))):sigmoid(), height = side, width = side, cols = 10,
                    path = run.dir .. '/reconstructions.png' }
        if cfg.latent == 2 then
          local g, k = {}, 0
          for i = 1, 15 do
            for j = 1, 15 do
              k = k + 1
              g[k] = { -3 + 6 * (j - 1) / 14, 3 - 6 * (i - 1) / 14 }
            end
          end
          plot.grid { images = model:decode(usagi.tensor(g)):sigmoid(), height = side, width = side, cols = 15,
                      path = run.dir .. '/manifold.png' }
          local mu = model:encode(test.x)
          local series = {}
          for c = 0, 9 do
            local xs, ys = {}, {}
            local lab, m = test.y:totable(), mu:totable()
            for i = 1, #lab do
              if lab[i] == c then xs[#xs + 1], ys[#ys + 1] = m[i][1], m[i][2] end
            end
            if #xs > 0 then series[#series + 1] = { label = tostring(c), x = xs, y = ys } end
          end
          plot.scatter { series = series, title = 'held-out images in the latent space (mu)',
                         xlabel = 'z1', ylabel = 'z2', path = run.dir .. '/latent.png' }
        end
      end)
      run:print('pictures: ' .. run.dir .. '/{samples,reconstructions' .. (cfg.latent == 2 and ',manifold,latent' or '') .. '}.png')
    end
    return log_px
  end,
}
