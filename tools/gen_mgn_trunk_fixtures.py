#!/usr/bin/env python3
"""Writes the fixtures of `Mgn::from_trunk` into crates/reid-backbones/tests/fixtures/backbones/mgn_trunk/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_mgn_trunk_fixtures.py

fast-reid builds MGN (`fastreid/modeling/meta_arch/mgn.py`) from a ResNet
trunk: the shared part is `conv1, bn1, relu, maxpool, layer1, layer2,
layer3[0]`; every branch is a deep copy of `layer3[1:]` followed by a deep
copy of `layer4` (b1) or of `res_p_conv5` (b2, b3): three stride-1
bottlenecks, the first with a 1x1 stride-1 downsample, into which
`layer4.state_dict()` is loaded. This script does the same with the small
torchvision-layout ResNet and the MGN module of `gen_backbone_fixtures.py`
(whose `MGN.__init__` follows those steps), so the branches start from the
trunk's weights and only the heads and the extra BNs are new.

What it writes (one trunk, one set of heads, two MGNs built from them):

* `trunk.pth`: the trunk's bare torchvision-layout state dict (random
  weights, non-trivial BN statistics; `torch.save(trunk.state_dict())`), the
  input of `from_trunk` after `load_backbone`.
* `heads.pth`: a fast-reid checkpoint `{"model": ...}` holding only the
  MGN's 8 heads (`b*_head.{pool_layer.p, bottleneck.{0,1}.*, weight}`) and
  the extra BNs (`heads_extra_bn_b{1,2,3}.*`), random too (GeM p = 2.5), so
  the test can give the Rust model the same heads and compare the final
  feature.
* For the MGN's last stride `s` in 1 (fast-reid's MGN config) and 2 (the
  trunk built as torchvision's ImageNet ResNet, so only b1 downsamples; b2
  and b3 stay at stride 1 whatever the trunk): `ls<s>_b{1,2,3}.npy`, float32
  `[2, C, h, w]`, the branch maps (before the extra BN) in eval mode on
  `input.npy`, and `ls<s>_feat.npy`, float32 `[2, 8 * emb]`, the inference
  feature (8 post-BN head features in the order b1, b2, b3, b21, b22, b31,
  b32, b33).
* `input.npy` float32 `[2, 3, 112, 16]` (seed 500): the stride-1 branch
  maps are 7 rows high (1 column), so `torch.chunk(3)` gives 3/3/1 rows;
  with last stride 2, b1 is 4 rows high.
* `manifest.json`: versions and the configuration.

The script also checks that every branch holds a copy (equal values,
separate storage) of the trunk's `layer3[1:]` and `layer4`.

Sizes: trunk blocks [1, 1, 3, 3], base width 2 (2048-channel R50 layout
scaled by 1/32), embedding 8, 5 classes; the whole folder is about 240 KiB.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_backbone_fixtures import MGN, GemP, ResNet, randomize  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "mgn_trunk")

BLOCKS = [1, 1, 3, 3]
WIDTH = 2
EMB = 8
CLASSES = 5
GEM_P = 2.5

TRUNK_SEED = 510
HEADS_SEED = 511


def np_save(name, arr):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(arr, dtype=np.float32))


def branch_maps(mgn, x):
    f = mgn.backbone(x)
    return [mgn.b1(f), mgn.b2(f), mgn.b3(f)]


def check_branches_hold_trunk_weights(mgn, trunk):
    """The construction really copies: every branch equals layer3[1:] + layer4, storages distinct."""
    tsd = trunk.state_dict()
    for b in ["b1", "b2", "b3"]:
        sd = getattr(mgn, b).state_dict()
        for k, v in sd.items():
            seq, rest = k.split(".", 1)
            if seq == "0":
                idx, tail = rest.split(".", 1)
                src = tsd[f"layer3.{int(idx) + 1}.{tail}"]
            else:
                src = tsd[f"layer4.{rest}"]
            assert torch.equal(v, src), (b, k)
            assert v.data_ptr() != src.data_ptr(), (b, k)


def main():
    os.makedirs(OUT, exist_ok=True)
    x = torch.randn(2, 3, 112, 16, generator=torch.Generator().manual_seed(500))
    np_save("input.npy", x.numpy())
    manifest = {
        "generator": "tools/gen_mgn_trunk_fixtures.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "input": "input.npy",
        "blocks": BLOCKS,
        "base_width": WIDTH,
        "stem": "fastreid",
        "trunk": "trunk.pth",
        "heads": "heads.pth",
        "last_stride": {},
        "embedding_dim": EMB,
        "num_classes": CLASSES,
        "extra_bn": True,
        "gem_p": GEM_P,
    }
    trunk = ResNet(True, BLOCKS, WIDTH, 1, "fastreid", None)
    randomize(trunk, torch.Generator().manual_seed(TRUNK_SEED))
    trunk_sd = {k: v.clone() for k, v in trunk.state_dict().items()}
    torch.save(trunk_sd, os.path.join(OUT, "trunk.pth"))
    for last_stride in [1, 2]:
        trunk = ResNet(True, BLOCKS, WIDTH, last_stride, "fastreid", None)
        trunk.load_state_dict(trunk_sd)
        trunk.eval()
        # The classifier weights (`b*_head.weight`) come from the global generator.
        torch.manual_seed(HEADS_SEED)
        mgn = MGN(trunk, EMB, CLASSES).eval()
        check_branches_hold_trunk_weights(mgn, trunk)
        gen = torch.Generator().manual_seed(HEADS_SEED)
        for n, m in mgn.named_children():
            if n.endswith("_head") or n.startswith("heads_extra_bn"):
                randomize(m, gen)
        with torch.no_grad():
            for m in mgn.modules():
                if isinstance(m, GemP):
                    m.p.fill_(GEM_P)
        with torch.inference_mode():
            maps = branch_maps(mgn, x)
            feat = mgn(x)
        heads = {k: v for k, v in mgn.state_dict().items() if not k.startswith(("backbone.", "b1.", "b2.", "b3."))}
        if last_stride == 1:
            torch.save({"model": heads, "iteration": 0}, os.path.join(OUT, "heads.pth"))
        else:  # the same heads for both
            saved = torch.load(os.path.join(OUT, "heads.pth"))["model"]
            assert all(torch.equal(saved[k], v) for k, v in heads.items())
        entry = {}
        for b, m in zip(["b1", "b2", "b3"], maps):
            np_save(f"ls{last_stride}_{b}.npy", m.numpy())
            entry[b] = {"file": f"ls{last_stride}_{b}.npy", "shape": list(m.shape)}
        np_save(f"ls{last_stride}_feat.npy", feat.numpy())
        entry["feature"] = {"file": f"ls{last_stride}_feat.npy", "shape": list(feat.shape)}
        manifest["last_stride"][str(last_stride)] = entry
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = 0
    for fname in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, fname))
        total += size
        print(f"{fname:24s} {size / 1024:8.1f} KiB")
    print(f"{'total':24s} {total / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
