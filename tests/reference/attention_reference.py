#!/usr/bin/python3
"""PyTorch references for the attention plugin: writes attention_fixture.lua.

For fixed seeds, builds small float64 inputs (and parameters) and computes,
batch first, q (B, Lq, Dq), k (B, Lk, Dk), v (B, Lk, Dv):

    e = scores(q, k) (+ attn_mask), masked keys set to -inf
    weights = softmax(e) over the keys (B, Lq, Lk)
    context = weights @ v (B, Lq, Dv)

with four scores written with plain torch ops: dot (q @ k^T), scaled_dot
(q @ k^T / sqrt(D)), general (Luong, q @ W @ k^T) and additive (Bahdanau,
Va(tanh(Wa q_i + Ua k_j))). A fifth kind, mha, is torch.nn.MultiheadAttention
itself (time major: query (L, N, E), key/value (S, N, E); parameters under
their state_dict names, biases randomized since PyTorch starts them at 0).
Masks are stored so Lua can rebuild them: key_padding_mask (a list of lists
of 0/1, 1 = masked), lengths (keys j > lengths[b], 1-based, masked), causal =
true (key j > query i masked) or a float attn_mask tensor added to the scores.
Each case back-propagates L = sum(context * r_ctx) + sum(weights * r_w) for
fixed random r_ctx, r_w and stores the gradient of L with respect to every
input and parameter under grad (same keys), so the Lua specs never need
Python. CASES below lists the cases.

Run from anywhere with Debian's python3-torch:
    /usr/bin/python3 tests/reference/attention_reference.py
"""
import math
import os

import torch

B, LQ, LK, D, DV, A = 2, 3, 4, 5, 6, 7     # batch, queries, keys, q/k size, value size, additive size
E, HEADS, L, S = 8, 2, 3, 4                # mha: embed_dim, num_heads, target and source lengths
F64 = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))
KPM = [[0, 0, 0, 1], [0, 0, 1, 1]]         # key_padding_mask (B, Lk) for kinds 1-4
MHA_KPM = [[0, 0, 0, 1], [0, 1, 1, 0]]     # key_padding_mask (N, S) for mha

CASES = [
    dict(name="dot", kind="dot", seed=1),
    dict(name="dot_key_padding_mask", kind="dot", seed=2, key_padding_mask=KPM),
    dict(name="dot_lengths", kind="dot", seed=3, lengths=[4, 2]),
    dict(name="scaled_dot", kind="scaled_dot", seed=4),
    dict(name="scaled_dot_causal", kind="scaled_dot", seed=5, causal=True),
    dict(name="scaled_dot_attn_mask", kind="scaled_dot", seed=6, attn_mask=True),
    dict(name="general", kind="general", seed=7),
    dict(name="general_key_padding_mask", kind="general", seed=8, key_padding_mask=KPM),
    dict(name="additive", kind="additive", seed=9),
    dict(name="additive_lengths", kind="additive", seed=10, lengths=[4, 2]),
    dict(name="mha", kind="mha", seed=11, average_attn_weights=True),
    dict(name="mha_masks", kind="mha", seed=12, average_attn_weights=True,
         key_padding_mask=MHA_KPM, attn_mask=True),
    dict(name="mha_self_causal", kind="mha", seed=13, average_attn_weights=False,
         self_attention=True, causal=True),
    dict(name="mha_kdim_vdim", kind="mha", seed=14, average_attn_weights=True, kdim=5, vdim=6),
]


def flat(t):
    """A tensor as {shape = {...}, data = {...}} with data in row-major order."""
    t = t.detach().contiguous()
    shape = ", ".join(str(s) for s in t.shape)
    data = ", ".join(repr(float(v)) for v in t.reshape(-1).tolist())
    return "{ shape = { %s }, data = { %s } }" % (shape, data)


