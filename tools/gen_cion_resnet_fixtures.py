#!/usr/bin/env python3
"""Writes the CION ResNet(-IBN) / MGN parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/resnet_cion/, from CION's own code.

Run from the repository root with the tools venv (yacs and termcolor, which
CION's fast-reid imports, are in tools/requirements.txt) and a CION_ReIDZoo
checkout (commit 7ac6fd7):

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_cion_resnet_fixtures.py --cion /tmp/cion

The networks are built with CION's classes, imported from the checkout (not
copied): the pre-training `ResNet_IBN` of `CION_Pretrain/models/ResNet_IBN.py`
and `ResNet` of `CION_Pretrain/models/ResNet.py` and, for the MGN runs, the fast-reid of `CION_Finetune/FastReID` (its config
system `fastreid.config.get_cfg`, `fastreid.modeling.build_model`, its
`Checkpointer`).

Width. CION's classes fix the ResNet width at 64 (a ResNet-50 MGN would be
a ~270 MB fixture), so the generator narrows it in memory: `narrowed_class`
parses the upstream file with `ast`, divides the integer channel literals in
the body of one class's `__init__` by 32 (64/128/256/512 -> 2/4/8/16 in
`ResNet_IBN.__init__` of `CION_Pretrain/models/ResNet_IBN.py` and of
`CION_Finetune/TransReID/model/backbones/ResNet_IBN.py`, in `ResNet.__init__`
of `CION_Pretrain/models/ResNet.py` (lines 148, 165-167, 169, 172; the
default `width_per_group: int = 64` on line 139 is a signature default, not
the body, and stays: it is the reference of the blocks' width ratio), and in
`ResNet.__init__` of `CION_Finetune/FastReID/fastreid/modeling/backbones/
resnet.py`; 512/1024/2048 -> 16/32/64 in `MGN.__init__` of
`.../fastreid/modeling/meta_arch/mgn.py`), and executes the changed class
in the imported module's namespace, so that the module's own factories
(`resnet50_ibn_a`, `build_resnet_backbone`) and fast-reid's registry
(`META_ARCH_REGISTRY`, re-pointed at the narrowed `MGN`) build it. Nothing
else changes: depth, blocks, IBN split (`int(planes / 2)`), layer order,
forward. The replaced literals (file, line, old, new) are listed in the
manifest. Nothing is written back to the checkout, and no upstream code is
stored in this repository. The heads' width comes from the config
(`MODEL.BACKBONE.FEAT_DIM` 64, `MODEL.HEADS.EMBEDDING_DIM` 8 instead of 256,
`MODEL.HEADS.NUM_CLASSES` 5).

Steps:

1. `cion_pretrain.pth`: CION's `resnet50_ibn_a()` (blocks [3, 4, 6, 3],
   IBN-a in layers 1-3, last stride 1 as CION hard-codes it) at base width
   2, written as a CION pre-training checkpoint (`tools/cion_reidzoo.py`:
   seeded weights, BN statistics from the model's own activations, DDP
   `module.backbone.` prefix; `teacher`, `epoch` and the pickled `args`;
   legacy container), InstanceNorm affines randomised too;
   `embedding.npy`: CION's `forward` (GAP, flattened) of the teacher on
   `input.npy` `[2, 3, 64, 32]`.
2. `transreid.pth`: a ResNet18-IBN-a fine-tuned as CION's TransReID code
   does it (ResNet-18: basic blocks, fewer and smaller tensors than a
   ResNet-50, whose file would be 169 KB): a CION pre-training checkpoint
   of CION's `resnet18_ibn_a()` (as in step 1, written to a temporary
   directory only), read by CION's
   `CION_Finetune/TransReID/model/make_model.py` `build_model` with the
   fine-tuning file's own `resnet18_ibn_a` factory
   (`CION_Finetune/TransReID/model/backbones/ResNet_IBN.py`, narrowed the
   same way), `PRETRAIN_CHOICE 'self'` (its `load_param` reads that file
   strictly), BNNeck, `NECK_FEAT 'before'`, 5 identities; moved by 0.02 N,
   BN statistics a little; `model.state_dict()` saved (`base.*`,
   `bottleneck.*`, `classifier.weight`; legacy container);
   `transreid_embedding.npy`: `model(x)` in eval mode (= `base(x)`).
3. `mgn.pth`: CION's fast-reid MGN from CION's own config
   `configs/CMDM/market1501_mgn_R50ibn_cion.yml` (`_BASE_` chain
   Base-MGN -> Base-Strongerbaseline -> Base-bagtricks: R50-IBN, last
   stride 1, `EXTRA_BN: True`, GeM-P pooling, 1x1 embedding conv, BNNeck,
   circle softmax), with `PRETRAIN_PATH` the file of step 1 (fast-reid's
   `build_resnet_backbone` reads its `teacher`, cutting 16 characters, as
   in CION's runs) and the width overrides above; every parameter then
   moved by 0.02 N, GeM's p by 0.1 N, BN means by 0.02 N and variances by
   up to 5 % ("fine-tuning"), and saved by fast-reid's own `Checkpointer`
   (`{"model": state_dict, "epoch": ...}`, zip container).
   fast-reid's `forward` receives pixels (0..255, seeded uniform,
   `[2, 3, 128, 32]`) and normalises them with the config's `PIXEL_MEAN` /
   `PIXEL_STD` in `preprocess_image`; our model normalises outside, so
   `mgn_input.npy` holds the normalised images (the same float32
   operations). `mgn_feat.npy` `[2, 64]`: `model(pixels)` in eval mode (the
   8 heads' post-BN features concatenated, what fast-reid's evaluator
   receives). The 8x2 branch maps split 4/4 and 3/3/2.
4. `cion_pretrain_plain.pth`: CION's plain `resnet50()` of
   `CION_Pretrain/models/ResNet.py` (torchvision's `Bottleneck`, no IBN,
   last stride 1 hard-coded) at base width 2, written as a CION
   pre-training checkpoint like step 1 (seed 60);
   `plain_embedding.npy`: its `forward` (GAP, flattened) on `input.npy`.
5. `manifest.json`: versions, configuration, the replaced literals,
   parameter counts.
"""

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cion_reidzoo  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones",
                   "resnet_cion")
