-- modules/vae/ops.lua -- the op table of the VAE plugin (host/ops/README.md):
-- `require 'usagi.vae'` loads usagi/vae.so, whose entry point, generated
-- from this table, registers vae.gaussian and runs the Lua face (vae.lua).
-- The fused op and its backward are in vae.c.
return {
  name = 'vae',
  plugin = { version = '0.1.0' },
  includes = { 'usagi/lua.h', 'vae.h' },
  ops = {
    {
      name = 'gaussian',
      doc = 'vae.gaussian(mu, logvar, eps [, mu_p, logvar_p]) -> z, kl\n'
        .. 'z = mu + exp(logvar / 2) eps (the reparameterisation) and kl, per row, the KL divergence\n'
        .. 'of N(mu, exp(logvar)) from the prior N(mu_p, exp(logvar_p)) (N(0, 1) when absent).\n'
        .. 'One fused op. Equations: modules/vae/README.md.',
      forms = { 'usagi' },
      args = { { 'tensor', 'mu' }, { 'tensor', 'lv' }, { 'tensor', 'eps' },
        { 'tensor', 'mup', default = 'NULL' }, { 'tensor', 'lvp', default = 'NULL' } },
      call = 'usg_ad_gaussian(&r1, &r2, mu, lv, eps, mup, lvp)',
      returns = { 'tensor', 'tensor' },
      grad = true,
      dtypes = 'float',
      test = { nograd = { 3 } },     -- eps is a draw, not differentiated
    },
  },
}
