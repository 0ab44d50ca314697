#!/usr/bin/env python3
"""Writes the RepViT parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/repvit/.

Run from the repository root with the tools venv:

    OMP_NUM_THREADS=1 .venv/bin/python tools/gen_repvit_fixtures.py

Reference: timm's `RepVit` (timm 1.0.x, `timm.models.repvit`, non-legacy:
the RepVGG token mixer's 1x1 branch is a conv with bias and no BN, then an
outer BN) in its training form, at a reduced size: embed_dim (8, 8, 16, 16),
depth (2, 0, 0, 1), mlp_ratio 2, kernel 3. Every code path of the full model
runs: stem, RepVGG depth-wise mixer, SE on alternate blocks, the down-sampling
entry (pre-block, stride-2 depth-wise conv-BN, 1x1 conv-BN, residual FFN).

timm has no converter for official checkpoints (its hub weights were
converted offline), so the official (THU-MIG/RepViT, also CION's) names are
produced here by renaming (`timm_to_official`) and checked by loading the
renamed dict strictly into `OfficialRepVit`, a module written here after the
official code's structure (`features` list: stem, then per stage the stride-1
pre-block and the stride-2 block of the official cfg rows, then the stage's
blocks; `Conv2d_BN` = `c`/`bn`, `RepVGGDW` = `conv`/`conv1`/`bn`, `Residual`
= `m`), whose output must equal timm's.

Weights are random with non-trivial statistics: BN weight 1 + 0.2 N (also for
the FFN's zero-initialised second BN), bias 0.1 N, running mean 0.1 N,
running var U(0.5, 1.5); conv biases 0.1 N. timm's own `fuse()` (inference
form) is checked to agree with the training form; the Rust test checks its
own re-parameterisation against the same outputs.

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `features.npy`: last stage `[2, 16, 2, 1]` (eval).
* `embedding.npy`: its global average `[2, 16]` (CION's RepViT feature).
* `official_cion.pth`: `{"teacher": {"module.backbone.<official key>": ...,
  "module.head.mlp.0.weight": ..., ...}, "epoch": 3}` (RepViT has BN, so
  CION's teacher was DDP-wrapped).
* `official.pth` (this and the CION file in torch's legacy pickle format,
  which is smaller): bare official state dict including the ImageNet
  classifier + distillation heads `classifier.{classifier,classifier_dist}.*`
  (unexpected for a backbone unless allowed), without `num_batches_tracked`.
* `timm.safetensors`: the timm state dict including its heads `head.*`.
* `manifest.json`: versions, configuration, file names.
"""

import copy
import json
import os
import sys

import numpy as np
import safetensors
import safetensors.torch
import timm
import torch
import torch.nn as nn
from timm.layers import SqueezeExcite

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "repvit")

DIMS = (8, 8, 16, 16)
DEPTHS = (2, 0, 0, 1)


def features_list():
    """The official flat `features` list: (stage, role) per index."""
    out = [(None, "stem")]
    for i in range(4):
        if i > 0:
            out.append((i, "pre_block"))
            out.append((i, "down"))
        for j in range(DEPTHS[i]):
            out.append((i, j))
    return out


BLOCK_RENAMES = [
    ("token_mixer.conv.", "token_mixer.0.conv."),
    ("token_mixer.conv1.", "token_mixer.0.conv1."),
    ("token_mixer.bn.", "token_mixer.0.bn."),
    ("se.", "token_mixer.1."),
    ("channel_mixer.conv1.", "channel_mixer.m.0."),
    ("channel_mixer.conv2.", "channel_mixer.m.2."),
]
DOWN_RENAMES = [
    ("spatial_downsample.", "token_mixer.0."),
    ("channel_downsample.", "token_mixer.2."),
    ("ffn.conv1.", "channel_mixer.m.0."),
    ("ffn.conv2.", "channel_mixer.m.2."),
]


def timm_to_official(key):
    """Renames one timm RepViT key to the THU-MIG/RepViT name."""
    feats = features_list()
    if key.startswith("stem.conv1."):
        return "features.0.0." + key[len("stem.conv1."):]
    if key.startswith("stem.conv2."):
        return "features.0.2." + key[len("stem.conv2."):]
    if key.startswith("head.head."):
        return "classifier.classifier." + key[len("head.head."):]
    if key.startswith("head.head_dist."):
        return "classifier.classifier_dist." + key[len("head.head_dist."):]
    p = key.split(".")
    assert p[0] == "stages", key
    stage = int(p[1])
    if p[2] == "blocks":
        n, rest, renames = feats.index((stage, int(p[3]))), ".".join(p[4:]), BLOCK_RENAMES
    elif p[3] == "pre_block":
        n, rest, renames = feats.index((stage, "pre_block")), ".".join(p[4:]), BLOCK_RENAMES
    else:
        n, rest, renames = feats.index((stage, "down")), ".".join(p[3:]), DOWN_RENAMES
    for a, b in renames:
        if rest.startswith(a):
            return "features.%d.%s" % (n, b + rest[len(a):])
    raise KeyError(key)


# ---- the official layout, written after THU-MIG/RepViT's structure ----------

class Conv2dBN(nn.Sequential):
    def __init__(self, a, b, ks=1, stride=1, pad=0, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))


