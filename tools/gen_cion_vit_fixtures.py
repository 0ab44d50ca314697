#!/usr/bin/env python3
"""Writes the CION ViT fine-tuning fixtures of `reid-backbones` into
tests/fixtures/backbones/vit_cion/, from CION's own code.

Run from the repository root with the tools venv and a CION_ReIDZoo checkout
(commit 7ac6fd7):

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_cion_vit_fixtures.py --cion /tmp/cion

What it checks: a ViT fine-tuned by CION's TransReID code computes its test
feature with a position embedding resized at every input size. CION's
`make_model.build_model` builds the backbone as
`factory[cfg.MODEL.NAME](image_size=cfg.INPUT.SIZE_TRAIN)`, and yacs gives
`SIZE_TRAIN` as a *list* (`[256, 128]` in every CION config); CION's
`Vision_Transformer.py` keeps it as `self.img_size`, and
`interpolate_pos_encoding` skips the resize only when
`self.img_size == (h, w)` -- a list never equals a tuple. Pre-training builds
the model with the tuple default `(256, 128)`, so there the embedding is used
as stored.

Steps, all with CION's own modules (imported from the checkout, not copied;
timm pieces stubbed by `tools/cion_reidzoo.py`):

1. a reduced `TransReID_ViT` of `CION_Pretrain/models/Vision_Transformer.py`
   (dim 16, depth 2, 2 heads, img_size (64, 32) as a tuple like the
   pre-training presets; the 64-channel ICS stem is fixed in CION's class)
   and a CION pre-training checkpoint of it (`tools/cion_reidzoo.py`;
   written to a temporary directory);
2. CION's TransReID `model.make_model.build_model` with a factory entry that
   builds the fine-tuning file's `TransReID_ViT` at the same size from
   `image_size` = the list `[64, 32]` (as yacs passes it), `PRETRAIN_CHOICE
   'self'` (so `load_param` reads the step-1 file strictly), `NECK
   'bnneck'`, `NECK_FEAT 'before'` (every CION config);
3. "fine-tuning": every parameter moved by 0.05 N, the BNNeck given random
   statistics, then `model.state_dict()` saved as TransReID's processor
   saves it.

Files:

* `input.npy` `[2, 3, 64, 32]`, `input_large.npy` `[1, 3, 96, 48]`;
* `transreid.pth`: the fine-tuned state dict (`base.*`, `bottleneck.*`,
  `classifier.weight`), legacy container (smaller);
* `feat.npy`, `feat_large.npy`: `model(x)` in eval mode (= `base(x)`, the
  CLS token after the final norm), what CION's evaluator receives;
* `feat_tuple.npy`: the same network with `img_size` a tuple (no resize at
  64x32), to measure what the quirk changes;
* `manifest.json`.
"""

import argparse
import json
import os
import sys
import tempfile
from functools import partial
from types import SimpleNamespace as NS

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cion_reidzoo  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "backbones",
                   "vit_cion")

DIM, DEPTH, HEADS = 16, 2, 2
IMG = (64, 32)


def vit(module, img_size):
    return module.TransReID_ViT(img_size=img_size, patch_size=16, embed_dim=DIM, depth=DEPTH,
                                num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True,
                                norm_layer=partial(nn.LayerNorm, eps=1e-6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="root of a CION_ReIDZoo checkout (commit 7ac6fd7)")
    a = ap.parse_args()

    pre = cion_reidzoo.import_file(a.cion, "CION_Pretrain/models/Vision_Transformer.py", "cion_pretrain_vit")
    cion_reidzoo.install_stubs()
    sys.path.insert(0, os.path.join(a.cion, "CION_Finetune", "TransReID"))
    import model  # noqa: F401  CION's TransReID package (imports every backbone)

    # `model/__init__.py` re-exports the function `make_model` under the
    # submodule's name; take the module itself.
    make_model = sys.modules["model.make_model"]
    fine = sys.modules["model.backbones.Vision_Transformer"]

    calib = torch.randn(8, 3, *IMG, generator=torch.Generator().manual_seed(3))
    save_dict, teacher, has_bn = cion_reidzoo.pretrain_checkpoint(
        a.cion, "vit_small", lambda: vit(pre, IMG), seed=0, calibration=calib)
    assert has_bn
    with torch.no_grad():
        teacher.pos_embed.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(4))
        teacher.cls_token.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(5))
    # The position embedding was redrawn after the teacher copy: store it.
    for k in ("pos_embed", "cls_token"):
        save_dict["teacher"]["module.backbone." + k] = getattr(teacher, k).detach().clone()

    # CION ran torch < 2.6, whose `torch.load` unpickled anything; ours
    # loads weights only unless the checkpoint's `args` class is allowed.
    torch.serialization.add_safe_globals([argparse.Namespace])
    tmp = tempfile.mkdtemp()
    pretrain_path = os.path.join(tmp, "vit_cion_pretrain.pth")
    torch.save(save_dict, pretrain_path)

    cfg = NS(
        MODEL=NS(PRETRAIN_PATH=pretrain_path, PRETRAIN_CHOICE="self", COS_LAYER=False, NECK="bnneck",
                 REDUCE_FEAT_DIM=False, FEAT_DIM=512, DROPOUT_RATE=0.0, NAME="vit_small",
                 ID_LOSS_TYPE="softmax"),
        TEST=NS(NECK_FEAT="before"),
        INPUT=NS(SIZE_TRAIN=list(IMG)),  # yacs gives a list
    )
    factory = {"vit_small": lambda image_size: vit(fine, image_size)}
    torch.manual_seed(1)
    model = make_model.build_model(7, cfg, factory)
    assert isinstance(model.base.img_size, list)

    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.bottleneck.running_mean.copy_(0.1 * torch.randn(DIM, generator=g))
        model.bottleneck.running_var.copy_(torch.rand(DIM, generator=g) + 0.5)
    model.eval()

    x = torch.randn(2, 3, *IMG, generator=torch.Generator().manual_seed(7))
    x_large = torch.randn(1, 3, 96, 48, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        feat = model(x)
        feat_large = model(x_large)
        tuple_model = vit(fine, IMG).eval()
        tuple_model.load_state_dict(model.base.state_dict(), strict=True)
        feat_tuple = tuple_model(x)
        assert (model.base(x) - feat).abs().max().item() == 0.0
    quirk = (feat - feat_tuple).abs().max().item() / feat_tuple.abs().max().item()
    print("list img_size vs tuple at the trained size: rel. max difference %.3g" % quirk)
    assert quirk > 1e-3, quirk

    sd = model.state_dict()
    os.makedirs(OUT, exist_ok=True)
    torch.save(sd, os.path.join(OUT, "transreid.pth"), _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "input_large.npy"), x_large.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat.npy"), feat.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat_large.npy"), feat_large.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat_tuple.npy"), feat_tuple.numpy().astype(np.float32))
    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cion_reidzoo": cion_reidzoo.CION_COMMIT,
        },
        "source": "CION_ReIDZoo %s, CION_Finetune/TransReID/model/backbones/Vision_Transformer.py "
                  "and model/make_model.py" % cion_reidzoo.CION_COMMIT,
        "embed_dim": DIM,
        "depth": DEPTH,
        "num_heads": HEADS,
        "stem_hidden": 64,
        "img_size": list(IMG),
        "keys": sorted(sd.keys())[:3] + ["..."],
        "list_vs_tuple_rel_difference": quirk,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all); %d keys" % (OUT, total, len(sd)))


if __name__ == "__main__":
    main()
