#!/usr/bin/env python3
"""Writes CION-format pre-training checkpoints of six ReIDZoo families, built
from CION's own model files, into crates/reid-backbones/tests/fixtures/backbones/cion_zoo/<family>/.

Run from the repository root with the tools venv and a CION_ReIDZoo checkout
(commit 7ac6fd7):

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_cion_zoo_fixtures.py --cion /tmp/cion

Families (reduced sizes, built with the classes of
`CION_Pretrain/models/*.py`, imported from the checkout -- not copied; timm
pieces always stubbed by `tools/cion_reidzoo.py`, even where timm is
installed, so that the weights left at their initialisation do not depend on
timm's version):

* ConvNeXt (`ConvNext.py` `ConvNeXt`): depths (1, 1, 2, 1), dims
  (8, 12, 16, 20);
* EdgeNeXt (`EdgeNext.py` `EdgeNeXt`): the presets' block layout (SDTA
  ending stages 2-4, position encoding in stage 2, kernels 3/5/7/9, d2
  scales 2/2/3/4) at depths (1, 2, 1, 1), dims (8, 12, 16, 16), heads
  (2, 2, 4, 4);
* FastViT (`FastViT.py` `FastViT`): SA layout (RepMixer x3, attention +
  RepCPE 7x7 in stage 4) at layers (1, 1, 1, 1), dims (8, 16, 16, 32) (CION's
  attention has a fixed head_dim of 32), MLP ratio 2;
* GhostNet (`GhostNet.py` `GhostNet`): `ghostnet_1_0`'s stage table at width
  0.05 (CION's `conv_head` is fixed at 1280 channels);
* Swin (`Swin_Transformer.py` `SwinTransformer`): embed dim 8, depths
  (1, 1, 1, 1), heads (1, 1, 2, 2), window 4 (maps of 16x8 ... 2x1 tokens at
  64x32, so the deeper stages pad);
* VOLO (`VOLO.py` `VOLO`): layers (1, 1, 1, 1), dims (8, 16, 16, 16), heads
  (2, 4, 4, 4), stem width 8, img_size [64, 32], post layers ['ca', 'ca'].

Each checkpoint is built as CION's `run.py` builds one
(`cion_reidzoo.pretrain_checkpoint`: MultiCropWrapper + DINOHead with reduced
widths, DDP `module.` prefix when the model has BatchNorm -- GhostNet,
FastViT, VOLO -- and `backbone.` only otherwise, teacher copied from the
student, seeded weights, BN statistics from the model's own activations) and
written with the `teacher`, `epoch` and pickled `args` entries only (the
student, optimizer and loss are in the RepViT fixture; leaving them out keeps
these files small), legacy container.

Then each family is fine-tuned as CION's TransReID code does it: CION's own
`CION_Finetune/TransReID/model/make_model.py` `build_model` with a factory
entry that builds the family's class of
`CION_Finetune/TransReID/model/backbones/<same file>` at the reduced size
(from `image_size` = the list `[64, 32]`, as yacs passes it),
`PRETRAIN_CHOICE 'self'` (so the fine-tuning file's own `load_param` reads
`cion_pretrain.pth`, strictly, cutting `module.backbone.` / `backbone.` as
CION does per family), BNNeck, `NECK_FEAT 'before'` (every CION config),
5 identities; every parameter then moved by 0.02 N and BN variances by up to
5 % ("fine-tuning"), and `model.state_dict()` saved as TransReID's processor
saves it (`base.*`, `bottleneck.*`, `classifier.weight`; legacy container).

Files per family: `cion_pretrain.pth`, `input.npy` `[2, 3, 64, 32]`,
`embedding.npy` (CION's `forward` of the teacher backbone in eval mode: the
feature CION evaluates), `transreid.pth` and `transreid_embedding.npy`
(`model(x)` of the fine-tuned model in eval mode, checked equal to
`model.base(x)`: the feature CION evaluates), `manifest.json`
(configuration, CION source files, parameter count).

An existing `cion_pretrain.pth` or `transreid.pth` whose content equals the
new one is kept as it is (the legacy container is not byte-reproducible).
"""

import argparse
import json
import os
import sys
from functools import partial
from types import SimpleNamespace as NS

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cion_reidzoo  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones",
                   "cion_zoo")


