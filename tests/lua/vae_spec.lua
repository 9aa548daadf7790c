-- The VAE plugin's Gaussian latent code (modules/vae): the fused
-- reparameterization + KL against the same formulas composed of tensor ops,
-- gradcheck with and without a learned prior, the sampler, and bad calls.
local usagi = require 'usagi'
local nn = require 'usagi.nn'
local vae = require 'usagi.vae'
local h = dofile('tests/lua/helpers.lua')
local maxdiff = h.maxdiff

local function randn(...)
  local shape = { ... }
  shape[#shape + 1] = { dtype = 'f64' }
  return usagi.randn(table.unpack(shape))
end

describe('vae.gaussian', function()
  usagi.manual_seed(2)
  local mu, lv, eps, mp, lp = randn(3, 4), randn(3, 4), randn(3, 4), randn(3, 4), randn(3, 4)

  it('gives z = mu + exp(logvar / 2) eps and the KL of each row, to N(0, I) and to a prior', function()
    local z, kl = vae.gaussian(mu, lv, eps)
    assert.is_true(maxdiff(z, mu + (lv * 0.5):exp() * eps) < 1e-14)
    assert.is_true(maxdiff(kl, ((1 + lv - mu * mu - lv:exp()) * -0.5):sum(2)) < 1e-14)
    local _, kl2 = vae.gaussian(mu, lv, eps, mp, lp)
    local want = ((lp - lv + (lv:exp() + (mu - mp):square()) / lp:exp() - 1) * 0.5):sum(2)
    assert.is_true(maxdiff(kl2, want) < 1e-14)
    local _, kl0 = vae.gaussian(mu, lv, eps, usagi.zeros_like(mu), usagi.zeros_like(mu))
    assert.is_true(maxdiff(kl0, kl) < 1e-14)                 -- N(0, I) as an explicit prior
    local _, self_kl = vae.gaussian(mu, lv, eps, mu, lv)
    assert.is_true(self_kl:abs():max():item() < 1e-14)        -- KL(q || q) = 0
  end)

  it('passes gradcheck through z and the KL, with and without a prior', function()
    assert.is_true(usagi.gradcheck(function(a, b, c, d)
      local z, kl = vae.gaussian(a, b, eps, c, d)
      return (z * z):sum() + (kl * kl):sum()
    end, { mu, lv, mp, lp }, { all = true }))
    assert.is_true(usagi.gradcheck(function(a, b)
      local z, kl = vae.gaussian(a, b, eps)
      return (z * z):sum() + kl:sum()
    end, { mu, lv }, { all = true }))
    assert.is_true(usagi.gradcheck(function(a, b) return select(2, vae.gaussian(a, b, eps:select(1, 1))) end,
      { mu:select(1, 1), lv:select(1, 1) }, { all = true }))          -- one row: a 0-dim KL
  end)

  it('samples eps from the run generator, and gives z = mu in eval mode', function()
    usagi.manual_seed(9)
    local z1 = vae.sample(mu, lv)
    usagi.manual_seed(9)
    local z2 = vae.sample(mu, lv)
    assert.are.equal(0, maxdiff(z1, z2))
    local latent = nn.GaussianLatent(5, 4, { dtype = 'f64' })
    latent:eval()
    local x = randn(3, 5)
    local z, kl, m = latent(x)
    assert.are.equal(0, maxdiff(z, m))
    assert.are.same({ 3 }, h.shape(kl))
  end)

  it('names what it expected and what came', function()
    h.fails(function() vae.gaussian(mu, randn(3, 5), eps) end, 'gaussian: logvar must have mu\'s shape (3, 4), got (3, 5)')
    h.fails(function() vae.gaussian(mu, lv:float(), eps) end, 'gaussian: logvar must be f64 like mu, got f32')
    h.fails(function() vae.gaussian(mu, lv, eps, mp) end, "gaussian: give the prior's mean and log-variance both, or neither")
    h.fails(function() vae.gaussian(usagi.tensor({ 1, 2 }, 'i32'), lv, eps) end, 'gaussian: mu must be f32 or f64, got i32')
  end)
end)

describe('nn.VAE and nn.Autoencoder', function()
  local x = usagi.rand(6, 10, { dtype = 'f64' })

  it('gives -ELBO = -log p(x|z) + beta KL, as composed by hand, for both decoders', function()
    for _, dec in ipairs { 'bernoulli', 'gaussian' } do
      usagi.manual_seed(3)
      local m = nn.VAE(10, { hidden = 7, latent = 3, decoder = dec, dtype = 'f64' })
      usagi.manual_seed(4)
      local loss, info = m:loss(x, { beta = 0.5 })
      usagi.manual_seed(4)
      local mu, lv = m:encode(x)
      local eps = usagi.randn(6, 3, { dtype = 'f64' })
      local z = mu + (lv * 0.5):exp() * eps
      local a, b = m:decode(z)
      local nll
      if dec == 'bernoulli' then
        nll = (a:relu() - a * x + (a:abs():neg():exp() + 1):log()):sum(2)   -- softplus form of BCE
      else
        nll = (((x - a):square() / b:exp() + b + math.log(2 * math.pi)) * 0.5):sum(2)
      end
      local kl = ((1 + lv - mu:square() - lv:exp()) * -0.5):sum(2)
      local want = (nll:sum() + kl:sum() * 0.5):item() / 6
      assert.is_true(math.abs(loss:item() - want) < 1e-10, dec)
      assert.is_true(math.abs(info.elbo + nll:sum():item() / 6 + kl:sum():item() / 6) < 1e-10)
    end
  end)

  it('passes gradcheck through the whole loss (eps fixed by the seed)', function()
    usagi.manual_seed(3)
    local m = nn.VAE(10, { hidden = 5, latent = 2, dtype = 'f64', activation = 'tanh' })
    local install = h.installer(m)
    assert.is_true(usagi.gradcheck(function(...)
      install(...)
      usagi.manual_seed(8)
      return (m:loss(x))
    end, m:parameters(), { eps = 1e-6, atol = 1e-5 }))
  end)

  it('estimates log p(x) by importance weighting: k = 1 is the ELBO on average, more samples a tighter bound', function()
    usagi.manual_seed(3)
    local m = nn.VAE(10, { hidden = 7, latent = 3, dtype = 'f64' })
    m:eval()
    local _, info = m:loss(x)                       -- eval: z = mu, so not the sampled ELBO; use k = 1 many times
    usagi.manual_seed(5)
    local one = 0
    for _ = 1, 400 do one = one + m:importance_weighted(x, 1) end
    one = one / 400
    usagi.manual_seed(6)
    local many = m:importance_weighted(x, 2000)
    assert.is_true(many > one, ('k=2000 %g should exceed the ELBO %g'):format(many, one))
    assert.is_true(many - one < 5)
    assert.is_true(info.elbo < 0)
  end)

  it('trains the autoencoder: the reconstruction loss goes down', function()
    usagi.manual_seed(2)
    local ae = nn.Autoencoder(10, { hidden = 8, code = 3, dtype = 'f64' })
    local opt = require('usagi.optim').Adam(ae:parameters(), { lr = 0.01 })
    local first = ae:loss(x):item()
    for _ = 1, 200 do
      local l = ae:loss(x)
      opt:zero_grad()
      l:backward()
      opt:step()
    end
    assert.is_true(ae:loss(x):item() < first - 0.5)
  end)

  it('refuses what it cannot do', function()
    h.fails(function() nn.VAE(0) end, 'VAE: input must be a positive integer (the size of a datum), got 0')
    h.fails(function() nn.VAE(4, { decoder = 'poisson' }) end, "VAE: decoder must be 'bernoulli' or 'gaussian', got poisson")
    h.fails(function() nn.VAE(4, { latnt = 2 }) end, "VAE: unknown option 'latnt'")
  end)
end)
