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

-- ==== nn.VAE ===============================================================
--
-- Kingma & Welling (2014), the MLP of their experiments:
--   encoder  h = act(W_1 x + b_1),  mu, log sigma^2 = heads(h)      q(z|x) = N(mu, sigma^2)
--   sample   z = mu + sigma * eps (vae.gaussian; z = mu in eval mode)
--   decoder  g = act(W_2 z + b_2),  logits = W_3 g + b_3              p(x|z) Bernoulli(sigmoid(logits))
--            or, with decoder = 'gaussian', mean = W_3 g + b_3 and log sigma_x^2 = W_4 g + b_4
--   loss     -ELBO = -log p(x|z) + beta KL(q(z|x) || N(0, I)), summed over a datum's pixels and
--            latents, averaged over the batch
-- importance_weighted(x, k) estimates log p(x) with k samples (Burda et al.
-- 2016): log (1/k) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(.|x); k = 1 is
-- the ELBO in expectation, k = 5000 the usual test figure.

local LOG_2PI = math.log(2 * math.pi)

local VAE = nn.Module:extend 'VAE'

local KNOWN = { hidden = true, latent = true, decoder = true, activation = true, dtype = true }

-- nn.VAE(input, {hidden = 400, latent = 20, decoder = 'bernoulli' | 'gaussian',
--               activation = 'relu' | 'tanh', dtype})
function VAE:__init(input, opts)
  nn.Module.__init(self)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN[k] then error(("VAE: unknown option '%s'"):format(tostring(k)), 2) end
  end
  if math.type(input) ~= 'integer' or input < 1 then
    error('VAE: input must be a positive integer (the size of a datum), got ' .. tostring(input), 2)
  end
  local H, Z, dt = opts.hidden or 400, opts.latent or 20, opts.dtype
  self.decoder_kind = opts.decoder or 'bernoulli'
  if self.decoder_kind ~= 'bernoulli' and self.decoder_kind ~= 'gaussian' then
    error("VAE: decoder must be 'bernoulli' or 'gaussian', got " .. tostring(self.decoder_kind), 2)
  end
  self.act = opts.activation or 'relu'
  if self.act ~= 'relu' and self.act ~= 'tanh' then
    error("VAE: activation must be 'relu' or 'tanh', got " .. tostring(self.act), 2)
  end
  self.input, self.hidden, self.latent_size = input, H, Z
  self.enc = nn.Linear(input, H, { dtype = dt })
  self.latent = nn.GaussianLatent(H, Z, { dtype = dt })
  self.dec = nn.Linear(Z, H, { dtype = dt })
  self.out = nn.Linear(H, input, { dtype = dt })
  if self.decoder_kind == 'gaussian' then self.out_logvar = nn.Linear(H, input, { dtype = dt }) end
end

local function act(self, x) return self.act == 'relu' and x:relu() or x:tanh() end

-- encode(x) -> mu, logvar of q(z|x)
function VAE:encode(x)
  local h = act(self, self.enc(x))
  return self.latent.mu(h), self.latent.logvar(h)
end

-- decode(z) -> logits (Bernoulli) or mean, logvar (Gaussian)
function VAE:decode(z)
  local g = act(self, self.dec(z))
  if self.out_logvar then return self.out(g), self.out_logvar(g) end
  return self.out(g)
end

-- -log p(x|z) of each datum (N), from the decoder's output for z; with
-- total = true the sum over the batch (a 0-dim tensor, one loss op)
function VAE:nll(x, a, b, total)
  if self.decoder_kind == 'bernoulli' then
    if total then return usagi.bce_with_logits(a, x, { reduction = 'sum' }) end
    return usagi.bce_with_logits(a, x, { reduction = 'none' }):sum(-1)
  end
  local e = ((x - a):square() / b:exp() + b + LOG_2PI) * 0.5
  return total and e:sum() or e:sum(-1)
end

-- forward(x) -> the decoder's output, mu, logvar, z, kl (per datum)
function VAE:forward(x)
  local mu, lv = self:encode(x)
  local z, kl = M.sample(mu, lv, nil, nil, { mean = not self.training })
  local a, b = self:decode(z)
  return a, mu, lv, z, kl, b
end

