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
        'ptb_small', 'ptb_medium', 'dates_attn']
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


class Dates(nn.Module):
    """GRU encoder-decoder with Luong's dot attention, as nn.Seq2Seq builds it:
    logits = W [d^t; c^t] + b, c^t = softmax_s(d^t . h^s) h^s"""

    def __init__(self, V=59, E=64, H=256):
        super().__init__()
        self.src, self.enc = nn.Embedding(V, E), nn.GRU(E, H)
        self.tgt, self.dec = nn.Embedding(V, E), nn.GRU(E, H)
        self.out = nn.Linear(2 * H, V)

    def encode(self, x):                    # x (B, Ts) -> hs (B, Ts, H), h (1, B, H)
        hs, h = self.enc(self.src(x.t()))
        return hs.transpose(0, 1), h

    def decode(self, hs, y_in, h):          # y_in (B, T) -> logits (B, T, V), h
        d, h = self.dec(self.tgt(y_in.t()), h)
        d = d.transpose(0, 1)
        w = torch.softmax(torch.bmm(d, hs.transpose(1, 2)), -1)
        return self.out(torch.cat([d, torch.bmm(w, hs)], -1)), h


def beam_search(model, x, k=5, steps=10, start=0):
    """one question x (Ts) at a time, its k beams as the batch; no stop id"""
    hs, h = model.encode(x.unsqueeze(0))
    hs, h = hs.expand(k, -1, -1).contiguous(), h.expand(-1, k, -1).contiguous()
    V = model.out.out_features
    scores = torch.full((k,), float('-inf'), dtype=torch.float64)
    scores[0] = 0
    tok, seqs = torch.full((k, 1), start, dtype=torch.long), [[] for _ in range(k)]
    for _ in range(steps):
        logits, h = model.decode(hs, tok, h)
        total = torch.log_softmax(logits[:, 0].double(), -1) + scores[:, None]
        vals, idx = total.reshape(-1).topk(k)
        parents, tokens = idx // V, idx % V
        seqs = [seqs[p] + [t] for p, t in zip(parents.tolist(), tokens.tolist())]
        scores, h, tok = vals, h[:, parents], tokens[:, None]
    return seqs[0]


def dates_row(name, a):
    emit(name, 'base_mb', status_mb('VmRSS'), '%.1f')
    torch.manual_seed(1)
    V, Ts, Tt, B = 59, 29, 11, 64
    model = Dates(V)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=0.001)
    x, y = torch.randint(0, V, (B, Ts)), torch.randint(0, V, (B, Tt))

    def step():
        opt.zero_grad(set_to_none=True)
        hs, h = model.encode(x)
        logits, _ = model.decode(hs, y[:, :-1], h)
        loss = F.cross_entropy(logits.reshape(-1, V), y[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    ms = time_ms(step, a.reps, a.warmup)
    emit(name, 'step_ms', ms)
    emit(name, 'samples_per_s', B / (ms * 1e-3), '%.1f')
    model.eval()

    def beams():
        with torch.no_grad():
            for i in range(16):
                beam_search(model, x[i])

    bms = time_ms(beams, a.reps, a.warmup)
    emit(name, 'beam_sents_per_s', 16 / (bms * 1e-3), '%.1f')
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
        elif name == 'dates_attn':
            dates_row(name, a)
        else:
            kind, H = name.split('_h')
            cell_row(name, kind, int(H), a)


if __name__ == '__main__':
    main()
