#!/usr/bin/env python3
"""Writes the CION-RepViT parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/repvit_cion/, from CION's own `RepViT.py`.

Run from the repository root with the tools venv and a CION_ReIDZoo checkout
(commit 7ac6fd7; e.g. `git -C <mirror> archive 7ac6fd7 | tar -x -C /tmp/cion`):

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_cion_repvit_fixtures.py --cion /tmp/cion

and, for the opt-in full-size test (`REID_CION_REPVIT_FULL=DIR cargo test -p
reid-backbones --test integration parity_repvit_cion:: -- --ignored`), with the three
full-size checkpoints written outside the repository (about 95 MB):

    .venv/bin/python tools/gen_cion_repvit_fixtures.py --cion /tmp/cion --full DIR

CION's `CION_Pretrain/models/RepViT.py` is THU-MIG's RepViT with its own
squeeze-and-excitation instead of timm's: keys `conv_reduce` / `conv_expand`
(timm: `fc1` / `fc2`), gate `relu6(x + 3) / 6` (timm: sigmoid), reduced
channels `_make_divisible(c / 4, 4)` (timm: `make_divisible(c / 4, 8)`).
`CION_Finetune/TransReID/model/backbones/RepViT.py` is the same network
(plus `load_param`); the generator checks that both give the same output
from the same state dict.

The reduced model is CION's `RepViT(cfgs)` with a cfg list in CION's row
format (`k, t, c, SE, HS, s`) made from channels (8, 8, 16, 16) and depths
(2, 1, 1, 2) by the rule CION's three presets follow (checked here against
`repvit_m0_9/m1_0/m1_5().cfgs`): per stage its blocks (SE on the 1st, 3rd,
...), then for the next stage a stride-1 row without SE (our `pre_block`) and
a stride-2 row. The widths are chosen where the two SE roundings differ
(8 -> 4 vs 8, 16 -> 4 vs 8), so a timm-SE model cannot load
the file.

Weights (`tools/cion_reidzoo.py`): seeded random convolutions (PyTorch's
default scale), BatchNorm affines 1 + 0.2 N / 0.1 N, then running
statistics from the backbone's own activations on random images, slightly
perturbed (random statistics through 20+ residual blocks would grow the
full-size activations to ~1e8).

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `features.npy`: the last stage `[2, 16, 2, 1]` of the teacher backbone
  (CION's own modules, eval); `embedding.npy`: CION's `forward` `[2, 16]`.
* `cion_pretrain.pth`: a CION pre-training checkpoint as `run.py` writes it
  (`tools/cion_reidzoo.py`): `student`, `teacher` (`module.backbone.*` +
  `module.head.*`), `optimizer`, `epoch`, `args` (pickled
  `argparse.Namespace`), `Loss`, `fp16_scaler`.
* `transreid.pth`: that checkpoint fine-tuned as CION's TransReID code
  writes it: CION's own `make_model.build_model` (PRETRAIN_CHOICE 'self',
  so its `load_param` reads `cion_pretrain.pth`; BNNeck, `NECK_FEAT
  'before'` as in every CION config), parameters moved by 0.02 N and BN
  variances by up to 5 %, `model.state_dict()` saved (`base.*`,
  `bottleneck.*`, `classifier.weight`; legacy container);
  `transreid_features.npy` / `transreid_embedding.npy`: its map and
  `model(x)` in eval mode (= `base(x)`, the feature CION evaluates).
* `manifest.json`: versions, configuration, CION's parameter counts of the
  reduced model and of `repvit_m0_9/m1_0/m1_5`.
"""

import argparse
import json
import os
import sys

from types import SimpleNamespace as NS

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cion_reidzoo  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones",
                   "repvit_cion")

DIMS = (8, 8, 16, 16)
DEPTHS = (2, 1, 1, 2)


def cfgs_of(dims, depths, hs_from_stage=2):
    """CION's cfg rows (k, t, c, SE, HS, s) of a RepViT with `dims` / `depths`."""
    rows = []
    for i in range(4):
        if i > 0:
            rows.append([3, 2, dims[i - 1], 0, int(i - 1 >= hs_from_stage), 1])
            rows.append([3, 2, dims[i], 0, int(i >= hs_from_stage), 2])
        for j in range(depths[i]):
            rows.append([3, 2, dims[i], int(j % 2 == 0), int(i >= hs_from_stage), 1])
    return rows


