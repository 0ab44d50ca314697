#!/usr/bin/env python3
"""Write the fixtures of `crates/reid-train/tests/integration/pnl_step_parity.rs`: twelve
whole PNL training steps computed by LUPerson-NL's own code.

Reference: LUPerson-NL (github.com/DengpanFu/LUPerson-NL, commit 6b9298e),
imported from a local checkout passed with --pnl (never copied):
  - `PNL/libs/pnl_builder.py`: `PNL` (its `__init__`, `forward`, momentum
    update, shuffle-BN, queue with labels, label correction, prototype update
    and normalisation, `concat_all_gather`), run unmodified;
  - `PNL/libs/encoder.py`: `MoCoEncoder` (trunk, classifier and projection
    branches, their initialisation);
  - `PNL/lup_pnl.py`: its argument parser, `train` (the whole loop body:
    forward, the three losses, SGD step) and `adjust_learning_rate`, called
    as they are; only the set-up of `main` / `main_worker` is transcribed
    below, one citation per line, since it spawns processes, reads LMDBs
    and moves tensors to GPUs;
  - `PNL/scripts/run_pnl.sh`: the arguments, changed where `CFG` says so to
    fit a 12-step run (`upstream_args` passes them to upstream's parser).
Distributed parts run in one process: a gloo group of size 1 through a file
(no network), the model wrapped in DistributedDataParallel on the CPU. The
one CUDA call inside `PNL.forward` (`torch.randperm(...).cuda()`,
pnl_builder.py line 91) is made a no-op by `torch.Tensor.cuda = identity`.
AMP is off (`--mix 0`: the fp32 branch of `train`, lup_pnl.py lines 469-479
and 504-506). `lmdb` and `cv2`, imported by `libs/dataset.py` only, are empty
stub modules; lup_pnl.py's `accuracy` (display only) reports zeros, as its
`.view` of a transposed tensor fails on current PyTorch.

The encoder is torchvision's ResNet of Bottleneck blocks (as `resnet50`,
last stride 2) at base width 4 with one block per stage, built by
`tiny_resnet` from torchvision's own `Bottleneck`, `_make_layer` and
initialisation; the projection's hidden width is 32 instead of the 2,048
that `MoCoEncoder` hard-codes (replaced after construction, initialised as
encoder.py lines 52-55 do); the BatchNorm shifts of layers 3 and 4 start at
1 (CFG["deep_bn_bias"] says why). Batches of 16 from a pool of 32 fixed
crops of 32×16 (a weak and a strong view of each, bytes `q` mapped to
`(q − 128)/64`; 6 persons, a quarter of the labels wrong), 2 steps per
epoch over 6 epochs. The run crosses: the prototype loss (epoch 1, as
`train` hard-codes `is_proto = epoch > 0`), label correction
(`--start_clean_epoch 2`), label-guided contrast (`--start_supcont_epoch
3`), the learning-rate steps (`--schedule 4,5`) and the queue's wrap (20
slots, batches of 16: the pointer runs 16, 12, 8, 4, 20 = K, 16, …).

Output (`crates/reid-train/tests/fixtures/pnl_step/`):
  - `init.safetensors`: the PNL module's state dict before the first step
    without `encoder_k.*` (its parameters are `encoder_q`'s, its buffers the
    fresh BatchNorm ones, which are `encoder_q`'s too; checked);
  - `final.safetensors`: the whole state dict after the 12 steps, float32
    run (`encoder_q.*`, `encoder_k.*` with BatchNorm running statistics,
    `queue` [dim, K], `queue_id` [K, 1], `queue_ptr`, `prototypes`);
  - `final64.safetensors`: the same run in float64 (stored as float32), for
    the tensors whose float32 result differs from it by more than
    NOISE_STORED (max abs difference / max abs; `expected.json` has the
    figure of every tensor): the test's noise floor needs no others, since
    for a tensor with less float32 error it could not exceed 1e-4;
  - `crops.npz`: `weak`, `strong` [32, 3, 32, 16] bytes;
  - `expected.json`: configuration, the upstream arguments, the pool's
    labels, per step the batch (indices into the pool), lr, losses (total,
    cls, inst, proto), the labels after correction and how many changed,
    the queue pointer, and robustness margins (how close the correction's
    decisions and the deep ReLUs' inputs came to flipping); per tensor the
    float32-vs-float64 error.

Run: `.venv/bin/python tools/gen_pnl_step_fixtures.py --pnl PATH/TO/LUPerson-NL`
(tools/requirements.txt pins the environment; torchvision is needed too).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
import torch.distributed as dist
import torchvision
from torch import nn
from torch.nn import init
from safetensors.torch import save_file

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "reid-train", "tests", "fixtures", "pnl_step",
)

# The run (fields of reid_train::PnlConfig where they exist).
CFG = dict(
    width=4,                 # backbone base width (torchvision: 64)
    size=[32, 16],           # crop height, width
    images=32,               # the pool of fixed crops
    classes=6,               # tracklet labels (>= 5: train() reports top-5)
    batch_size=16,           # --batch-size, one process
    steps_per_epoch=2,       # len(train_loader) = images / batch
    epochs=6,                # --epochs
    lr=0.005,                # --lr (0.4 for batches of 1,536)
    lr_milestones=[4, 5],    # --schedule
    lr_gamma=0.1,            # adjust_learning_rate's hard-coded 0.1
    momentum=0.9,            # --momentum
    weight_decay=1e-3,       # --wd
    cls_dim=8,               # --cls_dim
    mlp_hidden_dim=32,       # MoCoEncoder's fc1 width (2048 upstream)
    dim=16,                  # --moco_dim
    queue_size=20,           # --moco_k (not a multiple of the batch)
    key_momentum=0.9,        # --moco_m (0.999 would barely move in 12 steps)
    proto_momentum=0.9,      # --proto_m (likewise)
    temperature=0.07,        # --T (run_pnl.sh's value)
    alpha=0.5,               # --alpha
    threshold=0.3,           # --pseudo_th (low, so that 12 steps correct labels)
    start_proto_epoch=1,     # train(): is_proto = epoch > 0
    start_clean_epoch=2,     # --start_clean_epoch
    start_supcont_epoch=3,   # --start_supcont_epoch
    bn_groups=1,             # one process: shuffle-BN permutes the whole batch
    # Layers 3 and 4 work on 2×1 and 1×1 maps, so one weight's gradient sums
    # 32 or 16 terms: a ReLU whose input lies within rounding of 0 flips
    # between two float32 implementations (or float32 and float64), moves
    # that gradient by percents, and the runs part. With torchvision's
    # beta = 0 (and T = 0.2), 13 of 14 seeds' own float32 and float64 losses
    # parted by more than 1e-5 within 12 steps; with those layers' BatchNorm
    # shifts starting at 1 most ReLU inputs stay away from 0: 6 of 8 seeds
    # (T = 0.2) and 3 of 4 (T = 0.07) stayed within 1e-6, the fourth within
    # 4e-6 (this seed: 1.7e-7).
    deep_bn_bias=1.0,
)
SEED = 18
# Tensors whose float32 result is further than this from the float64 run
# (max abs difference / max abs) get their float64 value stored.
NOISE_STORED = 1e-6


def upstream_args(lup_pnl):
    """lup_pnl.py's own parser on run_pnl.sh's arguments, with the run's
    values, then the normalisation of main() (lines 152-156) and
    main_worker() (lines 228, 277-278) for one process."""
    c = CFG
    argv = [
        "-a", "resnet50", "--lr", str(c["lr"]), "--batch-size", str(c["batch_size"]),
        "--multiprocessing-distributed", "1", "--world-size", "1", "--rank", "0",
        "--mix", "0", "--schedule", ",".join(map(str, c["lr_milestones"])),
        "--optimizer", "SGD", "--epochs", str(c["epochs"]), "--cos", "0",
        "--moco_dim", str(c["dim"]), "--cls_dim", str(c["cls_dim"]),
        "--T", str(c["temperature"]), "--moco_k", str(c["queue_size"]),
        "--moco_m", str(c["key_momentum"]), "--proto_m", str(c["proto_momentum"]),
        "--alpha", str(c["alpha"]), "--pseudo_th", str(c["threshold"]),
        "--start_clean_epoch", str(c["start_clean_epoch"]),
        "--start_supcont_epoch", str(c["start_supcont_epoch"]),
        "--momentum", str(c["momentum"]), "--wd", str(c["weight_decay"]),
    ]
    args = lup_pnl.parser.parse_args(argv)
    args.mix = True if args.mix >= 1 else False          # line 153
    args.cos = True if args.cos >= 1 else False          # line 155
    args.schedule = [int(x) for x in args.schedule.split(',')]  # line 156
    args.rank = 0                                        # line 228 (rank 0 · ngpus + gpu 0)
    args.gpu = None                                      # CPU: no .cuda(args.gpu) moves in train()
    args.lr_mult = 1.                                    # line 277 (SGD)
    args.batch_size = int(args.batch_size / 1)           # line 278, one process
    return args, argv


def tiny_resnet(width):
    """torchvision's `ResNet.__init__` (torchvision/models/resnet.py, 0.29.1,
    lines 182-213) for Bottleneck blocks [1, 1, 1, 1] with 64 replaced by
    `width`; `_make_layer` and `Bottleneck` are torchvision's own."""
    from torchvision.models.resnet import Bottleneck, ResNet
    m = ResNet.__new__(ResNet)
    nn.Module.__init__(m)
    m._norm_layer = nn.BatchNorm2d                      # line 182 (default norm_layer)
    m.inplanes = width                                  # line 184 (64)
    m.dilation = 1                                      # line 185
    m.groups = 1                                        # line 195
    m.base_width = 64                                   # line 196 (width_per_group: Bottleneck width = planes)
    m.conv1 = nn.Conv2d(3, m.inplanes, kernel_size=7, stride=2, padding=3, bias=False)  # line 197
    m.bn1 = m._norm_layer(m.inplanes)                   # line 198
    m.relu = nn.ReLU(inplace=True)                      # line 199
    m.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # line 200
    m.layer1 = m._make_layer(Bottleneck, width, 1)      # line 201
    m.layer2 = m._make_layer(Bottleneck, 2 * width, 1, stride=2, dilate=False)  # line 202
    m.layer3 = m._make_layer(Bottleneck, 4 * width, 1, stride=2, dilate=False)  # line 203
    m.layer4 = m._make_layer(Bottleneck, 8 * width, 1, stride=2, dilate=False)  # line 204
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))            # line 205
    m.fc = nn.Linear(8 * width * Bottleneck.expansion, 1000)  # line 206
    for mod in m.modules():                             # lines 208-213
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def build(PNL, MoCoEncoder, args):
    """The model of main_worker (lup_pnl.py lines 258-261) on the tiny trunk,
    with the projection's hidden width narrowed."""
    c = CFG
    model = PNL(MoCoEncoder, lambda: tiny_resnet(c["width"]), dim=args.moco_dim,
                K=args.moco_k, m1=args.moco_m, m2=args.proto_m, T=args.T,
                cls_num=c["classes"], alpha=args.alpha,
                pseudo_th=args.pseudo_th, cls_dim=args.cls_dim)
    for enc in (model.encoder_q, model.encoder_k):
        in_features = enc.fc1.in_features
        enc.fc1 = nn.Linear(in_features, c["mlp_hidden_dim"])         # encoder.py line 52 (2048)
        init.kaiming_normal_(enc.fc1.weight, mode='fan_out')          # encoder.py line 53
        enc.fc2 = nn.Linear(c["mlp_hidden_dim"], args.moco_dim)       # encoder.py line 54 (2048)
        init.kaiming_normal_(enc.fc2.weight, mode='fan_out')          # encoder.py line 55
    # pnl_builder.py lines 32-34 again, for the new layers.
    for param_q, param_k in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
        param_k.data.copy_(param_q.data)
        param_k.requires_grad = False
    return model


