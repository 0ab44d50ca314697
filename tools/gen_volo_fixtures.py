#!/usr/bin/env python3
"""Writes the VOLO parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/volo/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_volo_fixtures.py

Reference: timm's `VOLO` (timm 1.0.x, `timm.models.volo.VOLO`), whose module
tree and forward are sail-sg's and CION's (`CION_Finetune/TransReID/model/
backbones/VOLO.py`: same names `patch_embed.conv.{0,1,3,4,6,7}`,
`patch_embed.proj`, `network.0.j` outlookers, `network.1` down-sampling,
`network.{2,3,4}.j` transformers, `pos_embed` `[1, H/16, W/16, C]`,
`cls_token`, `post_network.j` class attention, `norm`), at a reduced size:
layers [1, 1, 1, 1], embed_dims [8, 16, 16, 16], num_heads [2, 4, 4, 4], stem
hidden width 8, MLP ratio 3, img_size (64, 32), no classifier (`num_classes=0`).

timm adds `pos_embed` as stored (fixed input size); CION resizes it when the
token count differs, with DINO's scale factor: `F.interpolate(pos, scale_factor=
((H // 16 + 0.1) / OH, (W // 16 + 0.1) / OW), mode="bicubic")`. That path is
written here (`cion_forward`, timm's modules with CION's position step) and
checked to equal timm's `forward_features` when no resizing happens.

Weights are random with non-trivial statistics: linear weights N(0, 1/fan_in)
(timm's trunc-normal 0.02 would make every block nearly the identity), biases
0.1 N(0,1), LayerNorm weights 1 + 0.2 N(0,1), BatchNorm weights 1 + 0.2 N,
biases 0.1 N, running mean 0.1 N, running var U(0.5, 1.5); convolutions keep
PyTorch's default initialisation; `pos_embed` and `cls_token` 0.5 N(0,1).
Everything runs in eval mode (BN on running statistics).

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `stage1.npy`: the map after the outlookers (`network.0`), channels last
  `[2, 8, 4, 8]`.
* `tokens.npy`: every token after the final norm `[2, 1 + 4*2, 16]` (timm's
  `forward_features`; class token first).
* `embedding.npy`: the class token `[2, 16]` (CION's feature; timm's
  `forward_head(pre_logits=True)`).
* `resize_input.npy`: float32 `[1, 3, 56, 40]`: a 7x5 outlooker grid (odd:
  ceil-mode pooling and folding with cut windows) and a 3x2 token grid, so
  `pos_embed` (4x2) is resized (scale factors 3.1/4 and 2.1/2, as CION's
  128x64 crops shrink the 16x8 grid).
* `resize_pos.npy`: the resized `pos_embed` `[1, 3, 2, 16]`.
* `resize_tokens.npy`: CION's forward on that input `[1, 1 + 6, 16]`.
* `ops_x.npy`: a channels-last map `[1, 7, 5, 3]`; for each case `k{k}p{p}s{s}`
  of `OPS`: `ops_unfold_<case>.npy` = `F.unfold` as `[1, h, w, k*k, 3]`,
  `ops_cols_<case>.npy` (random, that shape) and `ops_fold_<case>.npy` =
  `F.fold(cols, (7, 5))` as `[1, 7, 5, 3]`; `ops_pool_s{s}.npy` =
  `F.avg_pool2d(kernel=s, stride=s, ceil_mode=True)` as `[1, ceil(7/s),
  ceil(5/s), 3]`.
* `cion.pth`: `{"teacher": {"module.backbone.<key>": ..., "module.head.mlp.0.weight":
  ..., "module.head.last_layer.weight_v": ...}, "student": {...}, "epoch": 3}` (VOLO
  has BatchNorm, so CION's teacher was DDP-wrapped); with
  `num_batches_tracked`.
* `official.pth`: legacy (non-zip) pickle, a bare sail-sg state dict plus the
  ImageNet heads `head.{weight,bias}` and `aux_head.{weight,bias}`
  (3 classes).
* `timm.safetensors`: timm's state dict (`num_classes=0`).
* `manifest.json`: versions, configuration, file names, sizes.
"""

