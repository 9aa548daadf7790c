/*
 * vae.h -- the VAE plugin's fused op (vae.c has the equations): the
 * reparameterised sample and the KL divergence to a prior, with autograd.
 */
#ifndef USAGI_VAE_H
#define USAGI_VAE_H

#include "usagi/core.h"

/* *z (mu's shape) and *kl (mu's shape without its last dim) for mu, lv, eps
 * and an optional prior (mup and lvp both or neither). */
usg_status usg_ad_gaussian(usg_tensor **z, usg_tensor **kl, usg_tensor *mu, usg_tensor *lv,
                           usg_tensor *eps, usg_tensor *mup, usg_tensor *lvp);

#endif