def make_data():
    """The pool of crops (weak and strong views as bytes), its labels and
    the batches of every step."""
    c = CFG
    g = torch.Generator().manual_seed(SEED + 1)
    n, b = c["images"], c["batch_size"]
    h, w = c["size"]
    # Smooth images of `classes` persons: a coarse colour field per person,
    # one per image around it, plus pixel noise (i.i.d. pixel noise alone
    # makes every image's deep features nearly equal, and BatchNorm then
    # turns rounding into chaos). The labels are the persons, a quarter of
    # them replaced by another (the noise that the correction is for).
    person = torch.arange(n) % c["classes"]
    coarse = torch.randn(c["classes"], 3, 4, 2, generator=g)[person] + \
        0.5 * torch.randn(n, 3, 4, 2, generator=g)
    base = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                           align_corners=False)

    def to_bytes(x):
        return (128 + 30 * x).round().clamp(0, 255).to(torch.uint8)

    weak_q = to_bytes(base + 0.3 * torch.randn(n, 3, h, w, generator=g))
    # The strong view: the same image mirrored, its colours rescaled, new noise.
    gain = 0.6 + 0.8 * torch.rand(n, 3, 1, 1, generator=g)
    strong_q = to_bytes(base.flip(3) * gain + 0.3 * torch.randn(n, 3, h, w, generator=g))
    noisy = torch.rand(n, generator=g) < 0.25
    other = (person + torch.randint(1, c["classes"], (n,), generator=g)) % c["classes"]
    labels = torch.where(noisy, other, person)
    # Each epoch a permutation of the pool in batches (drop_last).
    batches = []
    for _ in range(c["epochs"]):
        perm = torch.randperm(n, generator=g)
        batches += [perm[s * b:(s + 1) * b] for s in range(c["steps_per_epoch"])]

    return weak_q, strong_q, labels, batches