import json
import math
import os
import sys

import numpy as np
import safetensors
import safetensors.torch
import timm
import torch
import torch.nn.functional as F
from timm.models.volo import VOLO

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "volo")

LAYERS = [1, 1, 1, 1]
EMBED_DIMS = [8, 16, 16, 16]
NUM_HEADS = [2, 4, 4, 4]
STEM_HIDDEN = 8
IMG_SIZE = (64, 32)
MLP_RATIO = 3.0
# Outlook window: kernel, padding, stride (VOLO's only setting).
OUTLOOK = (3, 1, 2)
# unfold / fold cases (kernel, padding, stride) and pooling sizes of the
# standalone operator checks.
OPS = [(3, 1, 2), (3, 1, 1), (5, 2, 3), (2, 0, 2)]
POOLS = [2, 3]


def build():
    return VOLO(
        layers=LAYERS,
        img_size=IMG_SIZE,
        num_classes=0,
        embed_dims=EMBED_DIMS,
        num_heads=NUM_HEADS,
        stem_hidden_dim=STEM_HIDDEN,
        mlp_ratio=MLP_RATIO,
    ).eval()


def randomise(model):
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn_like(mod.weight) / math.sqrt(mod.in_features))
                if mod.bias is not None:
                    mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
            elif isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1.0 + 0.2 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.copy_(1.0 + 0.2 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
                mod.running_mean.copy_(0.1 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
                mod.num_batches_tracked.fill_(7)
        model.pos_embed.copy_(0.5 * torch.randn_like(model.pos_embed))
        model.cls_token.copy_(0.5 * torch.randn_like(model.cls_token))


def cion_pos_embed(model, grid_hw, image_hw):
    """CION's `interpolate_pos_encoding`: the stored `pos_embed` when the token
    count agrees, else a bicubic resize by DINO's scale factor computed from
    the image size (`H // 16 + 0.1`), channels last."""
    pos = model.pos_embed
    oh, ow = pos.shape[1], pos.shape[2]
    if grid_hw[0] * grid_hw[1] == oh * ow:
        return pos
    h0 = image_hw[0] // 8 // 2 + 0.1
    w0 = image_hw[1] // 8 // 2 + 0.1
    out = F.interpolate(pos.permute(0, 3, 1, 2), scale_factor=(h0 / oh, w0 / ow), mode="bicubic")
    assert tuple(out.shape[-2:]) == (int(h0), int(w0)) == tuple(grid_hw), (out.shape, grid_hw)
    return out.permute(0, 2, 3, 1)


def cion_forward(model, x):
    """CION's `VOLO.forward` up to the final norm (all tokens), on timm's
    modules."""
    image_hw = x.shape[-2:]
    x = model.patch_embed(x).permute(0, 2, 3, 1)
    for idx, block in enumerate(model.network):
        if idx == 2:
            x = x + cion_pos_embed(model, x.shape[1:3], image_hw)
        x = block(x)
    b, _, _, c = x.shape
    x = model.forward_cls(x.reshape(b, -1, c))
    return model.norm(x)


def nchw_to_nhwc_cols(cols, c, kk, h, w):
    """`[1, C*kk, h*w]` (channel-major, tap-minor) -> `[1, h, w, kk, C]`."""
    return cols.reshape(1, c, kk, h, w).permute(0, 3, 4, 2, 1)


def write_ops(save):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 7, 5, 3, generator=g)
    save("ops_x.npy", x)
    nchw = x.permute(0, 3, 1, 2)
    hh, ww, c = 7, 5, 3
    for k, p, s in OPS:
        case = "k%dp%ds%d" % (k, p, s)
        h = (hh + 2 * p - k) // s + 1
        w = (ww + 2 * p - k) // s + 1
        unfolded = F.unfold(nchw, kernel_size=k, padding=p, stride=s)
        save("ops_unfold_%s.npy" % case, nchw_to_nhwc_cols(unfolded, c, k * k, h, w))
        cols = torch.randn(1, h, w, k * k, c, generator=g)
        save("ops_cols_%s.npy" % case, cols)
        torch_cols = cols.permute(0, 4, 3, 1, 2).reshape(1, c * k * k, h * w)
        folded = F.fold(torch_cols, output_size=(hh, ww), kernel_size=k, padding=p, stride=s)
        save("ops_fold_%s.npy" % case, folded.permute(0, 2, 3, 1))
    for s in POOLS:
        pooled = F.avg_pool2d(nchw, kernel_size=s, stride=s, ceil_mode=True)
        save("ops_pool_s%d.npy" % s, pooled.permute(0, 2, 3, 1))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)

    def save(name, t):
        np.save(os.path.join(OUT, name), t.detach().numpy().astype(np.float32))

    ref = build()
    randomise(ref)
    sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}

    x = torch.randn(2, 3, 64, 32)
    xr = torch.randn(1, 3, 56, 40)
    with torch.no_grad():
        tokens = ref.forward_features(x)
        emb = ref.forward_head(tokens, pre_logits=True)
        stage1 = ref.network[0](ref.patch_embed(x).permute(0, 2, 3, 1))
        again = cion_forward(ref, x)
        resize_tokens = cion_forward(ref, xr)
        resize_pos = cion_pos_embed(ref, (3, 2), (56, 40))
    err = (tokens - again).abs().max().item()
    assert err <= 1e-6 * tokens.abs().max().item(), err
    assert torch.equal(emb, tokens[:, 0])
    print("timm forward_features vs CION forward: max abs diff %.3g" % err)

    save("input.npy", x)
    save("stage1.npy", stage1)
    save("tokens.npy", tokens)
    save("embedding.npy", emb)
    save("resize_input.npy", xr)
    save("resize_pos.npy", resize_pos)
    save("resize_tokens.npy", resize_tokens)
    write_ops(save)

    g = torch.Generator().manual_seed(1)
    teacher = {"module.backbone." + k: v for k, v in sd.items()}
    teacher["module.head.mlp.0.weight"] = torch.randn(4, EMBED_DIMS[-1], generator=g)
    teacher["module.head.mlp.0.bias"] = torch.zeros(4)
    teacher["module.head.last_layer.weight_g"] = torch.ones(5, 1)
    teacher["module.head.last_layer.weight_v"] = torch.randn(5, 4, generator=g)
    student = {"module.backbone.norm.weight": torch.ones(EMBED_DIMS[-1])}
    torch.save({"teacher": teacher, "student": student, "epoch": 3}, os.path.join(OUT, "cion.pth"))

    official = dict(sd)
    for head in ("head", "aux_head"):
        official[head + ".weight"] = torch.randn(3, EMBED_DIMS[-1], generator=g)
        official[head + ".bias"] = torch.zeros(3)
    torch.save(official, os.path.join(OUT, "official.pth"), _use_new_zipfile_serialization=False)
    safetensors.torch.save_file(sd, os.path.join(OUT, "timm.safetensors"))

    trainable = sum(v.numel() for k, v in sd.items() if not (k.endswith("running_mean") or k.endswith("running_var") or k.endswith("num_batches_tracked")))
    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "layers": LAYERS,
        "embed_dims": EMBED_DIMS,
        "num_heads": NUM_HEADS,
        "stem_hidden_dim": STEM_HIDDEN,
        "img_size": list(IMG_SIZE),
        "mlp_ratio": MLP_RATIO,
        "outlook_kernel_padding_stride": list(OUTLOOK),
        "layer_norm_eps": 1e-5,
        "batch_norm_eps": 1e-5,
        "ops_cases": [list(c) for c in OPS],
        "ops_pools": POOLS,
        "input": "input.npy",
        "tokens": "tokens.npy",
        "embedding": "embedding.npy",
        "cion": "cion.pth",
        "official": "official.pth",
        "timm": "timm.safetensors",
        "num_state_dict_tensors": len(sd),
        "num_params_backbone": trainable,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


if __name__ == "__main__":
    main()
