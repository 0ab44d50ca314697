#!/usr/bin/env python3
"""Writes the CION ViT pre-training and fine-tuning fixtures of
`reid-backbones` into crates/reid-backbones/tests/fixtures/backbones/vit_cion/, from CION's own
code.

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
   saves it;
4. a CION pre-training checkpoint kept as a fixture. CION's class fixes the
   ICS stem at 64 channels (`hidden_dim=64` passed to `PatchEmbed_VOLO` in
   `TransReID_ViT.__init__`, line 248 of
   `CION_Pretrain/models/Vision_Transformer.py`), which makes the file
   ~600 KB, so the pre-training file is imported a second time and that
   literal narrowed in memory to 8 (`narrowed_class` of
   `gen_cion_resnet_fixtures.py`: `ast` on the upstream file, the changed
   class executed in the module's namespace; nothing written to the
   checkout or stored here; the replacement is listed in the manifest).
   Steps 1-3 use the class unchanged. The reduced network as in step 1
   (dim 16, depth 2, 2 heads, tuple `img_size` (64, 32)), written by
   `tools/cion_reidzoo.py` (seed 20; `pos_embed`, `cls_token` and the
   stem's InstanceNorm affines redrawn), `teacher`, `epoch` and the pickled
   `args` only, legacy container.

Files:

* `input.npy` `[2, 3, 64, 32]`, `input_large.npy` `[1, 3, 96, 48]`;
* `transreid.pth`: the fine-tuned state dict (`base.*`, `bottleneck.*`,
  `classifier.weight`), legacy container (smaller);
* `feat.npy`, `feat_large.npy`: `model(x)` in eval mode (= `base(x)`, the
  CLS token after the final norm), what CION's evaluator receives;
* `feat_tuple.npy`: the same network with `img_size` a tuple (no resize at
  64x32), to measure what the quirk changes;
* `cion_pretrain.pth` (step 4; `module.backbone.*` + DINO head `module.head.*`
  in `teacher`), `pretrain_embedding.npy`, `pretrain_embedding_large.npy`:
  the teacher backbone's `forward` (CLS token after the final norm) on
  `input.npy` and `input_large.npy` (the latter resized DINO's way);
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
sys.dont_write_bytecode = True  # (no tools/__pycache__ from the imports below)
import cion_reidzoo  # noqa: E402
from gen_cion_resnet_fixtures import narrowed_class, randomise_instance_norms_  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones",
                   "vit_cion")

DIM, DEPTH, HEADS = 16, 2, 2
IMG = (64, 32)
STEM_HIDDEN = 8  # the kept pre-training checkpoint's ICS stem (CION: 64)


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
    tr_path = os.path.join(OUT, "transreid.pth")
    if not cion_reidzoo.unchanged(tr_path, sd):  # (kept when unchanged)
        torch.save(sd, tr_path, _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "input_large.npy"), x_large.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat.npy"), feat.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat_large.npy"), feat_large.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "feat_tuple.npy"), feat_tuple.numpy().astype(np.float32))
    # 4. A CION pre-training checkpoint kept as a fixture, with the ICS stem
    # narrowed in memory (CION's class fixes `hidden_dim=64`, which makes the
    # file ~600 KB): a second import of the pre-training file, so that steps
    # 1-3 above use CION's class as it is.
    narrow = cion_reidzoo.import_file(a.cion, "CION_Pretrain/models/Vision_Transformer.py",
                                      "cion_pretrain_vit_narrow")
    replaced = narrowed_class(narrow, "TransReID_ViT", {64: STEM_HIDDEN}, os.path.abspath(a.cion))
    save_n, teacher_n, has_bn = cion_reidzoo.pretrain_checkpoint(
        a.cion, "vit_small", lambda: vit(narrow, IMG), seed=20, calibration=calib)
    assert has_bn and teacher_n.patch_embed.conv[0].out_channels == STEM_HIDDEN
    assert isinstance(teacher_n.img_size, tuple)  # (pre-training: no resize at 64x32)
    with torch.no_grad():
        teacher_n.pos_embed.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(21))
        teacher_n.cls_token.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(22))
    randomise_instance_norms_(teacher_n, torch.Generator().manual_seed(23))
    for k, v in teacher_n.state_dict().items():
        save_n["teacher"]["module.backbone." + k] = v.detach().clone()
    with torch.no_grad():
        emb_pre = teacher_n(x)
        emb_pre_large = teacher_n(x_large)
    pre_kept = os.path.join(OUT, "cion_pretrain.pth")
    slim = {k: save_n[k] for k in ("teacher", "epoch", "args")}
    if not cion_reidzoo.unchanged(pre_kept, slim):  # (kept when unchanged)
        torch.save(slim, pre_kept, _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "pretrain_embedding.npy"), emb_pre.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "pretrain_embedding_large.npy"), emb_pre_large.numpy().astype(np.float32))
    for r in replaced:
        print("  %s:%d %d -> %d" % tuple(r))
    print("pre-training checkpoint (stem %d): embedding |e|max %.3g, %d params" % (
        STEM_HIDDEN, emb_pre.abs().max().item(), sum(p.numel() for p in teacher_n.parameters())))

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
        "pretrain": {
            "source": "CION_ReIDZoo %s, CION_Pretrain/models/Vision_Transformer.py TransReID_ViT, "
                      "written as CION_Pretrain/run.py writes a checkpoint" % cion_reidzoo.CION_COMMIT,
            "file": "cion_pretrain.pth",
            "input": "input.npy", "embedding": "pretrain_embedding.npy",
            "input_large": "input_large.npy", "embedding_large": "pretrain_embedding_large.npy",
            "stem_hidden": STEM_HIDDEN,
            "replaced_literals": replaced,
            "num_params_backbone": sum(p.numel() for p in teacher_n.parameters()),
        },
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all); %d keys" % (OUT, total, len(sd)))


if __name__ == "__main__":
    main()
