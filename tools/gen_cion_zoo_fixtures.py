#!/usr/bin/env python3
"""Writes CION-format pre-training checkpoints of six ReIDZoo families, built
from CION's own model files, into tests/fixtures/backbones/cion_zoo/<family>/.

Run from the repository root with the tools venv and a CION_ReIDZoo checkout
(commit 7ac6fd7):

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_cion_zoo_fixtures.py --cion /tmp/cion

Families (reduced sizes, built with the classes of
`CION_Pretrain/models/*.py`, imported from the checkout -- not copied; timm
pieces stubbed by `tools/cion_reidzoo.py`):

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

Files per family: `cion_pretrain.pth`, `input.npy` `[2, 3, 64, 32]`,
`embedding.npy` (CION's `forward` of the teacher backbone in eval mode: the
feature CION evaluates), `manifest.json` (configuration, CION source file,
parameter count).
"""

import argparse
import json
import os
import sys
from functools import partial

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cion_reidzoo  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "backbones",
                   "cion_zoo")


def families(cion):
    """(name, zoo arch, CION file, constructor, config for the manifest)."""
    imp = lambda f, n: cion_reidzoo.import_file(cion, "CION_Pretrain/models/%s.py" % f, n)  # noqa: E731
    convnext = imp("ConvNext", "cion_convnext")
    edgenext = imp("EdgeNext", "cion_edgenext")
    fastvit = imp("FastViT", "cion_fastvit")
    ghostnet = imp("GhostNet", "cion_ghostnet")
    swin = imp("Swin_Transformer", "cion_swin")
    volo = imp("VOLO", "cion_volo")
    out = []

    c = {"depths": [1, 1, 2, 1], "dims": [8, 12, 16, 20]}
    out.append(("convnext", "convnext_tiny", "ConvNext.py",
                lambda: convnext.ConvNeXt(depths=c["depths"], dims=c["dims"]), c))

    e = {"depths": [1, 2, 1, 1], "dims": [8, 12, 16, 16], "heads": [2, 2, 4, 4]}
    out.append(("edgenext", "edgenext_x_small", "EdgeNext.py",
                lambda: edgenext.EdgeNeXt(depths=e["depths"], dims=e["dims"], expan_ratio=4,
                                          global_block=[0, 1, 1, 1],
                                          global_block_type=["None", "SDTA", "SDTA", "SDTA"],
                                          use_pos_embd_xca=[False, True, False, False],
                                          kernel_sizes=[3, 5, 7, 9], heads=e["heads"],
                                          d2_scales=[2, 2, 3, 4]), e))

    f = {"layers": [1, 1, 1, 1], "embed_dims": [8, 16, 16, 32], "mlp_ratios": [2, 2, 2, 2],
         "attention": [False, False, False, True], "pos_emb": [False, False, False, True], "head_dim": 32}
    out.append(("fastvit", "fastvit_sa12", "FastViT.py",
                lambda: fastvit.FastViT(f["layers"], token_mixers=("repmixer", "repmixer", "repmixer", "attention"),
                                        embed_dims=f["embed_dims"], mlp_ratios=f["mlp_ratios"],
                                        downsamples=[True, True, True, True],
                                        pos_embs=[None, None, None, partial(fastvit.RepCPE, spatial_shape=(7, 7))]),
                f))

    g = {"width": 0.05, "num_features": 1280}
    out.append(("ghostnet", "ghostnet_1_0", "GhostNet.py",
                lambda: ghostnet.GhostNet(ghostnet.ghostnet_1_0().cfgs, width=g["width"]), g))

    s = {"embed_dim": 8, "depths": [1, 1, 1, 1], "heads": [1, 1, 2, 2], "window": 4}
    out.append(("swin", "swin_tiny", "Swin_Transformer.py",
                lambda: swin.SwinTransformer(embed_dim=s["embed_dim"], depths=s["depths"], num_heads=s["heads"],
                                             window_size=s["window"], pooling=True), s))

    v = {"layers": [1, 1, 1, 1], "embed_dims": [8, 16, 16, 16], "num_heads": [2, 4, 4, 4],
         "stem_hidden_dim": 8, "img_size": [64, 32], "mlp_ratio": 3.0}
    out.append(("volo", "volo_d1", "VOLO.py",
                lambda: volo.VOLO(v["layers"], img_size=v["img_size"], stem_hidden_dim=v["stem_hidden_dim"],
                                  embed_dims=v["embed_dims"], num_heads=v["num_heads"],
                                  mlp_ratios=[3, 3, 3, 3], downsamples=[True, False, False, False],
                                  outlook_attention=[True, False, False, False], post_layers=["ca", "ca"]),
                v))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="root of a CION_ReIDZoo checkout (commit 7ac6fd7)")
    a = ap.parse_args()
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    for i, (name, arch, src, make, cfg) in enumerate(families(a.cion)):
        save_dict, teacher, has_bn = cion_reidzoo.pretrain_checkpoint(
            a.cion, arch, make, seed=20 + i, calibration=calib)
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
        torch.save(slim, os.path.join(d, "cion_pretrain.pth"), _use_new_zipfile_serialization=False)
        np.save(os.path.join(d, "input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(d, "embedding.npy"), emb.numpy().astype(np.float32))
        manifest = {
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "numpy": np.__version__, "cion_reidzoo": cion_reidzoo.CION_COMMIT},
            "source": "CION_ReIDZoo %s, CION_Pretrain/models/%s" % (cion_reidzoo.CION_COMMIT, src),
            "arch": arch,
            "config": cfg,
            "module_prefix": has_bn,
            "num_params_backbone": sum(p.numel() for p in teacher.parameters()),
            "teacher_keys": len(save_dict["teacher"]),
        }
        with open(os.path.join(d, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
        size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        print("%-9s embedding %s |e|max %.3g, %d params, BN %s, %d bytes" % (
            name, tuple(emb.shape), emb.abs().max().item(), manifest["num_params_backbone"], has_bn, size))


if __name__ == "__main__":
    main()