def backbone_params(model):
    return sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="root of a CION_ReIDZoo checkout (commit 7ac6fd7)")
    ap.add_argument("--full", help="also write full-size checkpoints and 256x128 features here")
    a = ap.parse_args()

    pre = cion_reidzoo.import_file(a.cion, "CION_Pretrain/models/RepViT.py", "cion_pretrain_repvit")
    fine = cion_reidzoo.import_file(a.cion, "CION_Finetune/TransReID/model/backbones/RepViT.py",
                                    "cion_finetune_repvit")

    presets = {
        "repvit_m0_9": ((48, 96, 192, 384), (2, 2, 14, 2)),
        "repvit_m1_0": ((56, 112, 224, 448), (2, 2, 14, 2)),
        "repvit_m1_5": ((64, 128, 256, 512), (4, 4, 24, 4)),
    }
    counts = {}
    for name, (dims, depths) in presets.items():
        model = getattr(pre, name)()
        assert model.cfgs == cfgs_of(dims, depths), name
        counts[name] = backbone_params(model)
        print("%s: CION parameters %d (cfg rule checked)" % (name, counts[name]))

    cfgs = cfgs_of(DIMS, DEPTHS)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    save_dict, teacher, has_bn = cion_reidzoo.pretrain_checkpoint(
        a.cion, "repvit_m0_9", lambda: pre.RepViT(cfgs), seed=0, calibration=calib)
    assert has_bn
    with torch.no_grad():
        emb = teacher(x)
        h = x
        for f in teacher.features:
            h = f(h)
        feats = h
        # The fine-tuning definition, from the same weights.
        ft = fine.RepViT(cfgs).eval()
        ft.load_state_dict(teacher.state_dict(), strict=True)
        ft_err = (ft(x) - emb).abs().max().item()
    assert ft_err == 0.0, ft_err
    assert (emb - feats.mean((2, 3))).abs().max().item() <= 1e-6 * emb.abs().max().item()

    # What CION's fine-tuning `load_param` reads back: `teacher` keys with
    # `backbone`, the first 16 characters (`module.backbone.`) removed.
    sd = {k[16:]: v for k, v in save_dict["teacher"].items() if "backbone" in k}
    ft.load_state_dict(sd, strict=True)

    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))
    torch.save(save_dict, os.path.join(OUT, "cion_pretrain.pth"))
    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cion_reidzoo": cion_reidzoo.CION_COMMIT,
        },
        "source": "CION_ReIDZoo %s, CION_Pretrain/models/RepViT.py" % cion_reidzoo.CION_COMMIT,
        "embed_dims": list(DIMS),
        "depths": list(DEPTHS),
        "cfgs": cfgs,
        "input": "input.npy",
        "features": "features.npy",
        "embedding": "embedding.npy",
        "checkpoint": "cion_pretrain.pth",
        "num_params_backbone": backbone_params(teacher),
        "cion_num_params": counts,
    }
    # A fine-tuned checkpoint as CION's TransReID code writes it:
    # `make_model.build_model` with PRETRAIN_CHOICE 'self' (its `load_param`
    # reads the file above), every parameter and BN statistic moved a
    # little ("fine-tuning"), `model.state_dict()` saved.
    torch.serialization.add_safe_globals([argparse.Namespace])  # CION used torch < 2.6
    sys.path.insert(0, os.path.join(a.cion, "CION_Finetune", "TransReID"))
    import model  # noqa: F401  CION's TransReID package (imports every backbone)

    make_model = sys.modules["model.make_model"]
    cfg = NS(
        MODEL=NS(PRETRAIN_PATH=os.path.join(OUT, "cion_pretrain.pth"), PRETRAIN_CHOICE="self",
                 COS_LAYER=False, NECK="bnneck", REDUCE_FEAT_DIM=False, FEAT_DIM=512, DROPOUT_RATE=0.0,
                 NAME="repvit_m0_9", ID_LOSS_TYPE="softmax"),
        TEST=NS(NECK_FEAT="before"),
        INPUT=NS(SIZE_TRAIN=[64, 32]),
    )
    torch.manual_seed(5)
    tr = make_model.build_model(5, cfg, {"repvit_m0_9": lambda image_size: fine.RepViT(cfgs)})
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for p in tr.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
        for m in tr.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_var.mul_(1.0 + 0.05 * torch.rand(m.running_var.shape, generator=g))
    tr.eval()
    with torch.no_grad():
        tr_emb = tr(x)
        h = x
        for f in tr.base.features:
            h = f(h)
        tr_feats = h
    assert (tr_emb - tr_feats.mean((2, 3))).abs().max().item() <= 1e-6 * tr_emb.abs().max().item()
    torch.save(tr.state_dict(), os.path.join(OUT, "transreid.pth"), _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "transreid_features.npy"), tr_feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "transreid_embedding.npy"), tr_emb.numpy().astype(np.float32))
    manifest["transreid"] = "transreid.pth"
    manifest["transreid_features"] = "transreid_features.npy"
    manifest["transreid_embedding"] = "transreid_embedding.npy"

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all); teacher keys %d" % (OUT, total, len(save_dict["teacher"])))

    if a.full:
        os.makedirs(a.full, exist_ok=True)
        xf = torch.randn(2, 3, 256, 128, generator=torch.Generator().manual_seed(2))
        calib = torch.randn(4, 3, 256, 128, generator=torch.Generator().manual_seed(4))
        np.save(os.path.join(a.full, "input.npy"), xf.numpy().astype(np.float32))
        for i, name in enumerate(presets):
            sd_full, t_full, _ = cion_reidzoo.pretrain_checkpoint(
                a.cion, name, getattr(pre, name), seed=10 + i, student_noise=0.0, calibration=calib)
            # Keep the file to the teacher and args (the student and
            # optimizer would triple its size; the reduced fixture has them).
            sd_full = {k: sd_full[k] for k in ("teacher", "epoch", "args")}
            with torch.no_grad():
                e = t_full(xf)
            torch.save(sd_full, os.path.join(a.full, name + ".pth"))
            np.save(os.path.join(a.full, name + ".embedding.npy"), e.numpy().astype(np.float32))
            print("full size %s: embedding %s, |e|max %.3g" % (name, tuple(e.shape), e.abs().max().item()))


if __name__ == "__main__":
    main()