class Recorder:
    """Records what `train` computes each step: the model's outputs (a forward
    hook on PNL) and every cross-entropy value (the criterion)."""
    before = None

    def __init__(self, args):
        self.args = args
        self.forwards = []
        self.ce = []

    def watch_relus(self, encoder):
        """Tracks the smallest |input| of the query encoder's deep ReLUs
        (layers 3 and 4, and the heads' hidden layers) relative to the
        input's largest: a rounding error of that size flips a ReLU, and
        in these small maps one flipped unit moves a gradient by percents."""
        self.relu_margin = float("inf")

        def note(x):
            x = x.detach()
            m = (x.abs().min() / x.abs().max().clamp_min(1e-30)).item()
            self.relu_margin = min(self.relu_margin, m)

        for layer in (encoder.layer3, encoder.layer4):
            for mod in layer.modules():
                if isinstance(mod, nn.ReLU):
                    mod.register_forward_pre_hook(lambda mod, inp: note(inp[0]))
        for lin in (encoder.embed_fc, encoder.fc1):  # followed by F.relu
            lin.register_forward_hook(lambda mod, inp, out: note(out))

    def pre_hook(self, module, fargs, kwargs):
        # `forward` corrects `target` in place (pnl_builder.py line 197).
        self.before = kwargs["target"].detach().clone()
        self.relu_margin = float("inf")

    def hook(self, module, fargs, kwargs, output):
        cls_out, target, loss_inst, logits_proto, _ = output
        rec = dict(target=target.detach().clone(), loss_inst=loss_inst.item(),
                   is_proto=kwargs["is_proto"], is_clean=kwargs["is_clean"],
                   is_supcont=kwargs["is_supcont"])
        rec["relu_margin"] = self.relu_margin
        rec["queue_ptr"] = int(module.queue_ptr)  # after this step's enqueue
        if kwargs["is_clean"]:
            # The correction's decision margins (a diagnostic: how close its
            # outcome came to changing), so that the test's discrete outcome
            # is robust to rounding.
            a = self.args.alpha
            s = a * torch.softmax(cls_out.detach().double(), 1) + \
                (1 - a) * torch.softmax(logits_proto.detach().double(), 1)
            top2 = s.topk(2, dim=1)
            best, arg = top2.values[:, 0], top2.indices[:, 0]
            given = self.before
            # A row whose arg-max is its own label keeps it either way; the
            # others change iff the score clears the threshold.
            moved = arg != given
            rec["threshold_margin"] = (best - self.args.pseudo_th).abs()[moved].min().item() \
                if moved.any() else None
            # Rows above the threshold take the arg-max: its lead over the runner-up.
            above = best > self.args.pseudo_th
            rec["argmax_gap"] = (top2.values[:, 0] - top2.values[:, 1])[above].min().item() \
                if above.any() else None
        self.forwards.append(rec)


