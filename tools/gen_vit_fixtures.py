#!/usr/bin/env python3
"""Writes the parity fixtures of the ICS ViT (`reid_backbones::vit`) into
crates/reid-backbones/tests/fixtures/backbones/vit/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_vit_fixtures.py

The reference is our own small PyTorch module: the "ICS" patch embedding of
TransReID-SSL / CION written here (7x7/s2 conv -> IBN -> ReLU -> 3x3 conv ->
IBN -> ReLU -> 3x3 conv -> BN -> ReLU, then a (patch/2)x(patch/2) projection
with stride patch/2; IBN = InstanceNorm2d(int(c/2), affine) on the first
channels + BatchNorm2d on the rest), a CLS token, a position embedding, and
`timm.models.vision_transformer.Block` (qkv bias, MLP ratio 4, LayerNorm eps
1e-6) for the transformer blocks, then a final LayerNorm. The output is the
CLS token after the final norm; the feature map is the normed patch tokens
reshaped to [B, D, h, w].

Reduced size (same code paths as ViT-T/S/B): depth 2, dim 16, 2 heads, stem
width 5 (so IBN splits 2 / 3), total patch 16 (stem stride 2, projection
8x8/8), position embedding laid out for 64x32 images (4x2 patches).

Position-embedding resizing for other inputs, as upstream
(`interpolate_pos_encoding` of DINO / TransReID-SSL / CION): the patch part is
resized with `F.interpolate(scale_factor=((H//16 + 0.1)/OH, (W//16 + 0.1)/OW),
mode="bicubic")` whenever the image size differs from 64x32 ("dino"); the
alternative "size" mode is `F.interpolate(size=(h, w), mode="bicubic",
align_corners=False)`, skipped when the grid matches.

Inputs are not stored: element n (row-major) of an input of shape S is
`float32(1.5 sin(0.731 n + 0.3) + 0.2 cos(0.1137 n))`, computed in float64;
the Rust test computes the same values.

Files:
* `vit.pth`: bare state dict (`torch.save(model.state_dict())`).
* `vit_cion.pth`: a CION pre-training checkpoint {student, teacher,
  optimizer, epoch, args (argparse.Namespace), Loss, fp16_scaler}, the teacher
  a DDP-wrapped MultiCropWrapper: `module.backbone.<key>` and a small DINO
  head `module.head.{mlp.0, last_layer.weight_g, last_layer.weight_v}`.
* `vit_transreid.pth`: a CION/TransReID fine-tuned model: `base.<key>`,
  `bottleneck.*` (BatchNorm1d), `classifier.weight`.
* `vit_timm.safetensors`: the bare state dict without num_batches_tracked,
  plus a timm classifier `head.{weight,bias}` (5 classes).
* `<case>.embedding.npy` `[B, 16]` and `<case>.features.npy` `[B, 16, h, w]`
  for the cases of `CASES` (input shape, interpolation mode).
* `pos_<from>_<to>_<mode>.npy`: the resized patch position embedding
  `[h*w, 16]` alone.
* `pos_bilinear_4x2_<h>x<w>.npy`: the patch position embedding resized
  bilinearly (`F.interpolate(size=(h, w), mode="bilinear")`), as the CION /
  TransReID fine-tuning code does when loading a checkpoint into a model for
  another image size; `resized_96x48.{embedding,features}.npy`: the outputs
  of such a model (built for 96x48, pos_embed resized from the 64x32
  weights) on the 96x48 input.
* `manifest.json`: versions, configuration, cases, full-size parameter counts.
"""

import argparse
import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import safetensors.torch
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Block

OUT = Path(__file__).resolve().parent.parent / "crates" / "reid-backbones" / "tests" / "fixtures" / "backbones" / "vit"

DIM, DEPTH, HEADS, HIDDEN, PATCH, IMG = 16, 2, 2, 5, 16, (64, 32)

CASES = {
    # name: (input shape, pos-embed mode)
    "main": ((2, 3, 64, 32), "dino"),
    "small": ((2, 3, 32, 16), "dino"),
    "large": ((1, 3, 96, 48), "dino"),
    "large_size": ((1, 3, 96, 48), "size"),
    # Same 4x2 grid, other image size: upstream still resizes (scale 4.1/4).
    "same_grid": ((1, 3, 72, 40), "dino"),
    "same_grid_size": ((1, 3, 72, 40), "size"),
}


class IBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.half = int(c / 2)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(c - self.half)

    def forward(self, x):
        a, b = x[:, : self.half], x[:, self.half :]
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], 1)


class IcsPatchEmbed(nn.Module):
    def __init__(self, hidden, dim, patch):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, hidden, 7, 2, 3, bias=False),
            IBN(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False),
            IBN(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
        )
        self.proj = nn.Conv2d(hidden, dim, patch // 2, patch // 2)

    def forward(self, x):
        return self.proj(self.conv(x))


class IcsViT(nn.Module):
    def __init__(self, dim=DIM, depth=DEPTH, heads=HEADS, hidden=HIDDEN, patch=PATCH, img=IMG, mode="dino"):
        super().__init__()
        self.patch, self.img, self.mode = patch, img, mode
        self.grid = (img[0] // patch, img[1] // patch)
        self.patch_embed = IcsPatchEmbed(hidden, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm) for _ in range(depth)]
        )
        self.norm = norm(dim)

    def resized_patch_pos(self, H, W, gh, gw):
        oh, ow = self.grid
        d = self.pos_embed.shape[-1]
        grid = self.pos_embed[:, 1:].reshape(1, oh, ow, d).permute(0, 3, 1, 2)
        if self.mode == "dino":
            h0, w0 = H // self.patch + 0.1, W // self.patch + 0.1
            out = F.interpolate(grid, scale_factor=(h0 / oh, w0 / ow), mode="bicubic")
        else:
            out = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        assert out.shape[-2:] == (gh, gw), (out.shape, gh, gw)
        return out.permute(0, 2, 3, 1).reshape(gh * gw, d)

    def pos_for(self, H, W, gh, gw):
        same = (H, W) == self.img if self.mode == "dino" else (gh, gw) == self.grid
        if same and (gh, gw) == self.grid:
            return self.pos_embed
        patch = self.resized_patch_pos(H, W, gh, gw)
        return torch.cat([self.pos_embed[:, :1], patch[None]], 1)

    def forward(self, x):
        B, _, H, W = x.shape
        p = self.patch_embed(x)
        gh, gw = p.shape[-2:]
        t = p.flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(B, -1, -1), t], 1) + self.pos_for(H, W, gh, gw)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        feat = t[:, 1:].transpose(1, 2).reshape(B, -1, gh, gw)
        return t[:, 0], feat


def formula_input(shape):
    n = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (1.5 * np.sin(0.731 * n + 0.3) + 0.2 * np.cos(0.1137 * n)).astype(np.float32).reshape(shape)


