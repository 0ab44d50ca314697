#!/usr/bin/env python3
"""Writes the EdgeNeXt parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/edgenext/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_edgenext_fixtures.py

Reference: timm's `EdgeNeXt` (timm 1.0.x, `timm.models.edgenext.EdgeNeXt`) at a
reduced size (depths [1, 2, 1, 1], dims [8, 12, 16, 16], heads [2, 2, 4, 4];
the official defaults kernel sizes [3, 5, 7, 9], d2_scales [2, 2, 3, 4], one
SDTA block at the end of stages 2-4, positional encoding in stage 2), plus a
small PyTorch EdgeNeXt written here in the official mmaaz60 parameter layout
(`downsample_layers.i.{0,1}`, `stages.i.j.{dwconv, norm, pwconv1, pwconv2,
gamma}` for conv encoders, `stages.i.j.{convs.m, pos_embd.token_projection,
norm_xca, gamma_xca, xca.{temperature, qkv, proj}, norm, pwconv1, pwconv2,
gamma}` for SDTA encoders, `norm`), following the official forward (split by
width, `XCA` with transposes) and loaded strictly from the renamed timm dict:
equal outputs prove the renaming. Stage 3 has 16 channels in 3 groups of 6, 6, 4, so
the uneven split is covered; the positional encoding runs on a non-square
8x4 grid.

Weights are random with non-trivial statistics: PyTorch default init for the
convolutions and linears (`_init_weights` is never applied in CION's copy),
LayerNorm weights 1 + 0.2 N(0,1) and biases 0.1 N(0,1), layer scales
0.5 + 0.3 N(0,1) (instead of 1e-6, which would hide every block), XCA
temperatures U(0.5, 1.5), other biases 0.1 N(0,1).

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `features.npy`: the map after the last stage `[2, 16, 2, 1]` (eval).
* `embedding.npy`: LayerNorm(GAP) `[2, 16]` = timm's
  `forward_head(pre_logits=True)`.
* `official_cion.pth`: `{"teacher": {"backbone.<official key>": ...,
  "head.mlp.0.weight": ..., "head.last_layer.weight_v": ...}, "epoch": 3}`.
* `official_bare.safetensors`: bare official dict plus `head.{weight,bias}`.
* `timm.safetensors`: the timm state dict (with `head.norm.*`).
* `manifest.json`: versions, configuration, file names.
"""

import json
import math
import os
import re
import sys

import numpy as np
import safetensors
import safetensors.torch
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "edgenext")

DEPTHS = [1, 2, 1, 1]
DIMS = [8, 12, 16, 16]
HEADS = [2, 2, 4, 4]
GLOBAL = [0, 1, 1, 1]
KERNELS = [3, 5, 7, 9]
SCALES = [2, 2, 3, 4]
POS = [False, True, False, False]
EPS = 1e-6


def timm_to_official(key):
    """Renames one timm EdgeNeXt key to the official mmaaz60 name (the inverse
    of timm's `checkpoint_filter_fn`)."""
    if key.startswith("stem."):
        return "downsample_layers.0." + key[len("stem."):]
    if key.startswith("head.norm."):
        return "norm." + key[len("head.norm."):]
    m = re.match(r"stages\.(\d+)\.downsample\.(.*)", key)
    if m:
        return "downsample_layers.%s.%s" % m.groups()
    m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)", key)
    if m:
        i, j, rest = m.groups()
        for old, new in (("conv_dw.", "dwconv."), ("mlp.fc1.", "pwconv1."), ("mlp.fc2.", "pwconv2.")):
            if rest.startswith(old):
                rest = new + rest[len(old):]
        return "stages.%s.%s.%s" % (i, j, rest)
    raise KeyError(key)


class ChannelsFirstNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + EPS)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvEncoder(nn.Module):
    def __init__(self, dim, k):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class Fourier(nn.Module):
    """Official `PositionalEncodingFourier(B, H, W)`."""

    def __init__(self, dim, hidden=32, temperature=10000):
        super().__init__()
        self.token_projection = nn.Conv2d(hidden * 2, dim, 1)
        self.hidden, self.temperature = hidden, temperature

    def forward(self, B, H, W):
        not_mask = ~torch.zeros(B, H, W, dtype=torch.bool)
        y = not_mask.cumsum(1, dtype=torch.float32)
        x = not_mask.cumsum(2, dtype=torch.float32)
        y = y / (y[:, -1:, :] + 1e-6) * 2 * math.pi
        x = x / (x[:, :, -1:] + 1e-6) * 2 * math.pi
        t = torch.arange(self.hidden, dtype=torch.float32)
        t = self.temperature ** (2 * (t // 2) / self.hidden)
        px, py = x[..., None] / t, y[..., None] / t
        px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
        py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
        return self.token_projection(torch.cat((py, px), dim=3).permute(0, 3, 1, 2))


class XCA(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0].transpose(-2, -1), qkv[1].transpose(-2, -1), qkv[2].transpose(-2, -1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.proj((attn @ v).permute(0, 3, 1, 2).reshape(B, N, C))


class SDTAEncoder(nn.Module):
    def __init__(self, dim, scales, heads, pos):
        super().__init__()
        self.width = max(int(math.ceil(dim / scales)), int(math.floor(dim // scales)))
        self.nums = 1 if scales == 1 else scales - 1
        self.convs = nn.ModuleList([nn.Conv2d(self.width, self.width, 3, padding=1, groups=self.width) for _ in range(self.nums)])
        self.pos_embd = Fourier(dim) if pos else None
        self.norm_xca = nn.LayerNorm(dim, eps=EPS)
        self.gamma_xca = nn.Parameter(1e-6 * torch.ones(dim))
        self.xca = XCA(dim, heads)
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        inp = x
        spx = x.split(self.width, 1)
        for i in range(self.nums):
            sp = spx[i] if i == 0 else sp + spx[i]
            sp = self.convs[i](sp)
            out = sp if i == 0 else torch.cat((out, sp), 1)
        x = torch.cat((out, spx[self.nums]), 1)
        B, C, H, W = x.shape
        x = x.reshape(B, C, H * W).permute(0, 2, 1)
        if self.pos_embd is not None:
            x = x + self.pos_embd(B, H, W).reshape(B, -1, x.shape[1]).permute(0, 2, 1)
        x = x + self.gamma_xca * self.xca(self.norm_xca(x))
        x = x.reshape(B, H, W, C)
        x = self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(x))))
        return inp + x.permute(0, 3, 1, 2)


class OfficialEdgeNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, DIMS[0], 4, stride=4), ChannelsFirstNorm(DIMS[0]))]
            + [nn.Sequential(ChannelsFirstNorm(DIMS[i - 1]), nn.Conv2d(DIMS[i - 1], DIMS[i], 2, stride=2)) for i in range(1, 4)]
        )
        stages = []
        for i in range(4):
            blocks = []
            for j in range(DEPTHS[i]):
                if j > DEPTHS[i] - GLOBAL[i] - 1:
                    blocks.append(SDTAEncoder(DIMS[i], SCALES[i], HEADS[i], POS[i]))
                else:
                    blocks.append(ConvEncoder(DIMS[i], KERNELS[i]))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(DIMS[-1], eps=EPS)

    def features(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return x

    def embedding(self, x):
        return self.norm(self.features(x).mean([-2, -1]))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)
    ref = timm.create_model("edgenext_small", pretrained=False, num_classes=0, depths=DEPTHS, dims=DIMS, heads=HEADS).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            leaf = name.split(".")[-1]
            is_norm = bool(re.search(r"(^|\.)(norm|norm_xca)\.", name)) or name.startswith("stem.1.") or ".downsample.0." in name
            if leaf in ("gamma", "gamma_xca"):
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            elif leaf == "temperature":
                p.copy_(0.5 + torch.rand_like(p))
            elif is_norm and leaf == "weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif leaf == "bias":
                p.copy_(0.1 * torch.randn_like(p))
    timm_sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    official_sd = {timm_to_official(k): v for k, v in timm_sd.items()}

    ours = OfficialEdgeNeXt().eval()
    ours.load_state_dict(official_sd, strict=True)

    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        feats = ref.forward_features(x)
        emb = ref.forward_head(feats, pre_logits=True)
        f2 = ours.features(x)
        e2 = ours.embedding(x)
    for a, b, what in ((feats, f2, "features"), (emb, e2, "embedding")):
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
        "heads": HEADS,
        "global_blocks": GLOBAL,
        "kernel_sizes": KERNELS,
        "d2_scales": SCALES,
        "pos_embd": POS,
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