-- loss(x [, {beta = 1}]) -> -ELBO averaged over the batch (beta weighs the
-- KL), and {nll = E[-log p(x|z)], kl = KL, elbo = -(nll + kl)} per datum
function VAE:loss(x, opts)
  local beta = opts and opts.beta or 1
  local a, _, _, _, kl, b = self:forward(x)
  local nll, kls = self:nll(x, a, b, true), kl:sum()
  local n = x:size(1)
  local loss = (nll + kls * beta) / n
  local nm, km = nll:item() / n, kls:item() / n
  return loss, { nll = nm, kl = km, elbo = -(nm + km) }
end

-- importance_weighted(x, k [, chunk = 500]) -> the mean over the data of
-- log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x), each datum's k samples in
-- chunks; no graph is recorded. k is at most 2^31 samples a datum: past
-- that the loop would run for days while the list of chunks fills memory.
function VAE:importance_weighted(x, k, chunk)
  chunk = chunk or 500
  for _, a in ipairs { { 'k', k }, { 'chunk', chunk } } do
    if math.type(a[2]) ~= 'integer' or a[2] < 1 or a[2] > 1 << 31 then
      error(('importance_weighted: %s must be an integer in 1 .. 2^31, got %s')
            :format(a[1], tostring(a[2])), 2)
    end
  end
  local total = 0
  usagi.no_grad(function()
    local mu, lv = self:encode(x)
    for i = 1, x:size(1) do
      local xi, mi, li = x:narrow(1, i, 1), mu:narrow(1, i, 1), lv:narrow(1, i, 1)
      local logw = {}
      for j = 1, k, chunk do
        local m = math.min(chunk, k - j + 1)
        local eps = usagi.randn(m, self.latent_size, { dtype = x:dtype() })
        local z = mi + (li * 0.5):exp() * eps
        local a, b = self:decode(z)
        local log_px = -self:nll(xi:expand(m, xi:size(2)), a, b)
        local log_pz = ((z:square() + LOG_2PI) * -0.5):sum(-1)
        local log_qz = ((eps:square() + li + LOG_2PI) * -0.5):sum(-1)
        logw[#logw + 1] = log_px + log_pz - log_qz
      end
      total = total + (usagi.logsumexp(usagi.cat(logw, 1):double(), 1):item() - math.log(k))
    end
  end)
  return total / x:size(1)
end

function VAE:extra_repr()
  return ('%d, hidden=%d, latent=%d, decoder=%s, activation=%s'):format(self.input, self.hidden,
    self.latent_size, self.decoder_kind, self.act)
end

-- ==== nn.Autoencoder =======================================================

local AE = nn.Module:extend 'Autoencoder'

-- nn.Autoencoder(input, {hidden = 400, code = 20, activation = 'relu', dtype}):
-- x -> act(W_1 x) -> code = W_2 . -> act(W_3 code) -> logits W_4 . ; the
-- reconstruction is sigmoid(logits), the loss binary cross-entropy summed
-- over a datum's pixels (the course's autoencoder; no sampling, no KL).
function AE:__init(input, opts)
  nn.Module.__init(self)
  opts = opts or {}
  local H, C, dt = opts.hidden or 400, opts.code or 20, opts.dtype
  self.act = opts.activation or 'relu'
  self.enc1, self.enc2 = nn.Linear(input, H, { dtype = dt }), nn.Linear(H, C, { dtype = dt })
  self.dec1, self.dec2 = nn.Linear(C, H, { dtype = dt }), nn.Linear(H, input, { dtype = dt })
end

-- encode(x) -> the code c = W_e2 act(W_e1 x + b_e1) + b_e2
function AE:encode(x) return self.enc2(act(self, self.enc1(x))) end
-- decode(c) -> the reconstruction's logits W_d2 act(W_d1 c + b_d1) + b_d2
function AE:decode(c) return self.dec2(act(self, self.dec1(c))) end
function AE:forward(x) return self:decode(self:encode(x)) end

-- loss(x) -> the mean over the batch of the summed binary cross-entropy
function AE:loss(x)
  return usagi.bce_with_logits(self:forward(x), x, { reduction = 'sum' }) / x:size(1)
end

nn.GaussianLatent, nn.VAE, nn.Autoencoder = Latent, VAE, AE
M.GaussianLatent, M.VAE, M.Autoencoder = Latent, VAE, AE

return M
