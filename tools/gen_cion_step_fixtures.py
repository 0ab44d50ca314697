#!/usr/bin/env python3
"""Write the fixtures of `crates/reid-train/tests/integration/cion_step_parity.rs`: twelve
whole CION training steps computed by CION's own code.

Reference: CION_ReIDZoo (github.com/Zplusdragon/CION_ReIDZoo, commit 7ac6fd7),
imported from a local checkout passed with --cion (never copied):
  - `CION_Pretrain/loss.py`: GradualIdentityDINOLoss (loss, K schedule, center);
  - `CION_Pretrain/models/Head.py`: DINOHead;
  - `CION_Pretrain/models/ResNet_IBN.py`: IBN, BasicBlock_IBN, ResNet_IBN
    (its `_make_layer`, `forward` and initialisation loop);
  - `CION_Pretrain/utils.py`: MultiCropWrapper, cosine_scheduler,
    get_params_groups, clip_gradients, cancel_gradients_last_layer.
The body of `train_one_epoch` (`CION_Pretrain/run.py`) calls CUDA and DDP, so
its order of operations is transcribed below, one citation per line; every
component it calls is upstream's own function. Distributed parts are reduced to
one process (a gloo group of size 1 through a file, no network), fp16 AMP is
off (`use_fp16` False: the `fp16_scaler is None` branch).

The run crosses: the learning-rate warm-up (2 epochs), the head's last-layer
unfreeze (`freeze_last_layer` = 3), a K change (gradual epochs [4, 6],
instances [2, 4]), with 2 steps per epoch over 6 epochs = 12 steps. The
backbone is a ResNet-IBN-a of CION's own blocks at base width 4, one
BasicBlock_IBN per stage; the crops are fixed seeded tensors (no augmentation).

Output (`crates/reid-train/tests/fixtures/cion_step/`):
  - `init_backbone.safetensors`: the student's backbone state dict
    (torchvision names), which the teacher copies, as upstream;
  - `crops.npz`: `global` [steps, 2, B, 3, 48, 24], `local` [steps, 2, B, 3,
    32, 16], bytes `q` of the crops `(q − 128)/64`;
  - `final_student_backbone.safetensors`, `final_teacher_backbone.safetensors`:
    the backbones after the 12 steps (BatchNorm running statistics included);
    `final_student64_…`, `final_teacher64_…`: the same run in float64 (stored
    as float32), the reference for PyTorch's own float32 rounding;
  - `heads.safetensors`: the DINO heads, `init.*`, `student.*`, `teacher.*`,
    `student64.*`, `teacher64.*`
    (`mlp.{0,2,4}.{weight,bias}`, `last_layer.weight_g`, `last_layer.weight_v`);
  - `expected.json`: configuration, per-step loss / lr / wd / momentum / K,
    and the final center.

Run: `.venv/bin/python tools/gen_cion_step_fixtures.py --cion PATH/TO/CION_ReIDZoo`
(tools/requirements.txt pins the environment).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from safetensors.torch import save_file

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "reid-train", "tests", "fixtures", "cion_step",
)

# The run (fields of reid_train::CionConfig; run.py's argument names in comments).
CFG = dict(
    width=4,                 # backbone base width (ResNet_IBN hard-codes 64)
    batch_size=8,            # --batch_size_per_gpu, one GPU
    steps_per_epoch=2,       # len(data_loader)
    epochs=6,                # --epochs
    lr=0.05,                 # --lr (scaled by batch / 256)
    min_lr=1e-6,             # --min_lr
    warmup_epochs=2,         # --warmup_epochs
    weight_decay=0.04,       # --weight_decay
    weight_decay_end=0.4,    # --weight_decay_end
    momentum_teacher=0.9,    # --momentum_teacher
    clip_grad=0.3,           # --clip_grad (small, so that it bites)
    freeze_last_layer=3,     # --freeze_last_layer
    out_dim=64,              # --output_dim
    head_hidden_dim=32,      # DINOHead hidden_dim
    head_bottleneck_dim=16,  # DINOHead bottleneck_dim
    local_crops=2,           # --local_crops_number
    gradual_epochs=[4, 6],   # --gradual_epochs
    gradual_instances=[2, 4],  # --gradual_instances
    student_temp=0.1,
    teacher_temp=0.04,
    center_momentum=0.9,
    global_size=[48, 24],    # the smallest sizes whose layer-3 maps keep more
    local_size=[32, 16],     # than one pixel (InstanceNorm needs two)
)
SEED = 7


def tiny_resnet_ibn(ResNet_IBN, BasicBlock_IBN, width):
    """`ResNet_IBN.__init__` (ResNet_IBN.py lines 114-144) with 64 replaced by
    `width` and one BasicBlock_IBN per stage; `_make_layer`, `forward` and the
    initialisation loop are upstream's own."""
    m = ResNet_IBN.__new__(ResNet_IBN)
    nn.Module.__init__(m)
    m.inplanes = width
    m.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.relu = nn.ReLU(inplace=True)
    m.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    m.layer1 = m._make_layer(BasicBlock_IBN, width, 1, ibn="a")
    m.layer2 = m._make_layer(BasicBlock_IBN, 2 * width, 1, stride=2, ibn="a")
    m.layer3 = m._make_layer(BasicBlock_IBN, 4 * width, 1, stride=2, ibn="a")
    m.layer4 = m._make_layer(BasicBlock_IBN, 8 * width, 1, stride=1, ibn=None)
    m.avgpool = nn.AdaptiveAvgPool2d(1)
    m.embed_dim = 8 * width * BasicBlock_IBN.expansion
    for mod in m.modules():  # ResNet_IBN.py lines 138-144
        if isinstance(mod, nn.Conv2d):
            n = mod.kernel_size[0] * mod.kernel_size[1] * mod.out_channels
            mod.weight.data.normal_(0, math.sqrt(2.0 / n))
        elif isinstance(mod, (nn.BatchNorm2d, nn.InstanceNorm2d)):
            mod.weight.data.fill_(1)
            mod.bias.data.zero_()
    return m