def lua(v):
    """A Python value (bool, int, str, list, tensor) as a Lua expression."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return "'%s'" % v
    if isinstance(v, list):
        return "{ %s }" % ", ".join(lua(x) for x in v)
    return flat(v)


def key(name):
    """A table key: bare when it is a Lua name, ["W.weight"] otherwise."""
    return name if name.isidentifier() else '["%s"]' % name


def randn(*shape):
    return torch.randn(*shape, dtype=F64, requires_grad=True)


def rand_mask(*shape):
    """A float additive mask, uniform in [-1, 1]."""
    return 2 * torch.rand(*shape, dtype=F64) - 1


def masked_keys(c, lq, lk):
    """The disallowed positions as a bool (B, Lq, Lk) tensor, or None."""
    m = torch.zeros(B, lq, lk, dtype=torch.bool)
    if "key_padding_mask" in c:                  # key j of batch b padded
        m |= torch.tensor(c["key_padding_mask"], dtype=torch.bool)[:, None, :]
    if "lengths" in c:                           # key j (0-based) >= lengths[b]
        m |= (torch.arange(lk)[None, :] >= torch.tensor(c["lengths"])[:, None])[:, None, :]
    if c.get("causal"):                          # key j > query i
        m |= torch.triu(torch.ones(lq, lk, dtype=torch.bool), diagonal=1)
    return m


def plain_case(c):
    """Kinds 1-4: inputs, parameters, extra fields and (context, weights)."""
    kind = c["kind"]
    lq, lk = (4, 4) if c.get("causal") else (LQ, LK)    # causal: Lq = Lk = 4
    dk = 4 if kind in ("general", "additive") else D   # Dq = 5, Dk = 4 there
    inputs = {"q": randn(B, lq, D), "k": randn(B, lk, dk), "v": randn(B, lk, DV)}
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    params, extra = {}, {}
    if kind == "dot":                            # e = q @ k^T
        e = q @ k.transpose(1, 2)
    elif kind == "scaled_dot":                   # e = q @ k^T / sqrt(D)
        e = q @ k.transpose(1, 2) / math.sqrt(D)
    elif kind == "general":                      # e = q @ W @ k^T, W (Dq, Dk)
        W = torch.nn.Linear(dk, D, bias=False).double()
        params["W.weight"] = W.weight
        e = q @ W.weight @ k.transpose(1, 2)
    else:                                        # e_bij = Va(tanh(Wa q_bi + Ua k_bj))
        Wa, Ua, Va = (torch.nn.Linear(D, A).double(), torch.nn.Linear(dk, A).double(),
                      torch.nn.Linear(A, 1).double())
        for n, m in (("Wa", Wa), ("Ua", Ua), ("Va", Va)):
            params[n + ".weight"], params[n + ".bias"] = m.weight, m.bias
        e = Va(torch.tanh(Wa(q)[:, :, None, :] + Ua(k)[:, None, :, :])).squeeze(-1)
    if c.get("attn_mask"):                       # e += attn_mask (Lq, Lk)
        extra["attn_mask"] = rand_mask(lq, lk)
        e = e + extra["attn_mask"]
    masked = masked_keys(c, lq, lk)
    w = torch.softmax(e.masked_fill(masked, float("-inf")), dim=-1)
    return inputs, params, extra, (w @ v, w), masked


def mha_case(c):
    """Kind 5: torch.nn.MultiheadAttention, time major, need_weights=True."""
    kdim, vdim = c.get("kdim", E), c.get("vdim", E)
    mha = torch.nn.MultiheadAttention(E, HEADS, dropout=0.0, bias=True, kdim=kdim, vdim=vdim,
                                      batch_first=False).double()
    with torch.no_grad():                        # PyTorch initializes both biases to 0
        mha.in_proj_bias.copy_(0.5 * torch.randn(3 * E, dtype=F64))
        mha.out_proj.bias.copy_(0.5 * torch.randn(E, dtype=F64))
    params = dict(mha.named_parameters())
    assert list(params) == list(mha.state_dict()), "state_dict has more than the parameters"
    extra = {"num_heads": HEADS, "embed_dim": E, "need_weights": True,
             "average_attn_weights": c["average_attn_weights"]}
    if "kdim" in c:
        extra.update(kdim=kdim, vdim=vdim)
    if c.get("self_attention"):                  # query = key = value = x (4, N, E)
        inputs = {"x": randn(4, B, E)}
        query = key_ = value = inputs["x"]
    else:
        inputs = {"query": randn(L, B, E), "key": randn(S, B, kdim), "value": randn(S, B, vdim)}
        query, key_, value = inputs["query"], inputs["key"], inputs["value"]
    lq, lk = query.shape[0], key_.shape[0]
    kw = {}
    if "key_padding_mask" in c:                  # bool (N, S), True = padded
        kw["key_padding_mask"] = torch.tensor(c["key_padding_mask"], dtype=torch.bool)
    if c.get("attn_mask"):                       # float (L, S), added to the scaled scores
        extra["attn_mask"] = kw["attn_mask"] = rand_mask(lq, lk)
    if c.get("causal"):                          # bool (L, S), True above the diagonal
        kw["attn_mask"] = torch.triu(torch.ones(lq, lk, dtype=torch.bool), diagonal=1)
    ctx, w = mha(query, key_, value, need_weights=True,
                 average_attn_weights=c["average_attn_weights"], **kw)
    masked = masked_keys(c, lq, lk)              # (N, L, S); weights (N, L, S) or (N, H, L, S)
    return inputs, params, extra, (ctx, w), masked if w.dim() == 3 else masked[:, None]


def case(c):
    torch.manual_seed(c["seed"])
    inputs, params, extra, (ctx, w), masked = (mha_case if c["kind"] == "mha" else plain_case)(c)
    # Sanity: masked weights exactly 0, every row sums to 1 (so no row is all masked).
    assert torch.all(w.masked_select(masked.expand_as(w)) == 0), c["name"]
    assert torch.allclose(w.sum(-1), torch.ones((), dtype=F64), rtol=0, atol=1e-12), c["name"]
    r_ctx, r_w = torch.randn(ctx.shape, dtype=F64), torch.randn(w.shape, dtype=F64)
    loss = (ctx * r_ctx).sum() + (w * r_w).sum()   # L = sum(context * r_ctx) + sum(weights * r_w)
    loss.backward()
    wrt = {**inputs, **params}
    fields = [("name", c["name"]), ("kind", c["kind"])]
    fields += [(n, c[n]) for n in ("key_padding_mask", "lengths", "causal", "self_attention")
               if n in c]
    fields += list(extra.items()) + list(wrt.items())
    fields += [("context", ctx), ("weights", w), ("r_ctx", r_ctx), ("r_w", r_w)]
    body = ["    %s = %s," % (key(n), lua(v)) for n, v in fields]
    body.append("    loss = %s," % repr(loss.item()))
    body.append("    grad = {")
    body += ["      %s = %s," % (key(n), flat(t.grad)) for n, t in wrt.items()]
    body.append("    },")
    return "  {\n" + "\n".join(body) + "\n  },"


HEADER = """\
-- Generated by tests/reference/attention_reference.py with torch %s; do not edit.
-- Batch first (kinds dot, scaled_dot, general, additive): q (B, Lq, Dq), k (B, Lk, Dk),
-- v (B, Lk, Dv); weights = softmax over the keys of the scores with masked keys at -inf,
-- context = weights @ v. dot: q @ k^T; scaled_dot: q @ k^T / sqrt(D); general: q @ W @ k^T
-- (W = ["W.weight"] (Dq, Dk)); additive: Va(tanh(Wa q_i + Ua k_j)) (nn.Linear weights).
-- mha: torch.nn.MultiheadAttention, time major, query (L, N, E), key/value (S, N, E/kdim/vdim)
-- (or x alone when self_attention), parameters under their state_dict names.
-- Masks: key_padding_mask {{0/1}} (1 = masked), lengths (keys j > lengths[b] masked),
-- causal = true (key j > query i masked), attn_mask a float tensor added to the scores.
-- L = sum(context * r_ctx) + sum(weights * r_w); grad holds dL/d of every input and parameter.
-- Tensors: shape + row-major data."""


def main():
    parts = [HEADER % torch.__version__, "return {"] + [case(c) for c in CASES] + ["}"]
    with open(os.path.join(HERE, "attention_fixture.lua"), "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
