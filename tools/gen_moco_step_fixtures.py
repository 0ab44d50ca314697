#!/usr/bin/env python3
"""Write the fixtures of `crates/reid-train/tests/integration/moco_step_parity.rs`: twelve
whole MoCo v2 training steps computed by LUPerson's own code.

Reference: LUPerson (github.com/DengpanFu/LUPerson, commit d5fa344), imported
from a local checkout passed with --lup (never copied):
  - `lup_moco/libs/moco_builder.py`: the `MoCo` module (query and key
    encoders with the MLP head, the queue and its initialisation,
    `_momentum_update_key_encoder`, `_dequeue_and_enqueue` with its wrap);
  - `lup_moco/lup_moco.py`: `adjust_learning_rate` (cosine per epoch); its
    `accuracy` (the logged acc1/acc5) is transcribed, as it fails on the
    pinned PyTorch (see `accuracy` below). The module is imported whole; the
    dataset modules it pulls in need `lmdb` and `cv2`, which are stubbed
    (never called here).
The encoder is torchvision's ResNet (`models.__dict__[args.arch]`), built
narrow: base width 4, one torchvision `Bottleneck` per stage, through
torchvision's own `_make_layer` and initialisation.

`MoCo.forward` calls CUDA (`torch.randperm(...).cuda()`, `.cuda()` labels),
and the training loop DDP and AMP, so their order of operations is
transcribed below, one citation per line. One process (a gloo group of size 1
through a file, no network): shuffle-BN is then a permutation of the whole
batch, which BatchNorm does not see (our `bn_groups` = 1). `--mix 0` (fp32).

The run: batch 8, queue K = 20 (not a multiple of the batch: it wraps at
step 2, and at step 4 the pointer lands exactly on K), 6 epochs of 2 steps
with the learning rate changing per epoch (cosine), key momentum 0.9 so the
EMA shows, SGD momentum 0.9, weight decay 5e-3. `run_moco.sh` uses SGD, for
which `adjust_learning_rate`'s warm-up is the identity (`lr_mult` = 1), so
there is no warm-up to cross.

Output (`crates/reid-train/tests/fixtures/moco_step/`):
  - `init_backbone.safetensors`: the query encoder's trunk (torchvision
    names), which the key encoder copies;
  - `heads.safetensors`: the MLP heads `init.*`, `query.*`, `key.*`,
    `query64.*`, `key64.*` (`fc.0.{weight,bias}`, `fc.2.{weight,bias}`);
  - `queues.safetensors`: `init`, `final`, `final64`, each `[dim, K]` as
    upstream stores it;
  - `final_{query,key}_backbone.safetensors` and `final_{query,key}64_…`:
    the trunks after the 12 steps (BatchNorm statistics included), float32
    and the float64 run stored as float32 (PyTorch's own rounding floor);
  - `crops.npz`: `q`, `k` [steps, B, 3, 48, 24], bytes of the views
    `(x − 128)/64`;
  - `expected.json`: configuration, per-step loss / lr / acc1 / acc5, the
    final queue pointer.

Run: `.venv/bin/python tools/gen_moco_step_fixtures.py --lup PATH/TO/LUPerson`
(tools/requirements.txt pins the environment).
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
from torch import nn
from safetensors.torch import save_file
from torchvision.models.resnet import Bottleneck, ResNet

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "reid-train", "tests", "fixtures", "moco_step",
)

# The run (fields of reid_train::MocoConfig; lup_moco.py's argument names in comments).
CFG = dict(
    width=4,              # trunk base width (torchvision's ResNet hard-codes 64)
    size=[48, 24],        # crop height, width (layer 4 keeps 2 × 1 pixels)
    batch_size=8,         # --batch-size, one GPU
    steps_per_epoch=2,    # len(train_loader)
    epochs=6,             # --epochs
    lr=0.06,              # --lr
    momentum=0.9,         # --momentum
    weight_decay=5e-3,    # --wd (1e-4 upstream; larger so that it shows)
    dim=16,               # --moco_dim
    queue_size=20,        # --moco_k
    key_momentum=0.9,     # --moco_m (0.999 upstream; smaller so that it shows)
    temperature=0.1,      # --T
)
SEED = 11


def tiny_resnet(width, num_classes):
    """torchvision `ResNet.__init__` (torchvision/models/resnet.py, class
    ResNet) with the stem's 64 channels replaced by `width` and one
    Bottleneck per stage; `_make_layer`, `_forward_impl` and the block are
    torchvision's own, the initialisation loop is ResNet's (kaiming normal
    fan-out for convolutions, BatchNorm 1 / 0, `nn.Linear` defaults)."""
    m = ResNet.__new__(ResNet)
    nn.Module.__init__(m)
    m._norm_layer = nn.BatchNorm2d
    m.inplanes, m.dilation, m.groups, m.base_width = width, 1, 1, 64
    m.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    m.relu = nn.ReLU(inplace=True)
    m.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    m.layer1 = m._make_layer(Bottleneck, width, 1)
    m.layer2 = m._make_layer(Bottleneck, 2 * width, 1, stride=2)
    m.layer3 = m._make_layer(Bottleneck, 4 * width, 1, stride=2)
    m.layer4 = m._make_layer(Bottleneck, 8 * width, 1, stride=2)
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    m.fc = nn.Linear(8 * width * Bottleneck.expansion, num_classes)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def state(module, prefix, drop=()):
    """The state dict entries under `prefix`, prefix removed, as float32."""
    out = {}
    for k, v in module.state_dict().items():
        if k.startswith(prefix) and not any(k[len(prefix):].startswith(d) for d in drop):
            v = v.detach().clone().contiguous()
            out[k[len(prefix):]] = v.float() if v.is_floating_point() else v
    return out


def accuracy(output, target, topk):
    """lup_moco.py `accuracy` (lines 593-607), transcribed: its
    `correct[:k].view(-1)` fails on the non-contiguous slice in the pinned
    PyTorch, so it is `.reshape(-1)` here; the values are the same."""
    with torch.no_grad():
        _, pred = output.topk(max(topk), 1, True, True)
        correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
        return [correct[:k].reshape(-1).float().sum(0) * 100.0 / target.size(0) for k in topk]


def run(MoCo, lup_moco, init, queue0, q_u8, k_u8, dtype):
    """lup_moco.py's training loop over the fixed views, in `dtype`, from
    the query state dict `init` and the queue `queue0`."""
    c = CFG
    # lup_moco.py lines 237-238: the model (mlp=1).
    model = MoCo(lambda num_classes: tiny_resnet(c["width"], num_classes),
                 dim=c["dim"], K=c["queue_size"], m=c["key_momentum"],
                 T=c["temperature"], mlp=1).to(dtype)
    model.encoder_q.load_state_dict(init)
    # moco_builder.py lines 39-41: the key encoder copies the query's parameters.
    for param_q, param_k in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
        param_k.data.copy_(param_q.data)
    model.queue.copy_(queue0.to(dtype))  # moco_builder.py lines 44-45, fixed values
    # lup_moco.py line 277 and lines 287-290: criterion and SGD (--optimizer SGD).
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), c["lr"], momentum=c["momentum"],
                                weight_decay=c["weight_decay"])
    args = types.SimpleNamespace(lr=c["lr"], lr_mult=1.0, warmup_epochs=0, cos=1,
                                 epochs=c["epochs"], schedule=[])
    q_all = ((q_u8.to(torch.float64) - 128.0) / 64.0).to(dtype)
    k_all = ((k_u8.to(torch.float64) - 128.0) / 64.0).to(dtype)
    perm = torch.Generator().manual_seed(SEED + 2)
    log = []
    for epoch in range(c["epochs"]):
        lup_moco.adjust_learning_rate(optimizer, epoch, args)  # lup_moco.py line 353
        model.train()  # lup_moco.py line 406
        for i in range(c["steps_per_epoch"]):
            it = epoch * c["steps_per_epoch"] + i
            im_q, im_k = q_all[it], k_all[it]
            # MoCo.forward (moco_builder.py lines 155-191), inlined for its .cuda() calls:
            q = model.encoder_q(im_q)  # line 156
            q = nn.functional.normalize(q, dim=1)  # line 157
            with torch.no_grad():  # line 160
                model._momentum_update_key_encoder()  # line 161
                # _batch_shuffle_ddp (lines 98-124) with one process: a
                # permutation of the whole batch, and its inverse.
                idx_shuffle = torch.randperm(im_k.shape[0], generator=perm)
                idx_unshuffle = torch.argsort(idx_shuffle)
                k = model.encoder_k(im_k[idx_shuffle])  # line 166
                k = nn.functional.normalize(k, dim=1)  # line 167
                k = k[idx_unshuffle]  # line 170 (_batch_unshuffle_ddp, one process)
            l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)  # line 175
            l_neg = torch.einsum("nc,ck->nk", [q, model.queue.clone().detach()])  # line 177
            logits = torch.cat([l_pos, l_neg], dim=1)  # line 180
            logits /= model.T  # line 183
            labels = torch.zeros(logits.shape[0], dtype=torch.long)  # line 186
            model._dequeue_and_enqueue(k)  # line 189
            # lup_moco.py lines 426-444 (args.mix 0).
            loss = criterion(logits, labels)
            acc1, acc5 = accuracy(logits, labels, topk=(1, 5))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            log.append(dict(step=it, epoch=epoch, loss=loss.item(),
                            lr=float(optimizer.param_groups[0]["lr"]),
                            acc1=acc1.item(), acc5=acc5.item()))
            print(f"{dtype} step {it:2d} epoch {epoch} loss {loss.item():.6f} "
                  f"lr {log[-1]['lr']:.4f} acc1 {acc1.item():.1f} ptr {int(model.queue_ptr)}")
    return model, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lup", required=True, help="local checkout of LUPerson")
    args = ap.parse_args()
    root = os.path.join(os.path.abspath(args.lup), "lup_moco")
    sys.path.insert(0, root)
    for name in ("lmdb", "cv2"):  # imported by libs/dataset.py, unused here
        sys.modules.setdefault(name, types.ModuleType(name))
    import lup_moco
    from libs.moco_builder import MoCo

    commit = subprocess.run(
        ["git", "-C", args.lup, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    # concat_all_gather (in _dequeue_and_enqueue) all-gathers: one process.
    store = tempfile.NamedTemporaryFile(delete=False)
    dist.init_process_group("gloo", init_method=f"file://{store.name}", rank=0, world_size=1)

    c = CFG
    torch.manual_seed(SEED)
    init_model = MoCo(lambda num_classes: tiny_resnet(c["width"], num_classes),
                      dim=c["dim"], K=c["queue_size"], m=c["key_momentum"],
                      T=c["temperature"], mlp=1)
    init = {k: v.detach().clone() for k, v in init_model.encoder_q.state_dict().items()}
    queue0 = init_model.queue.detach().clone()
    g = torch.Generator().manual_seed(SEED + 1)
    steps = c["epochs"] * c["steps_per_epoch"]
    h, w = c["size"]
    q_u8 = torch.randint(0, 256, (steps, c["batch_size"], 3, h, w), generator=g, dtype=torch.uint8)
    k_u8 = torch.randint(0, 256, (steps, c["batch_size"], 3, h, w), generator=g, dtype=torch.uint8)

    m32, log = run(MoCo, lup_moco, init, queue0, q_u8, k_u8, torch.float32)
    m64, _ = run(MoCo, lup_moco, init, queue0, q_u8, k_u8, torch.float64)
    noise = {}
    for name, enc in [("query", "encoder_q"), ("key", "encoder_k")]:
        a, r = getattr(m32, enc).state_dict(), getattr(m64, enc).state_dict()
        for k in a:
            if a[k].is_floating_point():
                d = (a[k].double() - r[k]).abs().max().item()
                noise[f"{name}.{k}"] = d / max(r[k].abs().max().item(), 1e-12)

    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in init.items() if not k.startswith("fc.")},
              os.path.join(OUT, "init_backbone.safetensors"))
    heads = {f"init.{k}": v.contiguous() for k, v in init.items() if k.startswith("fc.")}
    for name, model, enc in [("query", m32, "encoder_q"), ("key", m32, "encoder_k"),
                             ("query64", m64, "encoder_q"), ("key64", m64, "encoder_k")]:
        net = getattr(model, enc)
        save_file(state(net, "", drop=("fc.",)),
                  os.path.join(OUT, f"final_{name}_backbone.safetensors"))
        heads.update({f"{name}.fc.{k}": v for k, v in state(net, "fc.").items()})
    save_file(heads, os.path.join(OUT, "heads.safetensors"))
    save_file({"init": queue0.contiguous(), "final": m32.queue.detach().contiguous(),
               "final64": m64.queue.detach().float().contiguous()},
              os.path.join(OUT, "queues.safetensors"))
    np.savez(os.path.join(OUT, "crops.npz"), q=q_u8.numpy(), k=k_u8.numpy())
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(
            source=dict(repository="github.com/DengpanFu/LUPerson", commit=commit,
                        files=["lup_moco/lup_moco.py", "lup_moco/libs/moco_builder.py"],
                        torch=torch.__version__, numpy=np.__version__,
                        torchvision=__import__("torchvision").__version__),
            config=CFG, steps=log, queue_ptr=int(m32.queue_ptr),
            # max |float32 - float64| / max |float64| of every final tensor
            # of the upstream run (`query.layer1.0.bn1.bias`, ...).
            torch_f32_vs_f64=noise,
        ), f, indent=1)
    dist.destroy_process_group()
    if os.path.exists(store.name):
        os.unlink(store.name)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