class Residual(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return x + self.m(x)


class RepVGGDW(nn.Module):
    def __init__(self, ed):
        super().__init__()
        self.conv = Conv2dBN(ed, ed, 3, 1, 1, groups=ed)
        self.conv1 = nn.Conv2d(ed, ed, 1, 1, 0, groups=ed)
        self.bn = nn.BatchNorm2d(ed)

    def forward(self, x):
        return self.bn((self.conv(x) + self.conv1(x)) + x)


class OfficialBlock(nn.Module):
    def __init__(self, inp, oup, stride, use_se):
        super().__init__()
        hidden = 2 * inp
        if stride == 2:
            self.token_mixer = nn.Sequential(
                Conv2dBN(inp, inp, 3, 2, 1, groups=inp),
                SqueezeExcite(inp, 0.25) if use_se else nn.Identity(),
                Conv2dBN(inp, oup, 1, 1, 0))
            self.channel_mixer = Residual(nn.Sequential(
                Conv2dBN(oup, 2 * oup, 1, 1, 0), nn.GELU(), Conv2dBN(2 * oup, oup, 1, 1, 0)))
        else:
            self.token_mixer = nn.Sequential(
                RepVGGDW(inp), SqueezeExcite(inp, 0.25) if use_se else nn.Identity())
            self.channel_mixer = Residual(nn.Sequential(
                Conv2dBN(inp, hidden, 1, 1, 0), nn.GELU(), Conv2dBN(hidden, oup, 1, 1, 0)))

    def forward(self, x):
        return self.channel_mixer(self.token_mixer(x))


class BNLinear(nn.Sequential):
    def __init__(self, a, b):
        super().__init__()
        self.add_module("bn", nn.BatchNorm1d(a))
        self.add_module("l", nn.Linear(a, b))


class Classfier(nn.Module):
    def __init__(self, dim, num_classes):
        super().__init__()
        self.classifier = BNLinear(dim, num_classes)
        self.classifier_dist = BNLinear(dim, num_classes)


class OfficialRepVit(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        d0 = DIMS[0]
        layers = [nn.Sequential(Conv2dBN(3, d0 // 2, 3, 2, 1), nn.GELU(), Conv2dBN(d0 // 2, d0, 3, 2, 1))]
        c_in = d0
        for stage, role in features_list()[1:]:
            dim = DIMS[stage]
            if role == "pre_block":
                layers.append(OfficialBlock(c_in, c_in, 1, False))
                continue
            if role == "down":
                layers.append(OfficialBlock(c_in, dim, 2, False))
            else:
                layers.append(OfficialBlock(dim, dim, 1, role % 2 == 0))
            c_in = dim
        self.features = nn.ModuleList(layers)
        self.classifier = Classfier(c_in, num_classes)

    def forward_features(self, x):
        for f in self.features:
            x = f(x)
        return x


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)
    ref = timm.create_model("repvit_m0_9", pretrained=False, num_classes=3, embed_dim=DIMS, depth=DEPTHS)
    ref.eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.copy_(1.0 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn_like(m.bias))

    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        feats = ref.forward_features(x)
        emb = ref.forward_head(feats, pre_logits=True)
        fused = copy.deepcopy(ref)
        fused.fuse()
        feats_fused = fused.forward_features(x)
    assert (emb - feats.mean((2, 3))).abs().max().item() <= 1e-6 * emb.abs().max().item()
    fused_err = (feats - feats_fused).abs().max().item() / feats.abs().max().item()
    assert fused_err <= 1e-5, fused_err
    print("timm fuse() vs training form: rel. max error %.3g" % fused_err)

    full_sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    official_full = {timm_to_official(k): v for k, v in full_sd.items()}
    official = OfficialRepVit(3).eval()
    official.load_state_dict(official_full, strict=True)
    with torch.no_grad():
        off_err = (official.forward_features(x) - feats).abs().max().item()
    assert off_err == 0.0, off_err
    print("official-layout module with renamed weights equals timm (%d keys)" % len(official_full))

    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))

    backbone = {k: v for k, v in official_full.items() if not k.startswith("classifier.")}
    g = torch.Generator().manual_seed(1)
    teacher = {"module.backbone." + k: v for k, v in backbone.items()}
    teacher["module.head.mlp.0.weight"] = torch.randn(4, DIMS[-1], generator=g)
    teacher["module.head.mlp.0.bias"] = torch.zeros(4)
    teacher["module.head.last_layer.weight_g"] = torch.ones(5, 1)
    teacher["module.head.last_layer.weight_v"] = torch.randn(5, 4, generator=g)
    torch.save({"teacher": teacher, "epoch": 3}, os.path.join(OUT, "official_cion.pth"), _use_new_zipfile_serialization=False)
    bare = {k: v for k, v in official_full.items() if not k.endswith("num_batches_tracked")}
    torch.save(bare, os.path.join(OUT, "official.pth"), _use_new_zipfile_serialization=False)
    safetensors.torch.save_file(full_sd, os.path.join(OUT, "timm.safetensors"))

    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "embed_dims": list(DIMS),
        "depths": list(DEPTHS),
        "mlp_ratio": 2,
        "kernel_size": 3,
        "input": "input.npy",
        "features": "features.npy",
        "embedding": "embedding.npy",
        "official_cion": "official_cion.pth",
        "official": "official.pth",
        "timm": "timm.safetensors",
        "timm_fused_rel_error": fused_err,
        "num_params_backbone": sum(
            p.numel() for k, p in ref.named_parameters() if not k.startswith("head.")),
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))
    for name in ("repvit_m0_9", "repvit_m1_0", "repvit_m1_5"):
        full = timm.create_model(name, pretrained=False, num_classes=0)
        print(name, "params without heads:", sum(p.numel() for p in full.parameters()))


if __name__ == "__main__":
    main()
