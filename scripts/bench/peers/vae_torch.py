#!/usr/bin/python3
"""vae_torch.py -- the PyTorch half of the VAE benchmark: the same model, data,
optimizer and epochs as scripts/bench/vae.lua, the same output lines
(`row vae_fashion <metric> <value>`). Debian's python3-torch; the images
come from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
or $USAGI_DATA/fashion-mnist, read as IDX with gzip.

    /usr/bin/python3 scripts/bench/peers/vae_torch.py [--threads N] [--reps EPOCHS]
"""
import argparse
import gzip
import os
import statistics
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(name):
    dirs = [os.path.join(os.environ['USAGI_DATA'], 'fashion-mnist')] if os.environ.get('USAGI_DATA') else []
    dirs.append('/usr/share/datasets/fashion-mnist')
    for d in dirs:
        p = os.path.join(d, name)
        if os.path.exists(p):
            with gzip.open(p, 'rb') as f:
                raw = f.read()
            nd = raw[3]
            shape = struct.unpack('>' + 'I' * nd, raw[4:4 + 4 * nd])
            return torch.frombuffer(bytearray(raw[4 + 4 * nd:]), dtype=torch.uint8).reshape(shape)
    raise SystemExit('vae_torch.py: %s not found in %s (apt-get install dataset-fashion-mnist)' % (name, dirs))


class VAE(nn.Module):
    """784-400-20, ReLU, Bernoulli decoder: the model of nn.VAE"""

    def __init__(self, D=784, H=400, Z=20):
        super().__init__()
        self.enc, self.mu, self.lv = nn.Linear(D, H), nn.Linear(H, Z), nn.Linear(H, Z)
        self.dec, self.out = nn.Linear(Z, H), nn.Linear(H, D)

    def loss(self, x):
        h = F.relu(self.enc(x))
        mu, lv = self.mu(h), self.lv(h)
        z = mu + torch.exp(lv / 2) * torch.randn_like(mu)
        logits = self.out(F.relu(self.dec(z)))
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)
        kl = -0.5 * (1 + lv - mu * mu - lv.exp()).sum(-1)
        return (nll + kl).mean(), -(nll + kl).sum().item()


def status_mb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--warmup', type=int)
    p.add_argument('--only')
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print('# torch %s vae | threads %d | %d epochs' % (torch.__version__, torch.get_num_threads(), a.reps))
    name = 'vae_fashion'
    train = idx('train-images-idx3-ubyte.gz').reshape(-1, 784).float() / 255
    test = idx('t10k-images-idx3-ubyte.gz').reshape(-1, 784).float() / 255
    print('row %s base_mb %.1f' % (name, status_mb('VmRSS')), flush=True)
    torch.manual_seed(1)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    N, B, times = train.shape[0], 100, []
    for epoch in range(a.reps):
        x = train[torch.randperm(N)]
        t0 = time.perf_counter()
        for lo in range(0, N, B):
            loss, _ = model.loss(torch.bernoulli(x[lo:lo + B]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch > 0 or a.reps == 1:
            times.append(time.perf_counter() - t0)
    print('row %s images_per_s %.1f' % (name, N / statistics.median(times)), flush=True)
    with torch.no_grad():
        xt = torch.bernoulli(test)
        total = sum(model.loss(xt[lo:lo + 500])[1] for lo in range(0, xt.shape[0], 500))
    print('row %s test_elbo %.3f' % (name, total / xt.shape[0]))
    print('row %s peak_mb %.1f' % (name, status_mb('VmHWM')), flush=True)


if __name__ == '__main__':
    main()