def families():
    """(name, zoo arch, CION file, constructor, config for the manifest);
    `constructor(m)` builds the reduced network with the classes of module
    `m`: the file's pre-training copy (`CION_Pretrain/models/`) or its
    fine-tuning copy (`CION_Finetune/TransReID/model/backbones/`)."""
    out = []

    c = {"depths": [1, 1, 2, 1], "dims": [8, 12, 16, 20]}
    out.append(("convnext", "convnext_tiny", "ConvNext.py",
                lambda m: m.ConvNeXt(depths=c["depths"], dims=c["dims"]), c))

    e = {"depths": [1, 2, 1, 1], "dims": [8, 12, 16, 16], "heads": [2, 2, 4, 4]}
    out.append(("edgenext", "edgenext_x_small", "EdgeNext.py",
                lambda m: m.EdgeNeXt(depths=e["depths"], dims=e["dims"], expan_ratio=4,
                                     global_block=[0, 1, 1, 1],
                                     global_block_type=["None", "SDTA", "SDTA", "SDTA"],
                                     use_pos_embd_xca=[False, True, False, False],
                                     kernel_sizes=[3, 5, 7, 9], heads=e["heads"],
                                     d2_scales=[2, 2, 3, 4]), e))

    f = {"layers": [1, 1, 1, 1], "embed_dims": [8, 16, 16, 32], "mlp_ratios": [2, 2, 2, 2],
         "attention": [False, False, False, True], "pos_emb": [False, False, False, True], "head_dim": 32}
    out.append(("fastvit", "fastvit_sa12", "FastViT.py",
                lambda m: m.FastViT(f["layers"], token_mixers=("repmixer", "repmixer", "repmixer", "attention"),
                                    embed_dims=f["embed_dims"], mlp_ratios=f["mlp_ratios"],
                                    downsamples=[True, True, True, True],
                                    pos_embs=[None, None, None, partial(m.RepCPE, spatial_shape=(7, 7))]),
                f))

    g = {"width": 0.05, "num_features": 1280}

    def ghostnet_cfgs(m):
        # (the preset built each time, as the pre-training fixture was first
        # made: it draws from the global generator like the network does)
        preset = m.ghostnet_1_0 if m.__name__.startswith("cion_pretrain") else partial(m.ghostnet_1_0, None)
        return preset().cfgs

    out.append(("ghostnet", "ghostnet_1_0", "GhostNet.py",
                lambda m: m.GhostNet(ghostnet_cfgs(m), width=g["width"]), g))

    s = {"embed_dim": 8, "depths": [1, 1, 1, 1], "heads": [1, 1, 2, 2], "window": 4}
    out.append(("swin", "swin_tiny", "Swin_Transformer.py",
                lambda m: m.SwinTransformer(embed_dim=s["embed_dim"], depths=s["depths"], num_heads=s["heads"],
                                            window_size=s["window"], pooling=True), s))

    v = {"layers": [1, 1, 1, 1], "embed_dims": [8, 16, 16, 16], "num_heads": [2, 4, 4, 4],
         "stem_hidden_dim": 8, "img_size": [64, 32], "mlp_ratio": 3.0}
    out.append(("volo", "volo_d1", "VOLO.py",
                lambda m: m.VOLO(v["layers"], img_size=v["img_size"], stem_hidden_dim=v["stem_hidden_dim"],
                                 embed_dims=v["embed_dims"], num_heads=v["num_heads"],
                                 mlp_ratios=[3, 3, 3, 3], downsamples=[True, False, False, False],
                                 outlook_attention=[True, False, False, False], post_layers=["ca", "ca"]),
                v))
    return out


def fine_tune(make_model, name, arch, make, fine_module, pretrain_path, x, seed):
    """The CION pre-training file at `pretrain_path` fine-tuned by CION's
    TransReID `make_model.build_model` (see the module documentation);
    returns the model in eval mode and its feature `model(x)`."""
    cfg = NS(
        MODEL=NS(PRETRAIN_PATH=pretrain_path, PRETRAIN_CHOICE="self", COS_LAYER=False, NECK="bnneck",
                 REDUCE_FEAT_DIM=False, FEAT_DIM=512, DROPOUT_RATE=0.0, NAME=arch, ID_LOSS_TYPE="softmax"),
        TEST=NS(NECK_FEAT="before"),
        INPUT=NS(SIZE_TRAIN=[64, 32]),
    )
    torch.manual_seed(seed)
    tr = make_model.build_model(5, cfg, {arch: lambda image_size: make(fine_module)})
    assert type(tr.base).__module__ == fine_module.__name__, name
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in tr.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
        for mod in tr.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_var.mul_(1.0 + 0.05 * torch.rand(mod.running_var.shape, generator=g))
                mod.running_mean.add_(0.02 * torch.randn(mod.running_mean.shape, generator=g))
    tr.eval()
    with torch.no_grad():
        emb = tr(x)
        base = tr.base(x)
    assert torch.equal(emb, base), name
    return tr, emb


