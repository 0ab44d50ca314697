#!/usr/bin/env python3
"""Writes the ConvNeXt parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/convnext/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_convnext_fixtures.py

Reference: timm's `ConvNeXt` (timm 1.0.x, `timm.models.convnext.ConvNeXt`) at a
reduced size (depths [1, 1, 2, 1], dims [8, 12, 16, 20]), plus a small PyTorch
ConvNeXt written here in the official facebookresearch parameter layout
(`downsample_layers.i.{0,1}`, `stages.i.j.{dwconv, norm, pwconv1, pwconv2,
gamma}`, `norm`), which must compute the same function once the timm state dict
is renamed to the official names (checked below: this proves the renaming).

Weights are random with non-trivial statistics: PyTorch default init for the
convolutions and linears (`_init_weights` is never applied in CION's copy),
LayerNorm weights 1 + 0.2 N(0,1) and biases 0.1 N(0,1), layer-scale gamma
0.5 + 0.3 N(0,1) (instead of 1e-6, which would hide every block).

Files (all tensors seeded; zip-format .pth and safetensors are byte-stable):

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `features.npy`: the feature map after the last stage `[2, 20, 2, 1]` (eval).
* `embedding.npy`: the CION feature LayerNorm(GAP) `[2, 20]` (eps 1e-6), equal
  to timm's `forward_head(pre_logits=True)`.
* `official_cion.pth`: a CION pre-training checkpoint reduced to what the
  importer reads: `{"teacher": {"backbone.<official key>": ...,
  "head.mlp.0.weight": ..., "head.last_layer.weight_v": ...}, "epoch": 3}`
  (BN-free models are not DDP-wrapped, so the prefix is `backbone.`).
* `official_bare.safetensors`: the same backbone weights as a bare official
  state dict plus an ImageNet classifier `head.{weight,bias}` (unexpected for a
  backbone unless allowed).
* `timm.safetensors`: the timm state dict (`stem.*`, `stages.i.downsample.*`,
  `stages.i.blocks.j.*`, `head.norm.*`) of the same weights.
* `manifest.json`: versions, configuration, file names.
"""

import json
import os
import sys

import numpy as np
import safetensors
import safetensors.torch
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "convnext")

DEPTHS = [1, 1, 2, 1]
DIMS = [8, 12, 16, 20]
EPS = 1e-6


def timm_to_official(key):
    """Renames one timm ConvNeXt key to the official facebookresearch name."""
    parts = key.split(".")
    if parts[0] == "stem":
        # stem.0 = conv, stem.1 = norm  ->  downsample_layers.0.{0,1}
        return "downsample_layers.0." + ".".join(parts[1:])
    if parts[0] == "head" and parts[1] == "norm":
        return "norm." + ".".join(parts[2:])
    if parts[0] == "stages":
        i = parts[1]
        if parts[2] == "downsample":
            # downsample.0 = norm, downsample.1 = conv (same order officially)
            return "downsample_layers.%s.%s" % (i, ".".join(parts[3:]))
        if parts[2] == "blocks":
            j = parts[3]
            rest = ".".join(parts[4:])
            for old, new in (("conv_dw.", "dwconv."), ("mlp.fc1.", "pwconv1."), ("mlp.fc2.", "pwconv2.")):
                if rest.startswith(old):
                    rest = new + rest[len(old):]
            return "stages.%s.%s.%s" % (i, j, rest)
    raise KeyError(key)


class ChannelsFirstNorm(nn.Module):
    """LayerNorm over the channel axis of [b, c, h, w], written out."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + EPS)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=EPS)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(1e-6 * torch.ones(c))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class OfficialConvNeXt(nn.Module):
    """ConvNeXt in the official parameter layout, without the classifier."""

    def __init__(self, depths, dims):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), ChannelsFirstNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)) for i in range(1, 4)]
        )
        self.stages = nn.ModuleList([nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4)])
        self.norm = nn.LayerNorm(dims[-1], eps=EPS)

    def features(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return x

    def embedding(self, x):
        return self.norm(self.features(x).mean((2, 3)))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)
    ref = timm.create_model("convnext_tiny", pretrained=False, num_classes=0, depths=DEPTHS, dims=DIMS).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            leaf = name.split(".")[-1]
            is_norm = ".norm." in "." + name or "stem.1." in name or "downsample.0." in name
            if leaf == "gamma":
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            elif is_norm and leaf == "weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif is_norm and leaf == "bias":
                p.copy_(0.1 * torch.randn_like(p))
            elif leaf == "bias":
                p.copy_(0.1 * torch.randn_like(p))
    timm_sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    official_sd = {timm_to_official(k): v for k, v in timm_sd.items()}

    ours = OfficialConvNeXt(DEPTHS, DIMS).eval()
    ours.load_state_dict(official_sd, strict=True)

    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        feats = ref.forward_features(x)
        emb = ref.forward_head(feats, pre_logits=True)
        emb_formula = F.layer_norm(feats.mean((2, 3)), (DIMS[-1],), ref.head.norm.weight, ref.head.norm.bias, EPS)
        f2 = ours.features(x)
        e2 = ours.embedding(x)
    for a, b, what in ((feats, f2, "features"), (emb, e2, "embedding"), (emb, emb_formula, "formula")):
        err = (a - b).abs().max().item()
        assert err <= 1e-5 * a.abs().max().item(), (what, err)
    print("timm vs official re-implementation: max abs diff features %.3g, embedding %.3g"
          % ((feats - f2).abs().max().item(), (emb - e2).abs().max().item()))

    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))

    g = torch.Generator().manual_seed(1)
    teacher = {"backbone." + k: v for k, v in official_sd.items()}
    teacher["head.mlp.0.weight"] = torch.randn(4, DIMS[-1], generator=g)
    teacher["head.mlp.0.bias"] = torch.zeros(4)
    teacher["head.last_layer.weight_g"] = torch.ones(5, 1)
    teacher["head.last_layer.weight_v"] = torch.randn(5, 4, generator=g)
    torch.save({"teacher": teacher, "epoch": 3}, os.path.join(OUT, "official_cion.pth"))

    bare = dict(official_sd)
    bare["head.weight"] = torch.randn(3, DIMS[-1], generator=g)
    bare["head.bias"] = torch.zeros(3)
    safetensors.torch.save_file(bare, os.path.join(OUT, "official_bare.safetensors"))
    safetensors.torch.save_file(timm_sd, os.path.join(OUT, "timm.safetensors"))

    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "depths": DEPTHS,
        "dims": DIMS,
        "layer_norm_eps": EPS,
        "input": "input.npy",
        "features": "features.npy",
        "embedding": "embedding.npy",
        "official_cion": "official_cion.pth",
        "official_bare": "official_bare.safetensors",
        "timm": "timm.safetensors",
        "num_params_backbone_with_final_norm": sum(v.numel() for v in timm_sd.values()),
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


if __name__ == "__main__":
    main()