class RecordingCE(nn.CrossEntropyLoss):
    """`nn.CrossEntropyLoss` (lup_pnl.py line 300) that keeps each value."""

    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def forward(self, input, target):
        loss = super().forward(input, target)
        self.recorder.ce.append(loss.item())
        return loss


def run(lup_pnl, PNL, MoCoEncoder, args, init_state, weak_q, strong_q, labels, batches, dtype):
    """lup_pnl.py's set-up and epoch loop over the fixed batches, in `dtype`
    from `init_state`; returns (model, per-step log)."""
    c = CFG
    model = build(PNL, MoCoEncoder, args)
    model.load_state_dict(init_state)
    model = model.to(dtype)
    # line 281-282: DDP (CPU: no device_ids), broadcast_buffers=False.
    ddp = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    rec = Recorder(args)
    model.register_forward_pre_hook(rec.pre_hook, with_kwargs=True)
    rec.watch_relus(model.encoder_q)
    model.register_forward_hook(rec.hook, with_kwargs=True)
    criterion = RecordingCE(rec)                                  # line 300
    optimizer = torch.optim.SGD(ddp.parameters(), args.lr,        # lines 309-312
                                momentum=args.momentum, weight_decay=args.weight_decay)
    weak = ((weak_q.to(torch.float64) - 128.0) / 64.0).to(dtype)
    strong = ((strong_q.to(torch.float64) - 128.0) / 64.0).to(dtype)
    log = []
    for epoch in range(args.start_epoch, args.epochs):            # line 371
        lup_pnl.adjust_learning_rate(optimizer, epoch, args)      # line 378
        lr = optimizer.param_groups[0]["lr"]
        # The epoch's loader: (im_q, im_k, labels) per step, as
        # PersonDatasetFM yields them (weak, strong, label).
        steps = batches[epoch * c["steps_per_epoch"]:(epoch + 1) * c["steps_per_epoch"]]
        loader = [(weak[idx], strong[idx], labels[idx].clone()) for idx in steps]
        n_fw, n_ce = len(rec.forwards), len(rec.ce)
        lup_pnl.train(loader, ddp, criterion, optimizer, epoch, args)  # line 382
        fws = rec.forwards[n_fw:]
        ces = rec.ce[n_ce:]
        for i, (idx, fw) in enumerate(zip(steps, fws)):
            per = 2 if fw["is_proto"] else 1
            loss_cls = ces[per * i]
            loss_proto = ces[per * i + 1] if fw["is_proto"] else 0.0
            # lup_pnl.py line 479.
            total = loss_cls + args.w_inst * fw["loss_inst"] + args.w_proto * loss_proto
            given = labels[idx]
            step = epoch * c["steps_per_epoch"] + i
            log.append(dict(
                step=step, epoch=epoch, batch=idx.tolist(), lr=float(lr), loss=total,
                loss_cls=loss_cls, loss_inst=fw["loss_inst"], loss_proto=loss_proto,
                labels=given.tolist(), corrected_labels=fw["target"].tolist(),
                corrected=int((fw["target"] != given).sum().item()),
                threshold_margin=fw.get("threshold_margin"),
                argmax_gap=fw.get("argmax_gap"),
                relu_margin=fw["relu_margin"], queue_ptr=fw["queue_ptr"],
            ))
            print(f"{dtype} step {step:2d} epoch {epoch} lr {lr:.3g} loss {total:.6f} "
                  f"(cls {loss_cls:.5f} inst {fw['loss_inst']:.5f} proto {loss_proto:.5f}) "
                  f"corrected {log[-1]['corrected']} margin {log[-1]['threshold_margin']} "
                  f"gap {log[-1]['argmax_gap']} relu {fw['relu_margin']:.1e} ptr {fw['queue_ptr']}")
    return model, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pnl", required=True, help="local checkout of LUPerson-NL")
    a = ap.parse_args()
    root = os.path.join(os.path.abspath(a.pnl), "PNL")
    for stub in ("lmdb", "cv2"):  # imported by libs/dataset.py only
        sys.modules.setdefault(stub, types.ModuleType(stub))
    sys.path.insert(0, root)
    import lup_pnl
    from libs.pnl_builder import PNL
    from libs.encoder import MoCoEncoder
    # pnl_builder.py line 91's `.cuda()`: the CPU tensor stays where it is.
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    # lup_pnl.py's `accuracy` (lines 655-669) only feeds the progress
    # display (lines 489-492); its `.view(-1)` of a transposed tensor fails
    # on current PyTorch, so it reports zeros here.
    lup_pnl.accuracy = lambda output, target, topk=(1,): [torch.zeros(1) for _ in topk]

    commit = subprocess.run(
        ["git", "-C", a.pnl, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    store = tempfile.NamedTemporaryFile(delete=False)
    dist.init_process_group("gloo", init_method=f"file://{store.name}", rank=0, world_size=1)

    c = CFG
    args, argv = upstream_args(lup_pnl)
    torch.manual_seed(SEED)
    model = build(PNL, MoCoEncoder, args)
    # The starting point: torchvision's initialisation, then every BatchNorm
    # shift (beta) of layers 3 and 4 set to CFG["deep_bn_bias"], so that
    # their ReLUs' inputs seldom sit within rounding of 0 (see CFG).
    with torch.no_grad():
        for layer in (model.encoder_q.layer3, model.encoder_q.layer4):
            for mod in layer.modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.bias.fill_(c["deep_bn_bias"])
        for param_q, param_k in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # pnl_builder.py line 33
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # encoder_k starts as encoder_q: parameters copied, buffers fresh (equal).
    for k, v in init_state.items():
        if k.startswith("encoder_k."):
            assert torch.equal(v, init_state["encoder_q." + k[len("encoder_k."):]]), k

    weak_q, strong_q, labels, batches = make_data()
    m32, log = run(lup_pnl, PNL, MoCoEncoder, args, init_state, weak_q, strong_q, labels,
                   batches, torch.float32)
    m64, log64 = run(lup_pnl, PNL, MoCoEncoder, args, init_state, weak_q, strong_q, labels,
                     batches, torch.float64)
    for s32, s64 in zip(log, log64):
        rel = abs(s32['loss'] - s64['loss']) / abs(s64['loss'])
        print(f"step {s32['step']:2d}: relu margin {s32['relu_margin']:.1e} "
              f"loss f32 vs f64 {rel:.2e}")
    for s32, s64 in zip(log, log64):
        assert s32["corrected_labels"] == s64["corrected_labels"], (s32, s64)
    s32, s64 = m32.state_dict(), m64.state_dict()
    noise, stored64 = {}, {}
    for k in s32:
        if s32[k].is_floating_point():
            d = (s32[k].double() - s64[k]).abs().max().item()
            noise[k] = d / max(s64[k].abs().max().item(), 1e-12)
            if noise[k] > NOISE_STORED:
                stored64[k] = s64[k].float().contiguous()
    print(f"worst float32-vs-float64 {max(noise.values()):.2e}; {len(stored64)} stored")

    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in init_state.items() if not k.startswith("encoder_k.")},
              os.path.join(OUT, "init.safetensors"))
    save_file({k: v.detach().contiguous() for k, v in s32.items()},
              os.path.join(OUT, "final.safetensors"))
    save_file(stored64, os.path.join(OUT, "final64.safetensors"))
    np.savez(os.path.join(OUT, "crops.npz"), weak=weak_q.numpy(), strong=strong_q.numpy())
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(
            source=dict(repository="github.com/DengpanFu/LUPerson-NL", commit=commit,
                        files=["PNL/lup_pnl.py", "PNL/libs/pnl_builder.py",
                               "PNL/libs/encoder.py", "PNL/scripts/run_pnl.sh"],
                        argv=argv, torch=torch.__version__, torchvision=torchvision.__version__,
                        numpy=np.__version__),
            config=CFG, labels=labels.tolist(), steps=log,
            final_queue_ptr=int(m32.queue_ptr),
            # max |float32 - float64| / max |float64| of every final tensor.
            torch_f32_vs_f64=noise,
            float64_stored_above=NOISE_STORED,
        ), f, indent=1)
    dist.destroy_process_group()
    if os.path.exists(store.name):
        os.unlink(store.name)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