def randomize(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("pos_embed") or name.endswith("cls_token"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif p.ndim == 1 and ("norm" in name or ".IN." in name or ".BN." in name or "conv.7" in name):
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.3 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                b.fill_(7)


def full_size_counts():
    """Parameter counts of the full presets, with and without the upstream
    1000-class `fc` (which the ReIDZoo table includes)."""
    out = {}
    for name, (d, h) in {"vit_tiny": (192, 3), "vit_small": (384, 6), "vit_base": (768, 12)}.items():
        m = IcsViT(dim=d, depth=12, heads=h, hidden=64, patch=16, img=(256, 128))
        n = sum(p.numel() for p in m.parameters())
        out[name] = {"trunk": n, "with_fc1000": n + d * 1000 + 1000}
    return out


def main():
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    model = IcsViT()
    randomize(model, g)
    model.eval()
    sd = model.state_dict()
    expected_keys = {
        "cls_token", "pos_embed", "patch_embed.conv.0.weight", "patch_embed.conv.1.IN.weight",
        "patch_embed.conv.4.BN.running_var", "patch_embed.conv.7.weight", "patch_embed.proj.bias",
        "blocks.1.attn.qkv.bias", "blocks.0.mlp.fc2.weight", "norm.bias",
    }
    assert expected_keys <= set(sd), sorted(set(expected_keys) - set(sd))
    torch.save(sd, OUT / "vit.pth")

    # CION pre-training checkpoint.
    head = {
        "module.head.mlp.0.weight": torch.randn(8, DIM, generator=g),
        "module.head.mlp.0.bias": torch.zeros(8),
        "module.head.last_layer.weight_g": torch.ones(6, 1),
        "module.head.last_layer.weight_v": torch.randn(6, 8, generator=g),
    }
    teacher = {f"module.backbone.{k}": v for k, v in sd.items()}
    teacher.update(head)
    student = {"module.backbone.cls_token": sd["cls_token"].clone(), **{k: v.clone() for k, v in head.items()}}
    ckpt = {
        "student": student,
        "teacher": teacher,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "epoch": 3,
        "args": argparse.Namespace(arch="vit_small", out_dim=6),
        "Loss": {"center": torch.zeros(1, 6)},
        "fp16_scaler": {"scale": 1024.0},
    }
    torch.save(ckpt, OUT / "vit_cion.pth")

    # TransReID fine-tuned model.
    tr = {f"base.{k}": v for k, v in sd.items()}
    bn = nn.BatchNorm1d(DIM)
    tr.update({f"bottleneck.{k}": v for k, v in bn.state_dict().items()})
    tr["classifier.weight"] = torch.randn(4, DIM, generator=g) * 0.001
    torch.save(tr, OUT / "vit_transreid.pth")

    # timm-style bare dict in safetensors, with a classifier head.
    st = {k: v.contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    st["head.weight"] = torch.randn(5, DIM, generator=g)
    st["head.bias"] = torch.zeros(5)
    safetensors.torch.save_file(st, str(OUT / "vit_timm.safetensors"))

    cases = {}
    with torch.no_grad():
        for name, (shape, mode) in CASES.items():
            model.mode = mode
            x = torch.from_numpy(formula_input(shape))
            emb, feat = model(x)
            np.save(OUT / f"{name}.embedding.npy", emb.numpy().astype(np.float32))
            np.save(OUT / f"{name}.features.npy", feat.numpy().astype(np.float32))
            cases[name] = {"input_shape": list(shape), "mode": mode,
                           "embedding": f"{name}.embedding.npy", "features": f"{name}.features.npy"}
        pos = {}
        for (H, W), mode in [((96, 48), "dino"), ((96, 48), "size"), ((32, 16), "dino"), ((32, 16), "size")]:
            model.mode = mode
            gh, gw = H // PATCH, W // PATCH
            r = model.resized_patch_pos(H, W, gh, gw)
            fname = f"pos_4x2_{gh}x{gw}_{mode}.npy"
            np.save(OUT / fname, r.numpy().astype(np.float32))
            pos[fname] = {"image": [H, W], "grid": [gh, gw], "mode": mode}
    model.mode = "dino"

    bilinear = {}
    with torch.no_grad():
        d = DIM
        grid = model.pos_embed[:, 1:].reshape(1, 4, 2, d).permute(0, 3, 1, 2)
        for gh, gw in [(6, 2), (6, 3)]:
            r = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
            r = r.permute(0, 2, 3, 1).reshape(gh * gw, d)
            fname = f"pos_bilinear_4x2_{gh}x{gw}.npy"
            np.save(OUT / fname, r.numpy().astype(np.float32))
            bilinear[fname] = [gh, gw]
            if (gh, gw) == (6, 3):
                big = IcsViT(img=(96, 48))
                sd2 = dict(sd)
                sd2["pos_embed"] = torch.cat([model.pos_embed[:, :1], r[None]], 1)
                big.load_state_dict(sd2)
                big.eval()
                emb, feat = big(torch.from_numpy(formula_input((1, 3, 96, 48))))
                np.save(OUT / "resized_96x48.embedding.npy", emb.numpy().astype(np.float32))
                np.save(OUT / "resized_96x48.features.npy", feat.numpy().astype(np.float32))

    manifest = {
        "generator": "tools/gen_vit_fixtures.py",
        "versions": {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__},
        "config": {"embed_dim": DIM, "depth": DEPTH, "num_heads": HEADS, "stem_hidden": HIDDEN,
                   "patch_size": PATCH, "img_size": list(IMG), "mlp_ratio": 4.0, "ln_eps": 1e-6},
        "input_formula": "float32(1.5*sin(0.731*n + 0.3) + 0.2*cos(0.1137*n)), n = row-major index",
        "weights": {"vit.pth": "bare", "vit_cion.pth": "cion", "vit_transreid.pth": "transreid",
                    "vit_timm.safetensors": "bare+timm head"},
        "cases": cases,
        "pos_embed": pos,
        "pos_bilinear": bilinear,
        "resized_model": {"img_size": [96, 48], "input_shape": [1, 3, 96, 48],
                          "embedding": "resized_96x48.embedding.npy",
                          "features": "resized_96x48.features.npy"},
        "full_size_params": full_size_counts(),
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(json.dumps(manifest["full_size_params"]))


if __name__ == "__main__":
    main()
