#!/usr/bin/env python3
"""Write learning-rate schedule fixtures for `crates/reid-train/tests/integration/schedule_parity.rs`.

Our own re-creation of fast-reid's trainer behaviour as described in
fast-reid (JDAI-CV/fast-reid @ c9bc3ce) and torchreid (KaiyangZhou/deep-person-reid @ f8cd150) (BoT preset, `configs/Base-bagtricks.yml`) and
`luperson.md` §4.2-4.3 (not upstream code): PyTorch's own `MultiStepLR` /
`CosineAnnealingLR` (chained forms) are stepped once per epoch after warm-up,
and a linear warm-up `LambdaLR` (factor f*(1-a)+a, a = i/W) once per iteration
while i <= W. The lr recorded for iteration i is the optimiser's lr at the
time of the step of iteration i.

Output: `crates/reid-train/tests/fixtures/schedule/schedules.json`.
Run: `.venv/bin/python tools/gen_schedule_fixtures.py`.
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-train", "tests", "fixtures", "schedule")


def trace(case):
    base = case["base_lr"]
    w, f = case["warmup_iters"], case["warmup_factor"]
    ipe, epochs = case["iters_per_epoch"], case["epochs"]
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=base)
    decay = case["decay"]
    delay = 0
    if decay["kind"] == "multi_step":
        main = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=decay["milestones"], gamma=decay["gamma"]
        )
    elif decay["kind"] == "cosine":
        delay = decay["delay_epochs"]
        t_max = epochs - max(math.ceil(w / ipe), delay)
        main = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=t_max, eta_min=decay["eta_min"]
        )
    else:
        raise ValueError(decay)
    warm = None
    if w > 0:
        def factor(i):
            if i >= w:
                return 1.0
            a = i / w
            return f * (1 - a) + a

        warm = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=factor)
    lrs = []
    it = 0
    for epoch in range(epochs):
        for _ in range(ipe):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            it += 1
            if warm is not None and it <= w:
                warm.step()
        if it > w and epoch + 1 > delay:
            main.step()
    return lrs


def sample(lrs, ipe, dense):
    n = len(lrs)
    if dense:
        idx = range(n)
    else:
        keep = set(range(min(n, 50)))
        keep.update(range(0, n, 37))
        for e in range(0, n // ipe + 1):
            for d in (-1, 0, 1):
                j = e * ipe + d
                if 0 <= j < n:
                    keep.add(j)
        keep.add(n - 1)
        idx = sorted(keep)
    return [[i, lrs[i]] for i in idx]


CASES = [
    dict(name="bot_market", base_lr=3.5e-4, warmup_iters=2000, warmup_factor=0.1,
         decay=dict(kind="multi_step", milestones=[40, 90], gamma=0.1),
         epochs=120, iters_per_epoch=202, dense=False),
    dict(name="multistep_small", base_lr=1.0, warmup_iters=25, warmup_factor=0.01,
         decay=dict(kind="multi_step", milestones=[2, 4], gamma=0.1),
         epochs=8, iters_per_epoch=10, dense=True),
    dict(name="multistep_no_warmup", base_lr=0.5, warmup_iters=0, warmup_factor=0.1,
         decay=dict(kind="multi_step", milestones=[3], gamma=0.5),
         epochs=6, iters_per_epoch=4, dense=True),
    dict(name="cosine", base_lr=1e-3, warmup_iters=20, warmup_factor=0.1,
         decay=dict(kind="cosine", eta_min=1e-6, delay_epochs=0),
         epochs=12, iters_per_epoch=7, dense=True),
    dict(name="cosine_delay_lup_mgn", base_lr=3.5e-4, warmup_iters=8, warmup_factor=0.01,
         decay=dict(kind="cosine", eta_min=7.7e-7, delay_epochs=4),
         epochs=10, iters_per_epoch=5, dense=True),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    out = {"torch": torch.__version__, "cases": []}
    for c in CASES:
        lrs = trace(c)
        case = {k: v for k, v in c.items() if k != "dense"}
        case["samples"] = sample(lrs, c["iters_per_epoch"], c["dense"])
        out["cases"].append(case)
    path = os.path.join(OUT, "schedules.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"))
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
