-- vae.lua -- the Lua face of the VAE plugin: the Gaussian latent code
-- (M.gaussian, fused in C: z = mu + exp(logvar / 2) eps and the analytic
-- KL to N(0, I) or to a given Gaussian prior), a sampler that draws eps from
-- the run's generator, and nn.GaussianLatent, the layer both the VAE and
-- VHRED put between an encoder and a decoder. Receives the module table M
-- that the C side made.
--
--   local vae = require 'usagi.vae'
--   local z, kl = vae.sample(mu, logvar)                     -- eps ~ N(0, I) drawn here
--   local latent = nn.GaussianLatent(256, 32)                -- Linear heads for mu, logvar
--   local z, kl, mu, logvar = latent(h [, prior_mu, prior_logvar])
local M = ...
local usagi = require 'usagi'
local nn = require 'usagi.nn'

-- sample(mu, logvar [, mu_p, logvar_p [, {mean = true}]]) -> z, kl
-- eps from the run's generator (N(0, I), mu's shape); mean = true gives z
-- = mu (eps = 0), for evaluation.
function M.sample(mu, logvar, mu_p, logvar_p, opts)
  local eps = (opts and opts.mean) and usagi.zeros_like(mu) or usagi.randn(mu:size(), { dtype = mu:dtype() })
  return M.gaussian(mu, logvar, eps, mu_p, logvar_p)
end

local Latent = nn.Module:extend 'GaussianLatent'

-- nn.GaussianLatent(in_features, latent [, {dtype}]): mu = W_mu h + b,
-- logvar = W_lv h + b; forward(h [, mu_p, logvar_p]) -> z, kl (per row),
-- mu, logvar. In eval mode z = mu.
function Latent:__init(in_features, latent, opts)
  nn.Module.__init(self)
  opts = opts or {}
  self.latent = latent
  self.mu = nn.Linear(in_features, latent, { dtype = opts.dtype })
  self.logvar = nn.Linear(in_features, latent, { dtype = opts.dtype })
end

function Latent:forward(h, mu_p, logvar_p)
  local mu, lv = self.mu(h), self.logvar(h)
  local z, kl = M.sample(mu, lv, mu_p, logvar_p, { mean = not self.training })
  return z, kl, mu, lv
end

nn.GaussianLatent = Latent
M.GaussianLatent = Latent
return M
