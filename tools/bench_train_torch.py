#!/usr/bin/env python3
"""PyTorch side of `benches/train.rs`: times whole training steps (forward,
backward, optimiser update) of the recipes the toolkit runs, on fixed random
inputs, and prints one JSON line.

    bench_train_torch.py --row bot --arch resnet50 --batch 16 --p 4 --k 4 \
        --height 256 --width 128 --threads 2 --warmup 1 --runs 3 [--device cuda]
    bench_train_torch.py --row cion --batch 8 --k 2 --out-dim 65336 ...
    bench_train_torch.py --row moco --batch 16 --queue 65536 ...

Rows (the same steps as `benches/train.rs` takes with reid-train):
  - `bot`: BoT fine-tuning as fast-reid's `Base-bagtricks.yml` runs it: a
    ResNet50 (`--arch resnet50`), ResNet50-IBN-a (`resnet50_ibn_a`; both last
    stride 1, the trunk modules of `tools/fixtures/gen_backbone_fixtures.py`)
    or the ICS ViT-S (`vit_small`, the module of
    `tools/fixtures/gen_vit_fixtures.py`, its normed patch tokens as the
    feature map) -> global average pooling ->
    BNNeck (BatchNorm1d, bias frozen) -> bias-free linear classifier;
    label-smoothed cross-entropy (eps 0.1) on the BNNeck logits + batch-hard
    triplet (margin 0.3, Euclidean) on the pooled feature; Adam (lr 3.5e-4,
    coupled weight decay 5e-4).
  - `cion`: one CION step: a ResNet50 (last stride 1) student and teacher with
    a DINO head (MLP 2048-2048-256 with GELU, L2 normalisation, weight-normed
    prototypes `--out-dim`, magnitudes frozen); the teacher on the 2 global
    crops, the student on all crops (each group of same-size crops in one
    backbone pass); the identity-guided DINO loss (teacher centering and
    sharpening, tau_s 0.1, tau_t 0.04); per-tensor gradient clipping (3.0);
    AdamW with decay on weights only; teacher EMA; center update.
  - `moco`: one LUPerson MoCo v2 step: ResNet50 (last stride 2) + MLP
    2048-2048-128, the key encoder's momentum update, the query forward, the
    key forward on a shuffled batch (one process: a permutation), InfoNCE
    against a queue of `--queue` keys (T 0.1), SGD (momentum 0.9, weight
    decay 1e-4), the enqueue.

Phases per step, each ended by a device synchronisation: `forward` (up to the
loss value on the host), `backward` (`loss.backward()`), `optimizer`
(everything after: clipping, the update, EMA, center, enqueue); `step` is
their sum. The inputs are the same random tensors every step (the input
pipeline is not part of this script; `benches/loader.rs` measures it).

Written for this repository from the papers' descriptions and the fixture
generators' transcriptions; no upstream code is imported.
"""

import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- backbones


def resnet_trunk(arch, width, last_stride):
    """The trunk (no pooling) of a ResNet50 / ResNet50-IBN-a."""
    from gen_backbone_fixtures import ResNet

    ibn = {"resnet50": None, "resnet50_ibn_a": "a"}[arch]
    return ResNet(True, [3, 4, 6, 3], width, last_stride, "torchvision", ibn)


class VitMap(nn.Module):
    """ICS ViT whose feature map is its normed patch tokens [B, D, h, w]."""

    def __init__(self, tiny, height, width):
        super().__init__()
        from gen_vit_fixtures import IcsViT

        if tiny:
            self.vit = IcsViT(dim=32, depth=2, heads=2, hidden=8, patch=16, img=(height, width))
        else:
            self.vit = IcsViT(dim=384, depth=12, heads=6, hidden=64, patch=16, img=(height, width))
        self.out_channels = self.vit.norm.normalized_shape[0]

    def forward(self, x):
        return self.vit(x)[1]


def trunk_channels(trunk):
    if isinstance(trunk, VitMap):
        return trunk.out_channels
    return trunk.layer4[-1].conv3.out_channels


class Pooled(nn.Module):
    """Trunk + global average pooling -> [B, C]."""

    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def forward(self, x):
        return self.trunk(x).mean(dim=(2, 3))


# ---------------------------------------------------------------- BoT


class BotModel(nn.Module):
    def __init__(self, trunk, classes):
        super().__init__()
        self.backbone = Pooled(trunk)
        c = trunk_channels(trunk)
        self.neck = nn.BatchNorm1d(c)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(c, classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x):
        feat = self.backbone(x)
        return feat, self.classifier(self.neck(feat))


