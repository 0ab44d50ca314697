#!/usr/bin/env python3
"""Writes the Swin parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/swin/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_swin_fixtures.py

The reference below is our own straightforward PyTorch re-implementation of
the *detection-style* Swin Transformer backbone (the one CION's ReIDZoo
checkpoints were trained with): patch embedding with right/bottom zero
padding of the image to a multiple of the patch size; per block LayerNorm,
zero padding of the token map (after `norm1`) to a multiple of the window
size, cyclic shift of every second block by `window // 2`, window attention
with a relative position bias and, in shifted blocks only, the region mask
(-100) computed on the padded grid; patch merging that zero-pads odd maps;
`norm3` on the last stage; global average pooling for the embedding.

Quirk reproduced: padded tokens are zeros after `norm1`, so their keys and
values are the qkv biases; the non-shifted windows do not mask them, and the
shifted windows only separate the shift regions of the padded grid, so real
tokens attend to padded ones in both.

Self-check against timm (`check_against_timm`): where the two coincide (every
stage's map larger than and divisible by the window, so timm neither clamps
the window, disables the shift, nor pads) the reference, loaded into timm's
`SwinTransformer` through the official→timm key mapping, gives the same final
normalised feature map (max abs difference printed; asserted < 1e-5).

What it writes (fixture models, mlp ratio 4, patch 4: `mini` embed dim 3,
depths (2,2,2,2), heads (1,2,2,4), window 4; `tiny8` embed dim 2, depths
(2,2,2,2), heads (1,1,1,2), window 8; `tiny4` embed dim 2, depths (1,1,1,1),
heads (1,1,1,1), window 4):

* `input.npy` `[2,3,64,32]` (stage maps 16x8, 8x4, 4x2, 2x1: with window 4,
  padding at the two deeper stages; with window 8, at every stage) and
  `input_odd.npy` `[1,3,54,22]` (patch-embed padding to 56x24, maps 14x6,
  7x3, 4x2, 2x1: padding at every stage and an odd patch merge), standard
  normal.
* `<model>.features.npy` (`[B, 8*embed, 2, 1]`, after `norm3`) and
  `<model>.embedding.npy` (`[B, 8*embed]`, its spatial mean) on `input.npy`;
  `mini_odd.*.npy` on `input_odd.npy`.
* `mini.pth`: the official-layout state dict of `mini` (bare, as
  `torch.save(model.state_dict())` writes it, legacy pickle container to keep
  it small), with the `relative_position_index` buffers.
* `tiny8_timm.safetensors`: `tiny8` in timm's names (downsample at the start
  of stages 1..3, `norm.*` for `norm3.*`, no `relative_position_index`), plus
  a classifier `head.fc.{weight,bias}` (unexpected unless allowed).
* `tiny4_cion.pth`: `tiny4` as a CION pre-training checkpoint `{student,
  teacher, optimizer, epoch, args, Loss, fp16_scaler}` whose `teacher` holds
  `backbone.<official key>` (BN-free model: no `module.`) and the DINO head
  `head.mlp.{0,2,4}`, `head.last_layer.weight_{g,v}`.
* `manifest.json`: package versions and the model configurations.
"""

import argparse
import json
import os
import platform
from argparse import Namespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "swin")


# ---------------------------------------------------------------- reference

def relative_index(ws):
    """[ws*ws, ws*ws] index into the (2ws-1)^2 bias table, row = query."""
    n = ws * ws
    idx = torch.zeros(n, n, dtype=torch.long)
    for i in range(n):
        hi, wi = divmod(i, ws)
        for j in range(n):
            hj, wj = divmod(j, ws)
            idx[i, j] = (hi - hj + ws - 1) * (2 * ws - 1) + (wi - wj + ws - 1)
    return idx


def region_mask(hp, wp, ws, shift):
    """[nW, N, N] additive mask (0 / -100) of the shifted windows."""
    def region(i, p):
        if i < p - ws:
            return 0
        if i < p - shift:
            return 1
        return 2

    label = torch.zeros(hp, wp)
    for y in range(hp):
        for x in range(wp):
            label[y, x] = 3 * region(y, hp) + region(x, wp)
    win = to_windows(label[None, :, :, None], ws).squeeze(-1)  # nW, N
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def to_windows(x, ws):
    """[B,Hp,Wp,C] -> [B*nW, ws*ws, C], windows in row-major order."""
    b, hp, wp, c = x.shape
    x = x.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def from_windows(w, ws, b, hp, wp):
    c = w.shape[-1]
    x = w.reshape(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)


