#!/usr/bin/env python3
"""Write the fixtures of `crates/reid-losses/tests/integration/parity_cion.rs`.

Our own PyTorch re-implementation of the CION objectives as described in
CION_ReIDZoo (Zplusdragon/CION_ReIDZoo @ 7ac6fd7: `CION_Pretrain/models/Head.py`, `CION_Pretrain/loss.py`, `CION_Pretrain/run.py`, `CION_Pretrain/utils.py`): the DINO head, the loss,
§2.4 (schedules, EMA, clipping), and of fast-reid's adaptive label smoothing
(`fastreid-torchreid.md` §3.2). Float32 inputs, float64 maths.
Output: `crates/reid-losses/tests/fixtures/losses/cion.json`.
Run: `.venv/bin/python tools/gen_cion_loss_fixtures.py`.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-losses", "tests", "fixtures", "losses")
SEED = 11


def flat(t):
    return t.detach().double().flatten().tolist()


# ---------------------------------------------------------------- DINO head
def head_params(g, in_dim, hidden, bottleneck, out_dim):
    """Random head parameters in PyTorch layout ([out, in] weights)."""
    dims = [in_dim, hidden, hidden, bottleneck]
    p = {}
    for i in range(3):
        p[f"mlp.{i}.weight"] = torch.randn(dims[i + 1], dims[i], generator=g) * 0.3
        p[f"mlp.{i}.bias"] = torch.randn(dims[i + 1], generator=g) * 0.1
    p["last_layer.weight_g"] = torch.rand(out_dim, 1, generator=g) + 0.5
    p["last_layer.weight_v"] = torch.randn(out_dim, bottleneck, generator=g)
    return p


def head_forward(p, x):
    h = x
    for i in range(3):
        h = h @ p[f"mlp.{i}.weight"].t() + p[f"mlp.{i}.bias"]
        if i < 2:
            h = F.gelu(h)  # exact (erf) GELU
    h = h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
    v = p["last_layer.weight_v"]
    w = p["last_layer.weight_g"] * v / v.norm(dim=1, keepdim=True)
    return h @ w.t()


# ---------------------------------------------------------------- CION loss
def cion_loss(student, teacher, center, k, v, ts=0.1, tt=0.04):
    """Direct loop over (g, v) pairs, images and identity pairs."""
    b = teacher.shape[0] // 2
    n = b // k
    p = F.softmax((teacher - center) / tt, dim=1).detach()
    s = F.log_softmax(student / ts, dim=1)

    def h(pg, sv, rows_t, rows_s):
        return (-(pg[rows_t] * sv[rows_s]).sum(1)).mean()

    total = 0.0
    pairs = 0
    for g in range(2):
        pg = p[g * b:(g + 1) * b]
        for c in range(v):
            if c == g:
                continue
            sv = s[c * b:(c + 1) * b]
            same = h(pg, sv, list(range(b)), list(range(b)))
            cross = 0.0
            for i in range(k):
                for j in range(k):
                    if i != j:
                        cross = cross + h(pg, sv, [m * k + i for m in range(n)],
                                          [m * k + j for m in range(n)])
            total = total + (same + cross) / (k * (k - 1) + 1)
            pairs += 1
    return total / pairs


def dino_plain(student, teacher, center, v, ts=0.1, tt=0.04):
    p = F.softmax((teacher - center) / tt, dim=1).detach().chunk(2)
    s = (student / ts).chunk(v)
    total, terms = 0.0, 0
    for g, q in enumerate(p):
        for c in range(v):
            if c == g:
                continue
            total = total + (-(q * F.log_softmax(s[c], dim=1)).sum(1)).mean()
            terms += 1
    return total / terms


# ---------------------------------------------------------------- schedules
def cosine(base, final, epochs, ipe, warmup_epochs=0, start=0.0):
    warm = np.array([])
    wi = warmup_epochs * ipe
    if warmup_epochs > 0:
        warm = np.linspace(start, base, wi)
    iters = np.arange(epochs * ipe - wi)
    sched = np.array([final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / len(iters)))
                      for i in iters])
    return np.concatenate((warm, sched)).tolist()


# ---------------------------------------------------------------- adaptive CE
def adaptive_ce(logits, labels, alpha, divide_by_nonzero):
    n, k = logits.shape
    eps = alpha * F.softmax(logits, 1).gather(1, labels[:, None]).detach()  # [N, 1]
    onehot = F.one_hot(labels, k).to(logits.dtype)
    target = onehot * (1 - eps) + (1 - onehot) * eps / (k - 1)
    per = (-target * F.log_softmax(logits, 1)).sum(1)
    if divide_by_nonzero:
        return per.sum() / max(int((per != 0).sum().item()), 1)
    return per.sum() / n


def main():
    g = torch.Generator().manual_seed(SEED)
    out = dict(generator="tools/gen_cion_loss_fixtures.py", torch=torch.__version__,
               numpy=np.__version__, seed=SEED)

    # Head: in 8, hidden 16, bottleneck 8, out 12, 3 layers.
    dims = dict(in_dim=8, hidden=16, bottleneck=8, out_dim=12)
    pa = head_params(g, **dims)
    x = torch.randn(5, 8, generator=g)
    r = torch.randn(5, 12, generator=g)
    p64 = {name: t.double().clone().requires_grad_(True) for name, t in pa.items()}
    x64 = x.double().clone().requires_grad_(True)
    y = head_forward(p64, x64)
    (y * r.double()).sum().backward()
    out["head"] = dict(dims=dims, params={k: dict(shape=list(v.shape), data=flat(v))
                                          for k, v in pa.items()},
                       input=flat(x), input_shape=[5, 8], output=flat(y),
                       probe=flat(r), input_grad=flat(x64.grad),
                       grads={k: flat(v.grad) for k, v in p64.items()
                              if k != "last_layer.weight_g"})

    # Loss: B = 6, V = 4 crops, D = 16, K in {1, 2, 3}.
    b, v, d = 6, 4, 16
    student = torch.randn(v * b, d, generator=g) * 0.2
    teacher = torch.randn(2 * b, d, generator=g) * 0.5
    center = torch.randn(1, d, generator=g) * 0.1
    cases = []
    for k in [1, 2, 3]:
        s64 = student.double().clone().requires_grad_(True)
        loss = cion_loss(s64, teacher.double(), center.double(), k, v)
        loss.backward()
        if k == 1:
            plain = dino_plain(student.double(), teacher.double(), center.double(), v)
            assert abs(float(plain) - float(loss.detach())) < 1e-12
        cases.append(dict(instances=k, loss=float(loss.detach()), grad=flat(s64.grad)))
    center_after = 0.9 * center.double() + 0.1 * teacher.double().mean(0, keepdim=True)
    out["loss"] = dict(batch=b, n_crops=v, dim=d, student_temp=0.1, teacher_temp=0.04,
                       student=flat(student), teacher=flat(teacher), center=flat(center),
                       cases=cases, center_momentum=0.9, center_after=flat(center_after))

    # Schedules.
    out["schedules"] = [
        dict(name="lr", args=[1.875e-3, 1e-6, 5, 3, 2, 0.0], values=cosine(1.875e-3, 1e-6, 5, 3, 2, 0.0)),
        dict(name="wd", args=[0.04, 0.4, 5, 3, 0, 0.0], values=cosine(0.04, 0.4, 5, 3)),
        dict(name="momentum", args=[0.996, 1.0, 4, 3, 0, 0.0], values=cosine(0.996, 1.0, 4, 3)),
        dict(name="one_warmup_iter", args=[1.0, 0.0, 2, 1, 1, 0.5], values=cosine(1.0, 0.0, 2, 1, 1, 0.5)),
        dict(name="all_warmup", args=[2.0, 0.0, 2, 2, 2, 1.0], values=cosine(2.0, 0.0, 2, 2, 2, 1.0)),
    ]

    # EMA of the head: teacher = pa, student = pb, m = 0.9 (all parameters,
    # frozen weight_g included).
    pb = head_params(g, **dims)
    m = 0.9
    out["ema"] = dict(momentum=m, student={k: flat(t) for k, t in pb.items()},
                      result={k: flat(m * pa[k].double() + (1 - m) * pb[k].double()) for k in pa})

    # Per-parameter clipping at 3.0 of random gradients of varied scale.
    clip = 3.0
    raw, clipped, norms = {}, {}, {}
    for i, name in enumerate(k for k in pa if k != "last_layer.weight_g"):
        scale = [0.05, 2.0, 0.5, 5.0, 0.1, 1.0, 3.0][i % 7]
        gr = (torch.randn(*pa[name].shape, generator=g) * scale).double()
        norm = gr.norm(2)
        coef = clip / (norm + 1e-6)
        raw[name] = flat(gr)
        clipped[name] = flat(gr * coef if coef < 1 else gr)
        norms[name] = float(norm)
    assert any(n > clip for n in norms.values()) and any(n < clip for n in norms.values())
    out["clip"] = dict(max_norm=clip, raw=raw, clipped=clipped, norms=norms)

    # fast-reid adaptive smoothing.
    logits = torch.randn(8, 5, generator=g) * 2
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    ce_cases = []
    for alpha, dnz in [(0.2, True), (0.5, False)]:
        l64 = logits.double().clone().requires_grad_(True)
        loss = adaptive_ce(l64, labels, alpha, dnz)
        loss.backward()
        ce_cases.append(dict(alpha=alpha, divide_by_nonzero=dnz, loss=float(loss.detach()),
                             grad=flat(l64.grad)))
    out["adaptive_ce"] = dict(shape=[8, 5], logits=flat(logits), labels=labels.tolist(),
                              cases=ce_cases)

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "cion.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
