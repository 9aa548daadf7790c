#!/usr/bin/python3
"""recurrent_torch.py -- the PyTorch half of the recurrent benchmark: the rows
of scripts/bench/recurrent.lua with torch.nn.RNN / LSTM / GRU and the same
PTB language models, the same shapes, loss, timing scheme and output format.

    /usr/bin/python3 scripts/bench/peers/recurrent_torch.py [--threads N]
        [--only NAME,...] [--reps R] [--warmup W]

Run it with Debian's /usr/bin/python3 (python3-torch). torch.set_num_threads
does not limit OpenBLAS, which PyTorch 1.13 on Debian uses for its matrix
products: set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (and
OMP_WAIT_POLICY=PASSIVE, see shared BENCHMARKING.md) before Python starts;
the driver scripts/bench/recurrent does.

Rows and metrics are those of recurrent.lua (its header says what each one
times); what differs is only what PyTorch needs said:
  - recurrent layers: time-major (T, B, I) input (batch_first=False), h0 left
    to PyTorch (zeros); train_ms clears gradients to None before each call;
    infer_ms runs under torch.no_grad().
  - PTB: nn.Embedding, nn.LSTM(H, H, 2, dropout), nn.Linear, F.cross_entropy
    (mean), torch.optim.SGD(lr=1), opt.zero_grad(set_to_none=True) as usagi's
    zero_grad, torch.nn.utils.clip_grad_norm_(params, 5); the LSTM state is
    carried from step to step, detached.
  - base_mb / peak_mb: VmRSS before the row and VmHWM after it, of this Python
    process (which holds the torch libraries: its base is much larger than
    usagi's).
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS = ['rnn_h256', 'rnn_h512', 'lstm_h256', 'lstm_h512', 'gru_h256', 'gru_h512',
        'bilstm_h256', 'bilstm_h512',
        'ptb_small', 'ptb_medium']
T, B, I = 64, 32, 128
PTB = {
    'ptb_small': dict(V=10000, H=200, layers=2, T=20, B=20, dropout=0.0, init=0.1),
    'ptb_medium': dict(V=10000, H=650, layers=2, T=35, B=20, dropout=0.5, init=0.05),
}


def parse():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int)
    p.add_argument('--only')
    p.add_argument('--reps', type=int, default=7)
    p.add_argument('--warmup', type=int, default=2)
    a = p.parse_args()
    if a.reps < 1 or a.warmup < 0 or (a.threads is not None and a.threads < 1):
        p.error('--reps and --threads must be positive, --warmup at least 0')
    if a.only:
        a.only = set(a.only.split(','))
        bad = a.only - set(ROWS)
        if bad:
            p.error('no row %s; rows: %s' % (' '.join(sorted(bad)), ' '.join(ROWS)))
    return a


def status_mb(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float('nan')


def emit(name, metric, value, fmt='%.3f'):
    print(('row %s %s ' + fmt) % (name, metric, value), flush=True)


def time_ms(f, reps, warmup, prep=None):
    """median ms of reps calls of f after warmup untimed ones; prep() before each, untimed"""
    for _ in range(warmup):
        if prep:
            prep()
        f()
    ts = []
    for _ in range(reps):
        if prep:
            prep()
        t0 = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def openblas():
    """config, core and threads of the OpenBLAS torch loaded (same soname: the same library)"""
    try:
        lib = ctypes.CDLL('libopenblas.so.0')
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return (lib.openblas_get_config().decode(), lib.openblas_get_corename().decode(),
                lib.openblas_get_num_threads())
    except (OSError, AttributeError):
        return ('OpenBLAS not found', '?', 0)


def cell_row(name, kind, H, a):
    emit(name, 'base_mb', status_mb('VmRSS'), '%.1f')
    torch.manual_seed(1)
    cls = {'rnn': lambda: nn.RNN(I, H, nonlinearity='tanh'),
           'lstm': lambda: nn.LSTM(I, H), 'gru': lambda: nn.GRU(I, H),
           'bilstm': lambda: nn.LSTM(I, H, bidirectional=True)}[kind]
    model = cls()
    x = torch.randn(T, B, I, requires_grad=True)
    g = torch.randn(T, B, (2 if kind == 'bilstm' else 1) * H)

    def prep():
        x.grad = None
        model.zero_grad(set_to_none=True)

    def train():
        out = model(x)[0]
        loss = (out * g).sum()
        loss.backward()

    def infer():
        with torch.no_grad():
            model(x)

    emit(name, 'train_ms', time_ms(train, a.reps, a.warmup, prep))
    emit(name, 'infer_ms', time_ms(infer, a.reps, a.warmup))
    emit(name, 'peak_mb', status_mb('VmHWM'), '%.1f')


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c['V'], c['H'])
        self.lstm = nn.LSTM(c['H'], c['H'], c['layers'], dropout=c['dropout'])
        self.decoder = nn.Linear(c['H'], c['V'])
        self.p = c['dropout']
        self.state = None

    def forward(self, ids):                 # ids (T, B) -> scores (T*B, V)
        e = self.embed(ids)
        if self.p > 0:
            e = F.dropout(e, self.p, self.training)
        if self.state is not None:
            self.state = tuple(s.detach() for s in self.state)
        h, self.state = self.lstm(e, self.state)
        if self.p > 0:
            h = F.dropout(h, self.p, self.training)
        return self.decoder(h.reshape(-1, h.size(2)))


def ptb_row(name, a):
    c = PTB[name]
    emit(name, 'base_mb', status_mb('VmRSS'), '%.1f')
    torch.manual_seed(1)
    model = LM(c)
    params = list(model.parameters())
    with torch.no_grad():
        for p in params:
            p.uniform_(-c['init'], c['init'])
    model.train()
    opt = torch.optim.SGD(params, lr=1.0)
    x = torch.randint(0, c['V'], (c['T'], c['B']))
    y = torch.randint(0, c['V'], (c['T'] * c['B'],))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    ms = time_ms(step, a.reps, a.warmup)
    emit(name, 'step_ms', ms)
    emit(name, 'tokens_per_s', c['T'] * c['B'] / (ms * 1e-3), '%.1f')
    emit(name, 'peak_mb', status_mb('VmHWM'), '%.1f')


def main():
    a = parse()
    if a.threads:
        torch.set_num_threads(a.threads)
        if torch.get_num_threads() != a.threads:
            sys.exit('recurrent_torch.py: asked for %d threads, torch has %d'
                     % (a.threads, torch.get_num_threads()))
    config, core, blas_threads = openblas()
    parallel = torch.__config__.parallel_info().strip().split('\n')
    print('# torch %s recurrent | %s | core %s | threads torch %d, OpenBLAS %d | '
          'OPENBLAS_CORETYPE=%s OMP_WAIT_POLICY=%s | median of %d reps after %d warm-up'
          % (torch.__version__, config, core, torch.get_num_threads(), blas_threads,
             os.environ.get('OPENBLAS_CORETYPE', '(unset)'),
             os.environ.get('OMP_WAIT_POLICY', '(unset)'), a.reps, a.warmup))
    print('# %s; %s' % (parallel[0].strip(), '; '.join(
        l.strip() for l in parallel if 'backend' in l or 'MKL' in l)))
    for name in ROWS:
        if a.only and name not in a.only:
            continue
        if name.startswith('ptb_'):
            ptb_row(name, a)
        else:
            kind, H = name.split('_h')
            cell_row(name, kind, int(H), a)


if __name__ == '__main__':
    main()
