#!/usr/bin/env python3
"""Write fixtures for `crates/reid-losses/tests/integration/parity_pretrain.rs`.

Our own straightforward PyTorch reference of the LUPerson MoCo v2 and the
LUPerson-NL PNL objectives as described in
LUPerson (DengpanFu/LUPerson @ d5fa344: `lup_moco/lup_moco.py`, `lup_moco/libs/moco_builder.py`) and LUPerson-NL (DengpanFu/LUPerson-NL @ 6b9298e: `PNL/lup_pnl.py`, `PNL/libs/pnl_builder.py`, `PNL/libs/encoder.py`) (not upstream code):
InfoNCE over a key queue, the queue's ring-buffer enqueue, the sequential
prototype update, the prototype-based label correction, the label-guided
instance loss and the full per-step PNL loss.

Inputs are float32; the reference maths run in float64. Output:
`crates/reid-losses/tests/fixtures/losses/pretrain.json`. Run:
`.venv/bin/python tools/gen_pretrain_loss_fixtures.py`.
"""
import json
import os

import numpy
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-losses", "tests", "fixtures", "losses")
SEED = 11


def flat(t):
    return t.detach().double().flatten().tolist()


def normalize(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def f32_unit(g, *shape):
    """Random L2-normalised rows, rounded to float32."""
    return normalize(torch.randn(*shape, generator=g, dtype=torch.float64)).float()


def contrastive_loss(q, k, queue, queue_ids, labels, t, label_positives):
    """mean_i -(1/sum M) sum M log softmax([q.k, q.queue^T] / T); M = [1, 1{id == y}]."""
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ queue.t()
    logits = torch.cat([l_pos, l_neg], 1) / t
    mask = torch.zeros_like(logits)
    mask[:, 0] = 1
    if label_positives:
        mask[:, 1:] = (labels[:, None] == queue_ids[None, :]).double()
    logp = F.log_softmax(logits, 1)
    return (-(mask * logp).sum(1) / mask.sum(1)).mean()


def info_nce(q, k, queue, t):
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ queue.t()
    logits = torch.cat([l_pos, l_neg], 1) / t
    target = torch.zeros(q.shape[0], dtype=torch.long)
    return F.cross_entropy(logits, target)


def enqueue(keys, ids, ptr, new_keys, new_ids):
    """Ring buffer: key j goes to row (ptr + j) % K, later keys overwrite earlier ones."""
    keys, ids = keys.clone(), ids.clone()
    size = keys.shape[0]
    for j in range(new_keys.shape[0]):
        keys[(ptr + j) % size] = new_keys[j]
        ids[(ptr + j) % size] = -1 if new_ids is None else new_ids[j]
    return keys, ids, (ptr + new_keys.shape[0]) % size


def proto_update(protos, q, labels, m):
    """Sequential per-sample EMA (duplicates compound), then row L2-normalisation."""
    p = protos.clone()
    for i in range(q.shape[0]):
        y = int(labels[i])
        p[y] = m * p[y] + (1 - m) * q[i]
    return normalize(p)


def correct(z, p, labels, alpha, threshold):
    s = alpha * F.softmax(z, 1) + (1 - alpha) * F.softmax(p, 1)
    smax, arg = s.max(1)
    out = torch.where(smax > threshold, arg, labels)
    return out, smax


def pnl_step(epoch, z, q, k, queue, queue_ids, labels, protos, cfg):
    supcont = epoch >= cfg["start_supcont_epoch"]
    l_inst = contrastive_loss(q, k, queue, queue_ids, labels, cfg["temperature"], supcont)
    p = q @ protos.t() / cfg["temperature"]
    yhat = labels
    smax = None
    if epoch >= cfg["start_clean_epoch"]:
        yhat, smax = correct(z.detach(), p.detach(), labels, cfg["alpha"], cfg["threshold"])
    l_cls = F.cross_entropy(z, yhat)
    if epoch >= cfg["start_proto_epoch"]:
        l_proto = F.cross_entropy(p, yhat)
    else:
        l_proto = torch.zeros((), dtype=torch.float64)
    total = cfg["w_cls"] * l_cls + cfg["w_inst"] * l_inst + cfg["w_proto"] * l_proto
    return l_cls, l_inst, l_proto, total, yhat, smax


def main():
    g = torch.Generator().manual_seed(SEED)
    n, d, k_size, c = 6, 8, 10, 5
    out = dict(generator="tools/gen_pretrain_loss_fixtures.py", torch=torch.__version__,
               numpy=numpy.__version__, seed=SEED)

    # --- InfoNCE --------------------------------------------------------------------------
    q = f32_unit(g, n, d)
    k = f32_unit(g, n, d)
    queue = f32_unit(g, k_size, d)
    cases = []
    for t in [0.1, 0.07, 0.5]:
        q64 = q.double().clone().requires_grad_(True)
        loss = info_nce(q64, k.double(), queue.double(), t)
        loss.backward()
        cases.append(dict(temperature=t, loss=float(loss.detach()), grad_q=flat(q64.grad)))
    out["info_nce"] = dict(n=n, dim=d, size=k_size, q=flat(q), k=flat(k), queue=flat(queue),
                           cases=cases)

    # --- label-guided instance loss -------------------------------------------------------
    queue_ids = torch.tensor([3, -1, 0, 1, 3, 4, -1, 4, 1, 0])
    labels = torch.tensor([0, 1, 2, 3, 4, 1])  # label 2 has no positive in the queue
    cases = []
    for flag in [True, False]:
        for t in [0.07, 0.2]:
            q64 = q.double().clone().requires_grad_(True)
            loss = contrastive_loss(q64, k.double(), queue.double(), queue_ids, labels, t, flag)
            loss.backward()
            cases.append(dict(temperature=t, use_label_positives=flag, loss=float(loss.detach()),
                              grad_q=flat(q64.grad)))
    out["label_guided"] = dict(queue_ids=queue_ids.tolist(), labels=labels.tolist(), cases=cases)

    # --- queue enqueue with wrap-around ---------------------------------------------------
    qk, qd = 10, 4
    keys = f32_unit(g, qk, qd).double()
    ids = torch.full((qk,), -1, dtype=torch.long)
    ptr = 0
    initial = dict(size=qk, dim=qd, keys=flat(keys), ids=ids.tolist(), ptr=ptr)
    steps = []
    for bn, with_ids in [(4, True), (4, False), (4, True), (13, True), (3, True)]:
        new_keys = f32_unit(g, bn, qd).double()
        new_ids = torch.randint(0, 50, (bn,), generator=g) if with_ids else None
        keys, ids, ptr = enqueue(keys, ids, ptr, new_keys, new_ids)
        steps.append(dict(keys_in=flat(new_keys), ids_in=None if new_ids is None else new_ids.tolist(),
                          keys=flat(keys), ids=ids.tolist(), ptr=ptr))
    out["enqueue"] = dict(initial=initial, steps=steps)

    # --- prototype bank update (sequential, duplicates compound) --------------------------
    protos0 = torch.zeros(c, d, dtype=torch.float64)
    protos0[0] = f32_unit(g, 1, d).double()[0]
    protos0[2] = f32_unit(g, 1, d).double()[0]
    pq = [f32_unit(g, n, d).double() for _ in range(2)]
    plabels = [torch.tensor([1, 3, 1, 1, 0, 3]), torch.tensor([3, 3, 3, 4, 1, 1])]
    cases = []
    for m in [0.999, 0.5]:
        p = protos0
        after = []
        for step in range(2):
            p = proto_update(p, pq[step], plabels[step], m)
            after.append(flat(p))
        cases.append(dict(momentum=m, after=after))
    out["prototypes"] = dict(classes=c, dim=d, initial=flat(protos0), q=[flat(x) for x in pq],
                             labels=[x.tolist() for x in plabels], cases=cases)

    # --- label correction -----------------------------------------------------------------
    z = torch.randn(n, c, generator=g, dtype=torch.float64) * 0.5
    p = torch.randn(n, c, generator=g, dtype=torch.float64) * 0.5
    clabels = torch.tensor([0, 1, 2, 3, 4, 0])
    z[0, 2] += 9.0; p[0, 2] += 9.0   # both confident on 2 -> relabel 0 -> 2
    z[1, 4] += 9.0                   # only the classifier is confident -> s ~ 0.6, keep
    z[2, 2] += 9.0; p[2, 2] += 9.0   # confident on its own label -> stays 2
    z[3, 1] += 4.0; p[3, 1] += 3.0   # moderately confident on 1 -> about 0.9, relabel
    z[5, 3] += 3.0; p[5, 3] += 1.5   # below the threshold -> keep
    z, p = z.float(), p.float()
    cases = []
    for alpha, thr in [(0.5, 0.8), (0.3, 0.8), (0.5, 0.6), (1.0, 0.9)]:
        yhat, smax = correct(z.double(), p.double(), clabels, alpha, thr)
        margin = float((smax - thr).abs().min())
        assert margin > 1e-3, (alpha, thr, smax)
        cases.append(dict(alpha=alpha, threshold=thr, corrected=yhat.tolist(), smax=flat(smax)))
    out["correct"] = dict(classes=c, z=flat(z), p=flat(p), labels=clabels.tolist(), cases=cases)

    # --- full PNL step --------------------------------------------------------------------
    bank = f32_unit(g, c, d).double()
    bank[4] = 0  # a class never seen yet: zero prototype
    slabels = torch.tensor([0, 1, 2, 3, 4, 1])
    q = f32_unit(g, n, d).double()
    # samples 0 and 3 look like classes 2 and 1 for both heads -> corrected
    q[0] = normalize(bank[2:3] + 0.05 * torch.randn(1, d, generator=g, dtype=torch.float64))[0]
    q[3] = normalize(bank[1:2] + 0.05 * torch.randn(1, d, generator=g, dtype=torch.float64))[0]
    q = q.float()
    zs = torch.randn(n, c, generator=g, dtype=torch.float64) * 0.5
    zs[0, 2] += 8.0
    zs[3, 1] += 8.0
    zs = zs.float()
    ks = f32_unit(g, n, d)
    squeue = f32_unit(g, k_size, d)
    squeue_ids = torch.tensor([1, 0, -1, 2, 1, 3, 3, -1, 4, 0])
    default = dict(alpha=0.5, threshold=0.8, temperature=0.07, start_clean_epoch=11,
                   start_supcont_epoch=15, start_proto_epoch=1, w_cls=1.0, w_inst=1.0, w_proto=1.0)
    weighted = dict(default, w_cls=0.5, w_inst=2.0, w_proto=0.25, temperature=0.1)
    cases = []
    for epoch, cfg in [(0, default), (5, default), (12, default), (16, default), (16, weighted)]:
        q64 = q.double().clone().requires_grad_(True)
        z64 = zs.double().clone().requires_grad_(True)
        l_cls, l_inst, l_proto, total, yhat, smax = pnl_step(
            epoch, z64, q64, ks.double(), squeue.double(), squeue_ids, slabels, bank, cfg)
        if smax is not None:
            assert float((smax - cfg["threshold"]).abs().min()) > 1e-3
        total.backward()
        cases.append(dict(epoch=epoch, config=cfg, loss_cls=float(l_cls.detach()), loss_inst=float(l_inst.detach()),
                          loss_proto=float(l_proto.detach()), total=float(total.detach()), corrected=yhat.tolist(),
                          grad_q=flat(q64.grad), grad_z=flat(z64.grad)))
    out["pnl_step"] = dict(n=n, dim=d, classes=c, size=k_size, z=flat(zs), q=flat(q), k=flat(ks),
                           queue=flat(squeue), queue_ids=squeue_ids.tolist(),
                           labels=slabels.tolist(), prototypes=flat(bank), cases=cases)
    relabelled = [sum(a != b for a, b in zip(cs["corrected"], slabels.tolist())) for cs in cases]
    assert relabelled[2] > 0 and relabelled[0] == 0, relabelled

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "pretrain.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) with torch {torch.__version__}; "
          f"relabelled per pnl case: {relabelled}")


if __name__ == "__main__":
    main()