def state(module, prefix):
    """The state dict entries under `prefix`, with the prefix removed."""
    return {
        k[len(prefix):]: v.detach().clone().contiguous()
        for k, v in module.state_dict().items()
        if k.startswith(prefix)
    }


def run(mods, init, global_q, local_q, dtype):
    """run.py's training loop over the fixed crops, in `dtype`, from the
    state dict `init`; returns (student, teacher, loss, per-step log)."""
    GradualIdentityDINOLoss, DINOHead, BasicBlock_IBN, ResNet_IBN, utils = mods
    c = CFG
    # run.py lines 214-226: student and teacher, MultiCropWrapper, same weights.
    student = tiny_resnet_ibn(ResNet_IBN, BasicBlock_IBN, c["width"])
    teacher = tiny_resnet_ibn(ResNet_IBN, BasicBlock_IBN, c["width"])
    embed_dim = student.embed_dim
    student_head = DINOHead(embed_dim, c["out_dim"], hidden_dim=c["head_hidden_dim"],
                            bottleneck_dim=c["head_bottleneck_dim"])
    teacher_head = DINOHead(embed_dim, c["out_dim"], hidden_dim=c["head_hidden_dim"],
                            bottleneck_dim=c["head_bottleneck_dim"])
    student = utils.MultiCropWrapper(student, student_head).to(dtype)
    teacher = utils.MultiCropWrapper(teacher, teacher_head).to(dtype)
    student.load_state_dict(init)
    # run.py line 240 (teacher_without_ddp.load_state_dict(student.module.state_dict())).
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():  # run.py lines 242-243
        p.requires_grad = False

    # run.py line 247: the loss.
    loss_fn = GradualIdentityDINOLoss(
        out_dim=c["out_dim"], ncrops=c["local_crops"] + 2,
        teacher_temp=c["teacher_temp"], student_temp=c["student_temp"],
        center_momentum=c["center_momentum"],
        gepochs=c["gradual_epochs"], ginstances=c["gradual_instances"],
    ).to(dtype)
    # run.py lines 250-253: AdamW over get_params_groups.
    optimizer = torch.optim.AdamW(utils.get_params_groups(student))
    # run.py lines 268-281: schedules.
    n_it = c["steps_per_epoch"]
    lr_schedule = utils.cosine_scheduler(
        c["lr"] * c["batch_size"] / 256.0, c["min_lr"], c["epochs"], n_it,
        warmup_epochs=c["warmup_epochs"])
    wd_schedule = utils.cosine_scheduler(c["weight_decay"], c["weight_decay_end"], c["epochs"], n_it)
    momentum_schedule = utils.cosine_scheduler(c["momentum_teacher"], 1, c["epochs"], n_it)
    global_crops = ((global_q.to(torch.float64) - 128.0) / 64.0).to(dtype)
    local_crops = ((local_q.to(torch.float64) - 128.0) / 64.0).to(dtype)

    student.train()
    teacher.train()  # upstream never calls teacher.eval()
    log = []
    for epoch in range(c["epochs"]):
        for it_in_epoch in range(n_it):
            it = n_it * epoch + it_in_epoch  # run.py line 131
            # run.py lines 132-141: lr and weight decay of this iteration.
            for i, param_group in enumerate(optimizer.param_groups):
                param_group["lr"] = lr_schedule[it] if it < len(lr_schedule) else lr_schedule[-1]
                if i == 0:
                    param_group["weight_decay"] = wd_schedule[it] if it < len(wd_schedule) else wd_schedule[-1]
            images = [global_crops[it, 0], global_crops[it, 1]] + [
                local_crops[it, v] for v in range(c["local_crops"])]
            # run.py lines 147-151 (autocast off): teacher on the 2 global crops, student on all.
            teacher_output = teacher(images[:2])
            student_output = student(images)
            loss = loss_fn([student_output, teacher_output], epoch)
            assert math.isfinite(loss.item())  # run.py lines 154-156
            # run.py lines 159-167 (fp16_scaler is None).
            optimizer.zero_grad()
            loss.backward()
            utils.clip_gradients(student, c["clip_grad"])
            utils.cancel_gradients_last_layer(epoch, student, c["freeze_last_layer"])
            optimizer.step()
            # run.py lines 178-184: teacher EMA.
            with torch.no_grad():
                m = momentum_schedule[it] if it < len(momentum_schedule) else momentum_schedule[-1]
                for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                    param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
            log.append(dict(
                step=it, epoch=epoch, loss=loss.item(),
                lr=float(optimizer.param_groups[0]["lr"]),
                wd=float(optimizer.param_groups[0]["weight_decay"]),
                teacher_momentum=float(m),
                k=loss_fn.ginstances[loss_fn.judge_epoch(epoch)],
            ))
            print(f"{dtype} step {it:2d} epoch {epoch} K {log[-1]['k']} loss {loss.item():.6f} lr {log[-1]['lr']:.3e}")

    return student, teacher, loss_fn, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="local checkout of CION_ReIDZoo")
    args = ap.parse_args()
    root = os.path.join(os.path.abspath(args.cion), "CION_Pretrain")
    sys.path.insert(0, root)
    from loss import GradualIdentityDINOLoss
    from models.Head import DINOHead
    from models.ResNet_IBN import BasicBlock_IBN, ResNet_IBN
    import utils

    commit = subprocess.run(
        ["git", "-C", args.cion, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()

    # loss.update_center all-reduces: one process through a file store.
    store = tempfile.NamedTemporaryFile(delete=False)
    dist.init_process_group("gloo", init_method=f"file://{store.name}", rank=0, world_size=1)

    torch.manual_seed(SEED)
    c = CFG
    mods = (GradualIdentityDINOLoss, DINOHead, BasicBlock_IBN, ResNet_IBN, utils)
    # Initial student weights (which the teacher copies) and the fixed crops.
    init_net = utils.MultiCropWrapper(
        tiny_resnet_ibn(ResNet_IBN, BasicBlock_IBN, c["width"]),
        DINOHead(8 * c["width"], c["out_dim"], hidden_dim=c["head_hidden_dim"],
                 bottleneck_dim=c["head_bottleneck_dim"]))
    init = {k: v.detach().clone() for k, v in init_net.state_dict().items()}
    g = torch.Generator().manual_seed(SEED + 1)
    steps = c["epochs"] * c["steps_per_epoch"]
    b = c["batch_size"]
    gh, gw = c["global_size"]
    lh, lw = c["local_size"]
    # Stored as bytes q, the crop is (q - 128) / 64: exact in float32 on both sides.
    global_q = torch.randint(0, 256, (steps, 2, b, 3, gh, gw), generator=g, dtype=torch.uint8)
    local_q = torch.randint(0, 256, (steps, c["local_crops"], b, 3, lh, lw), generator=g, dtype=torch.uint8)

    student, teacher, loss_fn, log = run(mods, init, global_q, local_q, torch.float32)
    # The same run in float64: how far PyTorch's own float32 result is from
    # exact arithmetic, per tensor (the noise floor of the comparison).
    s64, t64, l64, _ = run(mods, init, global_q, local_q, torch.float64)
    noise = {}
    for name, a, ref in [("student", student, s64), ("teacher", teacher, t64)]:
        sa, sr = a.state_dict(), ref.state_dict()
        for k in sa:
            if sa[k].is_floating_point():
                d = (sa[k].double() - sr[k]).abs().max().item()
                noise[f"{name}.{k}"] = d / max(sr[k].abs().max().item(), 1e-12)
    init_backbone = {k[len("backbone."):]: v for k, v in init.items() if k.startswith("backbone.")}
    init_head = {k[len("head."):]: v for k, v in init.items() if k.startswith("head.")}

    os.makedirs(OUT, exist_ok=True)
    init_backbone = {k: v.contiguous() for k, v in init_backbone.items()}
    save_file(init_backbone, os.path.join(OUT, "init_backbone.safetensors"))
    heads = {f"init.{k}": v for k, v in init_head.items()}
    for name, net in [("student", student), ("teacher", teacher), ("student64", s64), ("teacher64", t64)]:
        backbone = {k: v.float() if v.is_floating_point() else v
                    for k, v in state(net, "backbone.").items()}
        save_file(backbone, os.path.join(OUT, f"final_{name}_backbone.safetensors"))
        heads.update({f"{name}.{k}": v.float() for k, v in state(net, "head.").items()})
    save_file(heads, os.path.join(OUT, "heads.safetensors"))
    np.savez(os.path.join(OUT, "crops.npz"),
             **{"global": global_q.numpy(), "local": local_q.numpy()})
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(
            source=dict(repository="github.com/Zplusdragon/CION_ReIDZoo", commit=commit,
                        files=["CION_Pretrain/run.py", "CION_Pretrain/loss.py",
                               "CION_Pretrain/models/Head.py", "CION_Pretrain/models/ResNet_IBN.py",
                               "CION_Pretrain/utils.py"],
                        torch=torch.__version__, numpy=np.__version__),
            config=CFG, steps=log,
            center=loss_fn.center.flatten().tolist(),
            # max |float32 - float64| / max |float64| of every final tensor
            # of the upstream run (`student.backbone.bn1.bias`, …).
            torch_f32_vs_f64=noise,
            center64=l64.center.flatten().tolist(),
        ), f, indent=1)
    dist.destroy_process_group()
    os.unlink(store.name)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
