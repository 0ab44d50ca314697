#!/usr/bin/env python3
"""Write value-and-gradient fixtures for `crates/reid-losses/tests/integration/parity.rs`.

Our own PyTorch reference of each formula in
fast-reid (JDAI-CV/fast-reid @ c9bc3ce) and torchreid (KaiyangZhou/deep-person-reid @ f8cd150) losses (not upstream code).
Output: `crates/reid-losses/tests/fixtures/losses/losses.json`, float32 inputs, float64 maths for
the reference values. Run: `.venv/bin/python tools/gen_loss_fixtures.py`.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-losses", "tests", "fixtures", "losses")


def ce(logits, labels, eps, convention, divide_by_nonzero=True):
    n, k = logits.shape
    logp = F.log_softmax(logits, dim=1)
    onehot = F.one_hot(labels, k).to(logits.dtype)
    if convention == "torchreid":
        target = (1 - eps) * onehot + eps / k
        return (-target * logp).mean(0).sum()
    off = eps / (k - 1)
    target = onehot * (1 - eps) + (1 - onehot) * off
    per = (-target * logp).sum(1)
    if divide_by_nonzero:
        cnt = max(int((per != 0).sum().item()), 1)
        return per.sum() / cnt
    return per.sum() / n


def normalize(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def euclid(x):
    sq = (x * x).sum(1, keepdim=True)
    return (sq + sq.t() - 2 * x @ x.t()).clamp_min(1e-12).sqrt()


def cosine(x):
    xn = normalize(x)
    return 2 - 2 * xn @ xn.t()


def sm_weights(v, mask):
    mx = (v * mask).max(dim=1, keepdim=True)[0]
    e = torch.exp(v - mx) * mask
    return e / (e.sum(1, keepdim=True) + 1e-6)


def triplet(x, labels, margin, distance, norm, mining):
    if norm:
        x = normalize(x)
    d = euclid(x) if distance == "euclidean" else cosine(x)
    pos = (labels[:, None] == labels[None, :]).to(x.dtype)
    neg = 1 - pos
    if mining == "hard":
        ap = (d * pos).max(1)[0]
        an = (d * neg + pos * 1e9).min(1)[0]
    else:
        dp, dn = d * pos, d * neg
        ap = (dp * sm_weights(dp, pos)).sum(1)
        an = (dn * sm_weights(-dn, neg)).sum(1)
    if margin is None:
        return torch.log1p(torch.exp(ap - an)).mean()
    return torch.clamp(ap - an + margin, min=0).mean()


def run(fn, x, *args):
    x64 = x.double().clone().requires_grad_(True)
    loss = fn(x64, *args)
    loss.backward()
    return float(loss.detach()), x64.grad.float().flatten().tolist()


def main():
    g = torch.Generator().manual_seed(7)
    cases = []
    n, k, dim = 8, 5, 16
    logits = torch.randn(n, k, generator=g) * 2
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    for conv in ["torchreid", "fastreid"]:
        for eps in [0.0, 0.1, 0.3]:
            for dnz in ([True, False] if conv == "fastreid" else [True]):
                v, gr = run(ce, logits, labels, eps, conv, dnz)
                cases.append(dict(kind="ce", name=f"ce_{conv}_eps{eps}_dnz{dnz}",
                                  convention=conv, epsilon=eps, divide_by_nonzero=dnz,
                                  shape=[n, k], input=logits.flatten().tolist(),
                                  labels=labels.tolist(), loss=v, grad=gr))
    feats = torch.randn(n, dim, generator=g)
    pk = torch.tensor([3, 3, 7, 7, 1, 1, 9, 9])  # P=4 identities, K=2
    for distance in ["euclidean", "cosine"]:
        for norm in [False, True]:
            for mining in ["hard", "weighted"]:
                for margin in [0.3, None, 5.0]:
                    v, gr = run(triplet, feats, pk, margin, distance, norm, mining)
                    cases.append(dict(kind="triplet",
                                      name=f"tri_{distance}_norm{norm}_{mining}_m{margin}",
                                      margin=margin, distance=distance, normalize=norm,
                                      mining=mining, shape=[n, dim],
                                      input=feats.flatten().tolist(), labels=pk.tolist(),
                                      loss=v, grad=gr))
    centers = torch.randn(6, dim, generator=g)
    cl = torch.tensor([0, 5, 2, 2, 1, 0, 3, 5])
    x64 = feats.double().clone().requires_grad_(True)
    c64 = centers.double().clone().requires_grad_(True)
    d = (x64 * x64).sum(1, keepdim=True) + (c64 * c64).sum(1)[None, :] - 2 * x64 @ c64.t()
    loss = d.gather(1, cl[:, None]).clamp(1e-12, 1e12).mean()
    loss.backward()
    cases.append(dict(kind="center", name="center", shape=[n, dim],
                      input=feats.flatten().tolist(), centers_shape=[6, dim],
                      centers=centers.flatten().tolist(), labels=cl.tolist(),
                      loss=float(loss.detach()), grad=x64.grad.float().flatten().tolist(),
                      centers_grad=c64.grad.float().flatten().tolist()))
    # circle-softmax logits followed by torchreid CE (eps 0.1), s=64, m=0.35
    w = torch.randn(6, dim, generator=g)
    x64 = feats.double().clone().requires_grad_(True)
    w64 = w.double().clone().requires_grad_(True)
    cosm = normalize(x64) @ normalize(w64).t()
    m, s = 0.35, 64.0
    ap = torch.relu(1 + m - cosm.detach())
    an = torch.relu(cosm.detach() + m)
    oh = F.one_hot(cl, 6).double()
    lg = s * (oh * ap * (cosm - (1 - m)) + (1 - oh) * an * (cosm - m))
    loss = ce(lg, cl, 0.1, "torchreid")
    loss.backward()
    cases.append(dict(kind="circle_softmax", name="circle_softmax", shape=[n, dim],
                      input=feats.flatten().tolist(), weight_shape=[6, dim],
                      weight=w.flatten().tolist(), labels=cl.tolist(),
                      loss=float(loss.detach()), grad=x64.grad.float().flatten().tolist(),
                      weight_grad=w64.grad.float().flatten().tolist()))
    # pair-wise circle loss, m=0.25, gamma=128 (and a softer gamma=2)
    for gamma in [128.0, 2.0]:
        def pcl(x, y, m=0.25, gamma=gamma):
            e = normalize(x)
            sim = e @ e.t()
            same = (y[:, None] == y[None, :]).double()
            pos = same - torch.eye(len(y), dtype=torch.float64)
            neg = 1 - same
            sp, sn = sim * pos, sim * neg
            a_p = torch.clamp_min(-sp.detach() + 1 + m, 0)
            a_n = torch.clamp_min(sn.detach() + m, 0)
            lp = -gamma * a_p * (sp - (1 - m)) + (-99999999.0) * (1 - pos)
            ln = gamma * a_n * (sn - m) + (-99999999.0) * (1 - neg)
            return F.softplus(torch.logsumexp(lp, 1) + torch.logsumexp(ln, 1)).mean()
        v, gr = run(pcl, feats, pk)
        cases.append(dict(kind="pair_circle", name=f"pair_circle_g{gamma}", gamma=gamma,
                          margin=0.25, shape=[n, dim], input=feats.flatten().tolist(),
                          labels=pk.tolist(), loss=v, grad=gr))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "losses.json"), "w") as f:
        json.dump(dict(generator="tools/gen_loss_fixtures.py", torch=torch.__version__,
                       seed=7, cases=cases), f)
    print(f"wrote {len(cases)} cases with torch {torch.__version__}")


if __name__ == "__main__":
    main()