def finetune_modules(cion):
    """CION's TransReID package (`CION_Finetune/TransReID/model`, imported
    from the checkout): its `make_model` and the backbone files."""
    torch.serialization.add_safe_globals([argparse.Namespace])  # CION used torch < 2.6
    tr_root = os.path.join(cion, "CION_Finetune", "TransReID")
    if tr_root not in sys.path:
        sys.path.insert(0, tr_root)
    cion_reidzoo.install_stubs(force=True)
    import model  # noqa: F401  CION's TransReID package (imports every backbone)

    return sys.modules["model.make_model"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="root of a CION_ReIDZoo checkout (commit 7ac6fd7)")
    a = ap.parse_args()
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    make_model = finetune_modules(a.cion)
    total_added = 0
    for i, (name, arch, src, make, cfg) in enumerate(families()):
        pre = cion_reidzoo.import_file(a.cion, "CION_Pretrain/models/" + src, "cion_pretrain_" + name)
        fine = sys.modules["model.backbones." + src[:-3]]
        save_dict, teacher, has_bn = cion_reidzoo.pretrain_checkpoint(
            a.cion, arch, lambda: make(pre), seed=20 + i, calibration=calib)
        with torch.no_grad():
            for pname, p in teacher.named_parameters():
                # Position embeddings / class tokens / layer scales: visible
                # magnitudes (the randomiser covers convs, linears, norms).
                leaf = pname.split(".")[-1]
                if leaf in ("pos_embed", "cls_token", "gamma", "gamma_xca") or "layer_scale" in leaf:
                    p.copy_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(100 + i)))
                if pname.endswith("temperature"):
                    p.copy_(torch.rand(p.shape, generator=torch.Generator().manual_seed(200 + i)) + 0.5)
        prefix = "module.backbone." if has_bn else "backbone."
        for pname, p in teacher.state_dict().items():
            save_dict["teacher"][prefix + pname] = p.detach().clone()
        with torch.no_grad():
            emb = teacher(x)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        slim = {k: save_dict[k] for k in ("teacher", "epoch", "args")}
        pre_path = os.path.join(d, "cion_pretrain.pth")
        if not cion_reidzoo.unchanged(pre_path, slim):
            torch.save(slim, pre_path, _use_new_zipfile_serialization=False)
        np.save(os.path.join(d, "input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(d, "embedding.npy"), emb.numpy().astype(np.float32))

        tr, tr_emb = fine_tune(make_model, name, arch, make, fine, pre_path, x, seed=300 + i)
        tr_path = os.path.join(d, "transreid.pth")
        if not cion_reidzoo.unchanged(tr_path, tr.state_dict()):
            torch.save(tr.state_dict(), tr_path, _use_new_zipfile_serialization=False)
        np.save(os.path.join(d, "transreid_embedding.npy"), tr_emb.numpy().astype(np.float32))
        added = os.path.getsize(tr_path) + os.path.getsize(os.path.join(d, "transreid_embedding.npy"))
        total_added += added
        manifest = {
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "numpy": np.__version__, "cion_reidzoo": cion_reidzoo.CION_COMMIT},
            "source": "CION_ReIDZoo %s, CION_Pretrain/models/%s" % (cion_reidzoo.CION_COMMIT, src),
            "arch": arch,
            "config": cfg,
            "module_prefix": has_bn,
            "num_params_backbone": sum(p.numel() for p in teacher.parameters()),
            "teacher_keys": len(save_dict["teacher"]),
            "transreid": {
                "file": "transreid.pth",
                "embedding": "transreid_embedding.npy",
                "source": "CION_ReIDZoo %s, CION_Finetune/TransReID/model/make_model.py build_model, "
                          "CION_Finetune/TransReID/model/backbones/%s" % (cion_reidzoo.CION_COMMIT, src),
                "num_classes": 5,
                "keys": len(tr.state_dict()),
            },
        }
        with open(os.path.join(d, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
        size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        print("%-9s embedding %s |e|max %.3g, %d params, BN %s, %d bytes (fine-tuned file %d bytes, "
              "|e|max %.3g)" % (name, tuple(emb.shape), emb.abs().max().item(), manifest["num_params_backbone"],
                                has_bn, size, added, tr_emb.abs().max().item()))
    print("fine-tuned files: %d bytes in all" % total_added)


if __name__ == "__main__":
    main()
