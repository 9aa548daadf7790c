#!/usr/bin/python3
"""PyTorch references for the recurrent plugins: writes rnn_fixture.lua,
lstm_fixture.lua and gru_fixture.lua.

For fixed seeds, builds torch.nn.RNN / LSTM / GRU in float64, runs it on a
small time-major input x (T, B, I) with initial states (h0, and c0 for the
LSTM), and back-propagates L = sum(out * r_out) + sum(h_n * r_hn)
(+ sum(c_n * r_cn)) for fixed random r_*. A bidirectional case has
states (2 * num_layers, B, H) and out (T, B, 2H). A case with `lengths` runs each
sequence b alone over its first lengths[b] steps, so out (and grad_x) is zero
past its length and h_n/c_n[:, b] are the states at step lengths[b]. Each
fixture is a Lua list of cases holding the weights (PyTorch's names), inputs,
outputs and the gradient of L with respect to every weight, x and the initial
states, so the Lua specs never need Python. FAMILIES below lists the cases.

Run from anywhere with Debian's python3-torch:
    /usr/bin/python3 tests/reference/recurrent_reference.py
"""
import os

import torch

T, B, I, H = 5, 3, 4, 6
HERE = os.path.dirname(os.path.abspath(__file__))

# name -> module class, state names ("h" alone, or "h" and "c"), cases.
FAMILIES = [
    ("rnn", torch.nn.RNN, ["h"], [
        dict(seed=1, num_layers=2, nonlinearity="tanh"),
        dict(seed=2, num_layers=2, nonlinearity="relu"),
        dict(seed=9, num_layers=2, nonlinearity="tanh", bidirectional=True),
    ]),
    ("lstm", torch.nn.LSTM, ["h", "c"], [
        dict(seed=3, num_layers=1),
        dict(seed=4, num_layers=2),
        dict(seed=7, num_layers=1, lengths=[5, 3, 1]),
        dict(seed=10, num_layers=2, bidirectional=True),
        dict(seed=11, num_layers=2, bidirectional=True, lengths=[5, 3, 1]),
    ]),
    ("gru", torch.nn.GRU, ["h"], [
        dict(seed=5, num_layers=1),
        dict(seed=6, num_layers=2),
        dict(seed=8, num_layers=1, lengths=[5, 3, 1]),
        dict(seed=12, num_layers=1, bidirectional=True, lengths=[4, 5, 2]),
    ]),
]


def flat(t):
    """A tensor as {shape = {...}, data = {...}} with data in row-major order."""
    t = t.detach().contiguous()
    shape = ", ".join(str(s) for s in t.shape)
    data = ", ".join(repr(float(v)) for v in t.reshape(-1).tolist())
    return "{ shape = { %s }, data = { %s } }" % (shape, data)


def run(module, x, init):
    """out, [final states] of module on x from the list of initial states."""
    out, fin = module(x, init[0] if len(init) == 1 else tuple(init))
    return out, [fin] if len(init) == 1 else list(fin)


def run_lengths(module, x, init, lengths):
    """Each sequence b alone over x[:lengths[b], b]; out zero-padded to T."""
    outs, fins = [], []
    for b, n in enumerate(lengths):
        o, f = run(module, x[:n, b:b + 1], [s[:, b:b + 1] for s in init])
        outs.append(torch.cat([o, o.new_zeros(T - n, 1, o.shape[2])]))
        fins.append(f)
    return torch.cat(outs, 1), [torch.cat(f, 1) for f in zip(*fins)]


def case(cls, states, seed, num_layers, nonlinearity=None, lengths=None, bidirectional=False):
    torch.manual_seed(seed)
    kw = {"nonlinearity": nonlinearity} if nonlinearity else {}
    module = cls(I, H, num_layers=num_layers, bidirectional=bidirectional, **kw).double()
    f64, D = torch.float64, 2 if bidirectional else 1
    L = num_layers * D                        # the states' first dim
    x = torch.randn(T, B, I, dtype=f64, requires_grad=True)
    init = [(0.5 * torch.randn(L, B, H, dtype=f64)).requires_grad_(True) for _ in states]
    r_out = torch.randn(T, B, D * H, dtype=f64)
    r_fin = [torch.randn(L, B, H, dtype=f64) for _ in states]
    out, fin = run_lengths(module, x, init, lengths) if lengths else run(module, x, init)
    loss = (out * r_out).sum() + sum((f * r).sum() for f, r in zip(fin, r_fin))
    loss.backward()
    fields = [("nonlinearity", "'%s'" % nonlinearity)] if nonlinearity else []
    fields += [("num_layers", str(num_layers)), ("input_size", str(I)), ("hidden_size", str(H))]
    if bidirectional:
        fields.append(("bidirectional", "true"))
    if lengths:
        fields.append(("lengths", "{ %s }" % ", ".join(str(n) for n in lengths)))
    fields += [("loss", repr(loss.item())), ("x", flat(x))]
    fields += [(s + "0", flat(t)) for s, t in zip(states, init)]
    fields += [("r_out", flat(r_out))] + [("r_%sn" % s, flat(t)) for s, t in zip(states, r_fin)]
    fields += [("out", flat(out))] + [(s + "_n", flat(t)) for s, t in zip(states, fin)]
    fields += [("grad_x", flat(x.grad))]
    fields += [("grad_%s0" % s, flat(t.grad)) for s, t in zip(states, init)]
    weights = ["weights = {"]
    grads = ["grads = {"]
    for name, p in module.named_parameters():
        weights.append("      %s = %s," % (name, flat(p)))
        grads.append("      %s = %s," % (name, flat(p.grad)))
    weights.append("    }")
    grads.append("    }")
    body = ["    %s = %s," % kv for kv in fields]
    body.append("    " + "\n".join(weights) + ",")
    body.append("    " + "\n".join(grads) + ",")
    return "  {\n" + "\n".join(body) + "\n  },"


def header(cls, states, cases):
    layers = " or ".join(sorted({str(c["num_layers"]) for c in cases}))
    lines = ["-- Generated by tests/reference/recurrent_reference.py with torch %s; do not edit."
             % torch.__version__,
             "-- torch.nn.%s(%d, %d, num_layers=%s) in float64 on x (%d, %d, %d) with %s;"
             % (cls.__name__, I, H, layers, T, B, I, ", ".join(s + "0" for s in states))]
    if any(c.get("bidirectional") for c in cases):
        lines.append("-- a case with bidirectional = true: states (2 * num_layers, B, H),"
                     " out (T, B, 2H);")
    if any("lengths" in c for c in cases):
        lines.append("-- a case with lengths runs each sequence b alone over x[:lengths[b], b]"
                     " (out is 0 past it);")
    loss = " + ".join(["sum(out * r_out)"] + ["sum(%s_n * r_%sn)" % (s, s) for s in states])
    lines.append("-- L = %s. Tensors: shape + row-major data." % loss)
    return lines


def main():
    for name, cls, states, cases in FAMILIES:
        parts = header(cls, states, cases) + ["return {"]
        parts += [case(cls, states, **c) for c in cases] + ["}"]
        with open(os.path.join(HERE, name + "_fixture.lua"), "w") as f:
            f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