class Attention(nn.Module):
    def __init__(self, dim, heads, ws):
        super().__init__()
        self.heads, self.ws = heads, ws
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_index(ws))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        bw, n, c = x.shape
        hd = c // self.heads
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * hd ** -0.5, qkv[1], qkv[2]
        logits = q @ k.transpose(-2, -1)  # bw, h, n, n
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        logits = logits + bias.reshape(n, n, self.heads).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            logits = (logits.reshape(bw // nw, nw, self.heads, n, n) + mask[None, :, None]).reshape(bw, self.heads, n, n)
        out = logits.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, ws, shift, mlp_ratio):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, ws)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, h, w):
        b, _, c = x.shape
        ws = self.ws
        y = self.norm1(x).reshape(b, h, w, c)
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        y = F.pad(y, (0, 0, 0, wp - w, 0, hp - h))
        mask = None
        if self.shift > 0:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
            mask = region_mask(hp, wp, ws, self.shift)
        y = from_windows(self.attn(to_windows(y, ws), mask), ws, b, hp, wp)
        if self.shift > 0:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y[:, :h, :w, :].reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class Merge(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x, h, w):
        b, _, c = x.shape
        y = F.pad(x.reshape(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        parts = [y[:, dy::2, dx::2] for dx in (0, 1) for dy in (0, 1)]  # (0,0) (1,0) (0,1) (1,1)
        y = torch.cat(parts, -1).reshape(b, -1, 4 * c)
        return self.reduction(self.norm(y))


class Stage(nn.Module):
    def __init__(self, dim, depth, heads, ws, mlp_ratio, merge):
        super().__init__()
        self.blocks = nn.ModuleList(
            [Block(dim, heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio) for i in range(depth)]
        )
        if merge:
            self.downsample = Merge(dim)


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.LayerNorm(dim)


class SwinRef(nn.Module):
    def __init__(self, embed_dim, depths, heads, window, mlp_ratio=4.0, patch=4):
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim, patch)
        self.layers = nn.ModuleList(
            [
                Stage(embed_dim * 2 ** i, d, h, window, mlp_ratio, i < len(depths) - 1)
                for i, (d, h) in enumerate(zip(depths, heads))
            ]
        )
        self.norm3 = nn.LayerNorm(embed_dim * 2 ** (len(depths) - 1))

    def forward(self, img):
        p = self.patch_embed.patch
        hh, ww = img.shape[-2:]
        img = F.pad(img, (0, (-ww) % p, 0, (-hh) % p))
        x = self.patch_embed.proj(img)
        b, c, h, w = x.shape
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        for stage in self.layers:
            for blk in stage.blocks:
                x = blk(x, h, w)
            if hasattr(stage, "downsample"):
                out_h, out_w = h, w
                x = stage.downsample(x, h, w)
                h, w = (h + 1) // 2, (w + 1) // 2
        x = self.norm3(x)
        fmap = x.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        return fmap, fmap.mean(dim=(2, 3))


def randomize(model, gen):
    """Random weights everywhere, non-trivial norms and biases."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("relative_position_bias_table"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


# ---------------------------------------------------------------- layouts

def to_timm(sd, num_stages):
    """Official key names -> timm 1.0 names."""
    out = {}
    for k, v in sd.items():
        if k.endswith("relative_position_index"):
            continue
        parts = k.split(".")
        if parts[0] == "layers" and parts[2] == "downsample":
            parts[1] = str(int(parts[1]) + 1)
        elif parts[0] == f"norm{num_stages - 1}":
            parts[0] = "norm"
        out[".".join(parts)] = v
    return out


def check_against_timm():
    import timm
    from timm.models.swin_transformer import SwinTransformer

    gen = torch.Generator().manual_seed(7)
    cfg = dict(embed_dim=8, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), window=2)
    ref = SwinRef(**cfg).eval()
    randomize(ref, gen)
    tm = SwinTransformer(
        img_size=(128, 128), patch_size=4, embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
        window_size=2, num_classes=0, drop_path_rate=0.0,
    ).eval()
    missing, unexpected = tm.load_state_dict(to_timm(ref.state_dict(), 4), strict=False)
    assert not unexpected, unexpected
    assert all("relative_position_index" in m or "attn_mask" in m for m in missing), missing
    x = torch.randn(2, 3, 128, 128, generator=gen)
    with torch.no_grad():
        ours, _ = ref(x)
        theirs = tm.forward_features(x).permute(0, 3, 1, 2)
    err = (ours - theirs).abs().max().item()
    print(f"reference vs timm {timm.__version__} (no padding, no clamping): max abs diff {err:.3e}")
    assert err < 1e-5, err
    return err


# ---------------------------------------------------------------- main

CONFIGS = {
    "mini": dict(embed_dim=3, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), window=4),
    "tiny8": dict(embed_dim=2, depths=(2, 2, 2, 2), heads=(1, 1, 1, 2), window=8),
    "tiny4": dict(embed_dim=2, depths=(1, 1, 1, 1), heads=(1, 1, 1, 1), window=4),
}


def save_npy(name, t):
    np.save(os.path.join(OUT, name), t.detach().numpy().astype(np.float32))


def main():
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    timm_err = check_against_timm()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 64, 32, generator=gen)
    x_odd = torch.randn(1, 3, 54, 22, generator=gen)
    save_npy("input.npy", x)
    save_npy("input_odd.npy", x_odd)
    models = {}
    for name, cfg in CONFIGS.items():
        m = SwinRef(**cfg).eval()
        randomize(m, gen)
        models[name] = m
        with torch.no_grad():
            f, e = m(x)
            save_npy(f"{name}.features.npy", f)
            save_npy(f"{name}.embedding.npy", e)
            if name == "mini":
                f, e = m(x_odd)
                save_npy("mini_odd.features.npy", f)
                save_npy("mini_odd.embedding.npy", e)
    torch.save(models["mini"].state_dict(), os.path.join(OUT, "mini.pth"), _use_new_zipfile_serialization=False)

    from safetensors.torch import save_file

    # tiny8 in timm's layout, with an ImageNet-style classifier.
    sd = models["tiny8"].state_dict()
    timm_sd = {k: v.clone().contiguous() for k, v in to_timm(sd, 4).items()}
    c = models["tiny8"].norm3.weight.shape[0]
    timm_sd["head.fc.weight"] = torch.randn(3, c, generator=gen)
    timm_sd["head.fc.bias"] = torch.zeros(3)
    save_file(timm_sd, os.path.join(OUT, "tiny8_timm.safetensors"))

    # tiny4 as a CION pre-training checkpoint.
    sd = models["tiny4"].state_dict()
    c = models["tiny4"].norm3.weight.shape[0]

    def dino_head():
        return {
            "head.mlp.0.weight": torch.randn(8, c, generator=gen),
            "head.mlp.0.bias": torch.zeros(8),
            "head.mlp.2.weight": torch.randn(8, 8, generator=gen),
            "head.mlp.2.bias": torch.zeros(8),
            "head.mlp.4.weight": torch.randn(4, 8, generator=gen),
            "head.mlp.4.bias": torch.zeros(4),
            "head.last_layer.weight_g": torch.ones(5, 1),
            "head.last_layer.weight_v": torch.randn(5, 4, generator=gen),
        }

    teacher = {f"backbone.{k}": v.clone() for k, v in sd.items()}
    teacher.update(dino_head())
    # The student's backbone differs from the teacher's (it is trained); a
    # couple of its tensors are enough to check it is set aside.
    student = {"backbone.norm3.weight": torch.zeros(c), "backbone.norm3.bias": torch.zeros(c)}
    student.update(dino_head())
    ckpt = {
        "student": student,
        "teacher": teacher,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
        "epoch": 3,
        "args": Namespace(arch="swin_tiny", output_dim=65336),
        "Loss": {"center": torch.zeros(1, 5)},
        "fp16_scaler": None,
    }
    torch.save(ckpt, os.path.join(OUT, "tiny4_cion.pth"), _use_new_zipfile_serialization=False)

    import safetensors
    import timm

    manifest = {
        "generator": "tools/gen_swin_fixtures.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "timm": timm.__version__,
            "safetensors": safetensors.__version__,
        },
        "reference_vs_timm_max_abs_diff": timm_err,
        "models": {
            name: dict(cfg, depths=list(cfg["depths"]), heads=list(cfg["heads"]), mlp_ratio=4.0, patch_size=4)
            for name, cfg in CONFIGS.items()
        },
        "num_params": {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT} ({total / 1024:.0f} KiB); params {manifest['num_params']}")


if __name__ == "__main__":
    main()