NARROW = 32
RESNET_WIDTHS = {w: w // NARROW for w in (64, 128, 256, 512)}
MGN_WIDTHS = {w: w // NARROW for w in (512, 1024, 2048)}
MGN_CONFIG = "CION_Finetune/FastReID/configs/CMDM/market1501_mgn_R50ibn_cion.yml"


def narrowed_class(module, class_name, widths, cion_root):
    """Re-executes class `class_name` of the imported `module` with the
    integer literals of its `__init__` that are keys of `widths` replaced by
    their values (in memory only; see the module documentation). Returns
    the list of replacements `[file, line, old, new]`."""
    path = module.__file__
    with open(path) as fh:
        tree = ast.parse(fh.read(), path)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    rel = os.path.relpath(path, cion_root)
    done = []
    # (the body only: a default such as `width_per_group: int = 64` of
    # `ResNet.py` is a ratio's reference, not a channel count)
    for node in (n for stmt in init.body for n in ast.walk(stmt)):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in widths:
            done.append([rel, node.lineno, node.value, widths[node.value]])
            node.value = widths[node.value]
    assert done, (rel, class_name)
    cls.decorator_list = []  # (fast-reid's registry decorator: re-pointed by the caller)
    code = compile(ast.fix_missing_locations(ast.Module(body=[cls], type_ignores=[])), path, "exec")
    exec(code, module.__dict__)
    return sorted(done, key=lambda r: r[1])


def randomise_instance_norms_(module, generator):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.InstanceNorm2d) and m.affine:
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cion", required=True, help="root of a CION_ReIDZoo checkout (commit 7ac6fd7)")
    a = ap.parse_args()
    cion = os.path.abspath(a.cion)
    os.makedirs(OUT, exist_ok=True)
    torch.serialization.add_safe_globals([argparse.Namespace])  # CION used torch < 2.6
    replaced = []

    # 1. CION pre-training checkpoint of a narrowed ResNet50-IBN-a.
    ibn = cion_reidzoo.import_file(cion, "CION_Pretrain/models/ResNet_IBN.py", "cion_pretrain_resnet_ibn")
    replaced += narrowed_class(ibn, "ResNet_IBN", RESNET_WIDTHS, cion)
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
    calib = torch.randn(8, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    save_dict, teacher, has_bn = cion_reidzoo.pretrain_checkpoint(
        cion, "resnet50_ibn", ibn.resnet50_ibn_a, seed=40, calibration=calib)
    assert has_bn and teacher.embed_dim == 64
    randomise_instance_norms_(teacher, torch.Generator().manual_seed(41))
    for k, v in teacher.state_dict().items():
        save_dict["teacher"]["module.backbone." + k] = v.detach().clone()
    with torch.no_grad():
        emb = teacher(x)
    pre_path = os.path.join(OUT, "cion_pretrain.pth")
    slim = {k: save_dict[k] for k in ("teacher", "epoch", "args")}
    if not cion_reidzoo.unchanged(pre_path, slim):  # (kept when unchanged)
        torch.save(slim, pre_path, _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))
    print("ResNet50-IBN-a (width 2): embedding %s |e|max %.3g, %d params" % (
        tuple(emb.shape), emb.abs().max().item(), sum(p.numel() for p in teacher.parameters())))

    # 2. Fine-tuned by CION's TransReID code from that file.
    from types import SimpleNamespace as NS

    sys.path.insert(0, os.path.join(cion, "CION_Finetune", "TransReID"))
    cion_reidzoo.install_stubs()
    import model  # noqa: F401  CION's TransReID package (imports every backbone)

    make_model = sys.modules["model.make_model"]
    fine = sys.modules["model.backbones.ResNet_IBN"]
    replaced += narrowed_class(fine, "ResNet_IBN", RESNET_WIDTHS, cion)
    tmp_dir = tempfile.mkdtemp()
    save18, teacher18, _ = cion_reidzoo.pretrain_checkpoint(
        cion, "resnet18_ibn", ibn.resnet18_ibn_a, seed=44, calibration=calib)
    randomise_instance_norms_(teacher18, torch.Generator().manual_seed(47))
    for k, v in teacher18.state_dict().items():
        save18["teacher"]["module.backbone." + k] = v.detach().clone()
    pre18 = os.path.join(tmp_dir, "resnet18_ibn_cion.pth")
    torch.save({k: save18[k] for k in ("teacher", "epoch", "args")}, pre18)
    tcfg = NS(
        MODEL=NS(PRETRAIN_PATH=pre18, PRETRAIN_CHOICE="self", COS_LAYER=False, NECK="bnneck",
                 REDUCE_FEAT_DIM=False, FEAT_DIM=512, DROPOUT_RATE=0.0, NAME="resnet18_ibn",
                 ID_LOSS_TYPE="softmax"),
        TEST=NS(NECK_FEAT="before"),
        INPUT=NS(SIZE_TRAIN=[64, 32]),
    )
    torch.manual_seed(45)
    tr = make_model.build_model(5, tcfg, {"resnet18_ibn": fine.resnet18_ibn_a})
    assert type(tr.base) is fine.ResNet_IBN and tr.in_planes == 16
    shutil.rmtree(tmp_dir)
    g = torch.Generator().manual_seed(46)
    with torch.no_grad():
        for p in tr.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
        for m in tr.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.add_(0.02 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.mul_(1.0 + 0.05 * torch.rand(m.running_var.shape, generator=g))
    tr.eval()
    with torch.no_grad():
        tr_emb = tr(x)
        assert torch.equal(tr_emb, tr.base(x))
    tr_path = os.path.join(OUT, "transreid.pth")
    if not cion_reidzoo.unchanged(tr_path, tr.state_dict()):
        torch.save(tr.state_dict(), tr_path, _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "transreid_embedding.npy"), tr_emb.numpy().astype(np.float32))
    print("TransReID fine-tuned: embedding |e|max %.3g" % tr_emb.abs().max().item())

    # 3. MGN with CION's fast-reid, from CION's config, reading that file.
    sys.path.insert(0, os.path.join(cion, "CION_Finetune", "FastReID"))
    from fastreid.config import get_cfg
    from fastreid.modeling import build_model
    from fastreid.modeling.meta_arch.build import META_ARCH_REGISTRY
    from fastreid.utils.checkpoint import Checkpointer
    import fastreid.modeling.backbones.resnet as fr_resnet
    import fastreid.modeling.meta_arch.mgn as fr_mgn

    replaced += narrowed_class(fr_resnet, "ResNet", RESNET_WIDTHS, cion)
    replaced += narrowed_class(fr_mgn, "MGN", MGN_WIDTHS, cion)
    META_ARCH_REGISTRY._obj_map["MGN"] = fr_mgn.MGN

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(cion, MGN_CONFIG))
    assert cfg.MODEL.META_ARCHITECTURE == "MGN" and cfg.MODEL.BACKBONE.WITH_IBN
    assert cfg.MODEL.BACKBONE.EXTRA_BN and cfg.MODEL.BACKBONE.DEPTH == "50x"
    assert cfg.MODEL.BACKBONE.LAST_STRIDE == 1 and not cfg.MODEL.BACKBONE.WITH_NL
    assert cfg.MODEL.HEADS.POOL_LAYER == "gempoolP" and cfg.MODEL.HEADS.CLS_LAYER == "circleSoftmax"
    overrides = ["MODEL.BACKBONE.PRETRAIN_PATH", pre_path, "MODEL.BACKBONE.FEAT_DIM", 64,
                 "MODEL.HEADS.EMBEDDING_DIM", 8, "MODEL.HEADS.NUM_CLASSES", 5, "MODEL.DEVICE", "cpu"]
    cfg.merge_from_list(overrides)
    cfg.freeze()
    torch.manual_seed(50)
    mgn = build_model(cfg)
    assert type(mgn) is fr_mgn.MGN
    # fast-reid loaded the teacher trunk (strict=False, only logged): check.
    t = teacher.state_dict()
    for ours, theirs in [(mgn.backbone[0].weight, t["conv1.weight"]),
                         (mgn.backbone[6].bn1.IN.weight, t["layer3.0.bn1.IN.weight"]),
                         (mgn.b1[0][0].conv2.weight, t["layer3.1.conv2.weight"]),
                         (mgn.b3[1][2].bn3.running_var, t["layer4.2.bn3.running_var"])]:
        assert torch.equal(ours, theirs)
    g = torch.Generator().manual_seed(51)
    with torch.no_grad():
        for name, p in mgn.named_parameters():
            p.add_((0.1 if name.endswith("pool_layer.p") else 0.02) * torch.randn(p.shape, generator=g))
        for m in mgn.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.add_(0.02 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.mul_(1.0 + 0.05 * torch.rand(m.running_var.shape, generator=g))
    mgn.eval()
    raw = 255.0 * torch.rand(2, 3, 128, 32, generator=torch.Generator().manual_seed(52))
    normalised = (raw.clone() - mgn.pixel_mean) / mgn.pixel_std
    with torch.no_grad():
        feat = mgn(raw.clone())  # (`preprocess_image` normalises in place)
    assert feat.shape == (2, 64), feat.shape
    with tempfile.TemporaryDirectory() as tmp:
        Checkpointer(mgn, tmp).save("model_final", epoch=59)
        shutil.copy(os.path.join(tmp, "model_final.pth"), os.path.join(OUT, "mgn.pth"))
    np.save(os.path.join(OUT, "mgn_input.npy"), normalised.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "mgn_feat.npy"), feat.numpy().astype(np.float32))
    print("MGN: feature %s |f|max %.3g, %d params" % (
        tuple(feat.shape), feat.abs().max().item(), sum(p.numel() for p in mgn.parameters())))

    # 4. CION pre-training checkpoint of a narrowed plain ResNet-50.
    plain = cion_reidzoo.import_file(cion, "CION_Pretrain/models/ResNet.py", "cion_pretrain_resnet")
    replaced += narrowed_class(plain, "ResNet", RESNET_WIDTHS, cion)
    save_plain, teacher_plain, has_bn = cion_reidzoo.pretrain_checkpoint(
        cion, "resnet50", plain.resnet50, seed=60, calibration=calib)
    assert has_bn and teacher_plain.embed_dim == 64
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in teacher_plain.modules())
    with torch.no_grad():
        emb_plain = teacher_plain(x)
    plain_path = os.path.join(OUT, "cion_pretrain_plain.pth")
    slim = {k: save_plain[k] for k in ("teacher", "epoch", "args")}
    if not cion_reidzoo.unchanged(plain_path, slim):
        torch.save(slim, plain_path, _use_new_zipfile_serialization=False)
    np.save(os.path.join(OUT, "plain_embedding.npy"), emb_plain.numpy().astype(np.float32))
    print("ResNet-50 (width 2): embedding %s |e|max %.3g, %d params" % (
        tuple(emb_plain.shape), emb_plain.abs().max().item(),
        sum(p.numel() for p in teacher_plain.parameters())))

    manifest = {
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                     "cion_reidzoo": cion_reidzoo.CION_COMMIT},
        "narrow": NARROW,
        "replaced_literals": replaced,
        "pretrain": {
            "source": "CION_ReIDZoo %s, CION_Pretrain/models/ResNet_IBN.py resnet50_ibn_a" % cion_reidzoo.CION_COMMIT,
            "file": "cion_pretrain.pth", "input": "input.npy", "embedding": "embedding.npy",
            "blocks": [3, 4, 6, 3], "base_width": 2, "ibn": "a", "last_stride": 1,
            "num_params_backbone": sum(p.numel() for p in teacher.parameters()),
        },
        "pretrain_plain": {
            "source": "CION_ReIDZoo %s, CION_Pretrain/models/ResNet.py resnet50" % cion_reidzoo.CION_COMMIT,
            "file": "cion_pretrain_plain.pth", "input": "input.npy", "embedding": "plain_embedding.npy",
            "blocks": [3, 4, 6, 3], "base_width": 2, "ibn": None, "last_stride": 1,
            "num_params_backbone": sum(p.numel() for p in teacher_plain.parameters()),
        },
        "transreid": {
            "source": "CION_ReIDZoo %s, CION_Finetune/TransReID/model/make_model.py build_model, "
                      "CION_Finetune/TransReID/model/backbones/ResNet_IBN.py resnet18_ibn_a"
                      % cion_reidzoo.CION_COMMIT,
            "file": "transreid.pth", "input": "input.npy", "embedding": "transreid_embedding.npy",
            "blocks": [2, 2, 2, 2], "bottleneck": False, "base_width": 2, "ibn": "a", "last_stride": 1,
            "num_classes": 5,
        },
        "mgn": {
            "source": "CION_ReIDZoo %s, %s with CION_Finetune/FastReID (fastreid.modeling.build_model, "
                      "Checkpointer)" % (cion_reidzoo.CION_COMMIT, MGN_CONFIG),
            "overrides": overrides[:1] + ["cion_pretrain.pth"] + overrides[2:],
            "file": "mgn.pth", "input": "mgn_input.npy",
            "feature": "mgn_feat.npy",
            "blocks": [3, 4, 6, 3], "base_width": 2, "ibn": "a", "last_stride": 1, "extra_bn": True,
            "embedding_dim": 8, "num_classes": 5,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN, "pixel_std": cfg.MODEL.PIXEL_STD,
            "num_params": sum(p.numel() for p in mgn.parameters()),
        },
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    for r in replaced:
        print("  %s:%d %d -> %d" % tuple(r))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


if __name__ == "__main__":
    main()