def ce_label_smooth(logits, targets, eps):
    """fast-reid's cross-entropy with label smoothing: the true class gets
    1 - eps, the others eps / (C - 1)."""
    c = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    with torch.no_grad():
        t = torch.full_like(logp, eps / (c - 1))
        t.scatter_(1, targets[:, None], 1 - eps)
    return (-t * logp).sum(dim=1).mean()


def triplet_hard(feat, targets, margin):
    """Batch-hard triplet loss on Euclidean distances."""
    sq = feat.pow(2).sum(dim=1, keepdim=True)
    dist = (sq + sq.t() - 2 * feat @ feat.t()).clamp(min=1e-12).sqrt()
    same = targets[:, None] == targets[None, :]
    ap = (dist - (~same).float() * 1e9).max(dim=1).values
    an = (dist + same.float() * 1e9).min(dim=1).values
    return F.relu(ap - an + margin).mean()


def bot_setup(a, device):
    if a.arch == "vit_small":
        trunk = VitMap(a.tiny, a.height, a.width)
    else:
        trunk = resnet_trunk(a.arch, a.base_width, 1)
    model = BotModel(trunk, a.classes).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3.5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.height, a.width, device=device)
    y = torch.arange(a.p, device=device).repeat_interleave(a.k)

    def forward():
        feat, logits = model(x)
        loss = ce_label_smooth(logits, y, 0.1) + triplet_hard(feat, y, 0.3)
        return loss

    def optimizer():
        opt.step()
        opt.zero_grad(set_to_none=True)

    return forward, optimizer, a.batch


# ---------------------------------------------------------------- CION


class WeightNormLinear(nn.Module):
    """y = x W^T with W = g V / |V| per row; g frozen at 1 (CION)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.v = nn.Parameter(torch.empty(d_out, d_in).uniform_(-d_in ** -0.5, d_in ** -0.5))
        self.register_buffer("g", torch.ones(d_out, 1))

    def forward(self, x):
        w = self.v / self.v.norm(dim=1, keepdim=True).clamp(min=1e-12) * self.g
        return x @ w.t()


class DinoHead(nn.Module):
    def __init__(self, d_in, hidden, bottleneck, out_dim):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(d_in, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = WeightNormLinear(bottleneck, out_dim)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=1, eps=1e-12))


class MultiCrop(nn.Module):
    """Backbone over each run of same-size crops, then the head once."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        feats, i = [], 0
        while i < len(crops):
            j = i + 1
            while j < len(crops) and crops[j].shape[-2:] == crops[i].shape[-2:]:
                j += 1
            feats.append(self.backbone(torch.cat(crops[i:j])))
            i = j
        return self.head(torch.cat(feats))


def identity_dino_loss(student, teacher, center, k, n_crops, tau_s, tau_t):
    """CION's identity-guided DINO loss over crops-major outputs: student
    [V*B, D], teacher [2*B, D]; the cross-entropy of every teacher crop g of
    image i against every student crop v != g of every image j of the same
    identity, the i == j terms averaged over the batch, the others over
    identities."""
    vb, d = student.shape
    b = vb // n_crops
    n = b // k
    p = F.softmax((teacher - center) / tau_t, dim=1).detach()
    s = F.log_softmax(student / tau_s, dim=1)
    p = p.reshape(2, n, k, d).transpose(0, 1).reshape(n, 2 * k, d)
    s = s.reshape(n_crops, n, k, d).transpose(0, 1).reshape(n, n_crops * k, d)
    cross = p @ s.transpose(1, 2)  # [N, 2K, V*K]
    g = torch.arange(2, device=student.device).repeat_interleave(k)
    v = torch.arange(n_crops, device=student.device).repeat_interleave(k)
    i = torch.arange(k, device=student.device).repeat(2)
    j = torch.arange(k, device=student.device).repeat(n_crops)
    norm = (k * (k - 1) + 1) * (2 * n_crops - 2)
    w = torch.where(i[:, None] == j[None, :], 1.0 / b, 1.0 / n) / norm
    w = w * (g[:, None] != v[None, :]).float()
    return -(cross * w[None]).sum()


