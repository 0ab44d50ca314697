#!/usr/bin/env python3
"""Writes the FastViT parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/fastvit/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_fastvit_fixtures.py

Reference: timm's `FastVit` (timm 1.0.x, `timm.models.fastvit`) in its
training form (unfused branches), SA variant (RepCPE + attention in stage 4)
at a reduced size: layers (1, 1, 1, 1), embed_dims (8, 16, 16, 16),
mlp_ratios 2, attention head_dim 8 (two heads; timm's constructor fixes 32,
so its default is changed while building), `final_conv` 16 -> 32 with SE 32 -> 2 -> 32.
Every code path of the full model runs: stride-2 MobileOne stem, depth-wise
RepMixer, 7x7 large-kernel patch embedding with grouped conv, RepCPE, BN +
multi-head attention, conv FFN, SE.

The official (apple/ml-fastvit) names are produced by renaming the timm
state dict here (`timm_to_official`); the renaming is checked against timm's
own `checkpoint_filter_fn` (its converter of official checkpoints), which must
give back the timm state dict exactly.

Weights are random with non-trivial statistics: BN weight 1 + 0.2 N, bias
0.1 N, running mean 0.1 N, running var U(0.5, 1.5); layer scales 0.5 + 0.3 N
(instead of 1e-5, which would hide every residual branch); conv/linear biases
0.1 N. The re-parameterised (inference) form computed by timm's
`reparameterize()` methods is checked to agree, which the Rust test also checks.

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal.
* `features.npy`: `final_conv` output `[2, 32, 2, 1]` (eval).
* `embedding.npy`: its global average `[2, 32]` (CION's FastViT feature).
* `official_cion.pth`: `{"teacher": {"module.backbone.<official key>": ...,
  "head.mlp.0.weight": ..., "head.last_layer.weight_v": ...}, "epoch": 3}`
  (FastViT has BN, so CION's teacher was DDP-wrapped).
* `timm.safetensors`: the timm state dict of the same weights plus an
  ImageNet-style classifier `head.fc.{weight,bias}` (unexpected for a backbone
  unless allowed).
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
from timm.models.fastvit import checkpoint_filter_fn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "fastvit")

LAYERS = (1, 1, 1, 1)
DIMS = (8, 16, 16, 16)
MLP_RATIOS = (2, 2, 2, 2)
HEAD_DIM = 8
POS_EMB = [False, False, False, True]


def network_list():
    """The official flat `network` list: (stage, role) per index."""
    out = []
    for i in range(4):
        if i > 0:
            out.append((i, "downsample"))
        if POS_EMB[i]:
            out.append((i, "pos_emb"))
        out.append((i, "blocks"))
    return out


def timm_to_official(key):
    """Renames one timm FastViT key to the apple/ml-fastvit name."""
    p = key.split(".")
    if len(p) >= 2 and p[-1] == "gamma" and p[-2].startswith("layer_scale"):
        p = p[:-1]
    renames = {"conv_kxk": "rbr_conv", "conv_scale": "rbr_scale", "identity": "rbr_skip",
               "large_conv": "lkb_origin", "mlp": "convffn"}
    p = [renames.get(s, s) for s in p]
    for i in range(1, len(p)):
        if p[i - 1] == "se" and p[i] in ("fc1", "fc2"):
            p[i] = {"fc1": "reduce", "fc2": "expand"}[p[i]]
    if p[0] == "stem":
        p[0] = "patch_embed"
    elif p[0] == "final_conv":
        p[0] = "conv_exp"
    elif p[0] == "stages":
        stage = int(p[1])
        net = network_list()
        if p[2] == "downsample":
            p = ["network", str(net.index((stage, "downsample")))] + p[3:]
        elif p[2] == "pos_emb":
            assert p[3] == "pos_enc"
            p = ["network", str(net.index((stage, "pos_emb"))), "pe"] + p[4:]
        elif p[2] == "blocks":
            p = ["network", str(net.index((stage, "blocks")))] + p[3:]
        else:
            raise KeyError(key)
    return ".".join(p)


def reparameterize_model(model):
    """Calls every module's `reparameterize()` (timm's inference form)."""
    for m in list(model.modules()):
        if hasattr(m, "reparameterize"):
            m.reparameterize()
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)
    # timm's FastVit passes no head_dim to its Attention: change the default.
    attention_init = timm.models.fastvit.Attention.__init__
    defaults = attention_init.__defaults__
    attention_init.__defaults__ = (HEAD_DIM,) + defaults[1:]
    try:
        ref = timm.create_model("fastvit_sa12", pretrained=False, num_classes=3, layers=LAYERS,
                                embed_dims=DIMS, mlp_ratios=MLP_RATIOS)
    finally:
        attention_init.__defaults__ = defaults
    heads = [m.num_heads for m in ref.modules() if type(m).__name__ == "Attention"]
    assert heads == [DIMS[-1] // HEAD_DIM] * LAYERS[-1], heads
    ref.eval()
    with torch.no_grad():
        for name, m in ref.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1.0 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
        for name, p in ref.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias") and "bn" not in name and "identity" not in name \
                    and not name.endswith("norm.bias"):
                p.copy_(0.1 * torch.randn_like(p))

    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        feats = ref.forward_features(x)
        emb = ref.forward_head(feats, pre_logits=True)
        emb_formula = feats.mean((2, 3))
        fused = reparameterize_model(copy.deepcopy(ref))
        feats_fused = fused.forward_features(x)
    assert (emb - emb_formula).abs().max().item() <= 1e-6 * emb.abs().max().item()
    fused_err = (feats - feats_fused).abs().max().item() / feats.abs().max().item()
    assert fused_err <= 1e-5, fused_err
    print("timm reparameterised vs training form: rel. max error %.3g" % fused_err)

    full_sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    timm_sd = {k: v for k, v in full_sd.items() if not k.startswith("head.")}
    official_sd = {timm_to_official(k): v for k, v in timm_sd.items()}
    back = checkpoint_filter_fn(dict(official_sd), ref)
    assert set(back) == set(timm_sd), (set(back) ^ set(timm_sd))
    for k in back:
        assert torch.equal(back[k], timm_sd[k]), k
    print("official renaming round-trips through timm's checkpoint_filter_fn (%d keys)" % len(back))

    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))

    g = torch.Generator().manual_seed(1)
    teacher = {"module.backbone." + k: v for k, v in official_sd.items()}
    teacher["module.head.mlp.0.weight"] = torch.randn(4, 2 * DIMS[-1], generator=g)
    teacher["module.head.mlp.0.bias"] = torch.zeros(4)
    teacher["module.head.last_layer.weight_g"] = torch.ones(5, 1)
    teacher["module.head.last_layer.weight_v"] = torch.randn(5, 4, generator=g)
    torch.save({"teacher": teacher, "epoch": 3}, os.path.join(OUT, "official_cion.pth"))
    safetensors.torch.save_file(full_sd, os.path.join(OUT, "timm.safetensors"))

    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "layers": list(LAYERS),
        "embed_dims": list(DIMS),
        "mlp_ratios": list(MLP_RATIOS),
        "head_dim": HEAD_DIM,
        "attention": POS_EMB,
        "pos_emb": POS_EMB,
        "input": "input.npy",
        "features": "features.npy",
        "embedding": "embedding.npy",
        "official_cion": "official_cion.pth",
        "timm": "timm.safetensors",
        "timm_reparameterized_rel_error": fused_err,
        "num_params_backbone_with_final_conv": sum(
            p.numel() for k, p in ref.named_parameters() if not k.startswith("head.")),
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %s (%d bytes in all)" % (OUT, total))


if __name__ == "__main__":
    main()
