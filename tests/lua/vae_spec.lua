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