def cion_setup(a, device):
    if a.tiny:
        hidden, bottleneck = 64, 32
    else:
        hidden, bottleneck = 2048, 256
    trunk = resnet_trunk("resnet50", a.base_width, 1)
    student = MultiCrop(Pooled(trunk), DinoHead(trunk_channels(trunk), hidden, bottleneck, a.out_dim))
    student = student.to(device).train()
    teacher = copy.deepcopy(student).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    decay = [p for n, p in student.named_parameters() if p.requires_grad and p.ndim > 1 and not n.endswith(".bias")]
    no_decay = [p for n, p in student.named_parameters() if p.requires_grad and (p.ndim <= 1 or n.endswith(".bias"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.04}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=5e-4 * a.batch / 256, betas=(0.9, 0.999), eps=1e-8)
    center = torch.zeros(1, a.out_dim, device=device)
    gh, gw = a.height, a.width
    lh, lw = a.local_height, a.local_width
    crops = [torch.randn(a.batch, 3, gh, gw, device=device) for _ in range(2)]
    crops += [torch.randn(a.batch, 3, lh, lw, device=device) for _ in range(a.local_crops)]
    n_crops = len(crops)
    state = {}

    def forward():
        with torch.no_grad():
            t_out = teacher(crops[:2])
        s_out = student(crops)
        state["t_out"] = t_out
        return identity_dino_loss(s_out, t_out, center, a.k, n_crops, 0.1, 0.04)

    def optimizer():
        for p in student.parameters():  # per-tensor clipping (DINO's clip_gradients)
            if p.grad is not None:
                coef = 3.0 / (p.grad.norm() + 1e-6)
                if coef < 1:
                    p.grad.mul_(coef)
        opt.step()
        opt.zero_grad(set_to_none=True)
        m = 0.996
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(m).add_((1 - m) * ps.detach())
            batch_center = state["t_out"].mean(dim=0, keepdim=True)
            center.mul_(0.9).add_(batch_center * 0.1)

    return forward, optimizer, a.batch


# ---------------------------------------------------------------- MoCo


def moco_setup(a, device):
    hidden, dim = (64, 16) if a.tiny else (2048, 128)
    trunk = resnet_trunk("resnet50", a.base_width, 2)
    c = trunk_channels(trunk)
    query = nn.Sequential(Pooled(trunk), nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, dim))
    query = query.to(device).train()
    key = copy.deepcopy(query).train()
    for p in key.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(query.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-4)
    queue = F.normalize(torch.randn(dim, a.queue, device=device), dim=0)
    ptr = [0]
    xq = torch.randn(a.batch, 3, a.height, a.width, device=device)
    xk = torch.randn(a.batch, 3, a.height, a.width, device=device)
    state = {}

    def forward():
        with torch.no_grad():
            for pq, pk in zip(query.parameters(), key.parameters()):
                pk.mul_(0.999).add_(pq.detach() * 0.001)
        q = F.normalize(query(xq), dim=1)
        with torch.no_grad():
            idx = torch.randperm(a.batch, device=device)
            k = F.normalize(key(xk[idx]), dim=1)[torch.argsort(idx)]
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ queue
        logits = torch.cat([l_pos, l_neg], dim=1) / 0.1
        labels = torch.zeros(a.batch, dtype=torch.long, device=device)
        state["k"] = k
        return F.cross_entropy(logits, labels)

    def optimizer():
        opt.step()
        opt.zero_grad(set_to_none=True)
        k = state["k"]
        p = ptr[0]
        end = min(p + a.batch, a.queue)
        queue[:, p:end] = k[: end - p].t()
        if end - p < a.batch:
            queue[:, : a.batch - (end - p)] = k[end - p:].t()
        ptr[0] = (p + a.batch) % a.queue

    return forward, optimizer, a.batch


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--row", choices=["bot", "cion", "moco"], required=True)
    ap.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet50_ibn_a", "vit_small"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--p", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--classes", type=int, default=751)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--local-height", type=int, default=128)
    ap.add_argument("--local-width", type=int, default=64)
    ap.add_argument("--local-crops", type=int, default=8)
    ap.add_argument("--out-dim", type=int, default=65336)
    ap.add_argument("--queue", type=int, default=65536)
    ap.add_argument("--base-width", type=int, default=64)
    ap.add_argument("--tiny", action="store_true", help="narrow heads and ViT (dry runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device")
    forward, optimizer, images = {"bot": bot_setup, "cion": cion_setup, "moco": moco_setup}[a.row](a, device)

    phases = {"forward": [], "backward": [], "optimizer": [], "step": []}
    losses = []
    for i in range(a.warmup + a.runs):
        sync(device)
        t0 = time.perf_counter()
        loss = forward()
        value = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        optimizer()
        sync(device)
        t3 = time.perf_counter()
        if not torch.isfinite(torch.tensor(value)):
            sys.exit(f"non-finite loss {value} at step {i}")
        losses.append(value)
        if i >= a.warmup:
            phases["forward"].append(t1 - t0)
            phases["backward"].append(t2 - t1)
            phases["optimizer"].append(t3 - t2)
            phases["step"].append(t3 - t0)
    out = {
        "torch": torch.__version__,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "images_per_step": images,
        "times_s": phases["step"],
        "median_s": statistics.median(phases["step"]),
        "phases_s": {k: statistics.median(v) for k, v in phases.items()},
        "losses": losses,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
