#!/usr/bin/env python3
"""Writes the GhostNet parity fixtures of `reid-backbones` into
crates/reid-backbones/tests/fixtures/backbones/ghostnet/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_ghostnet_fixtures.py

Reference: timm's GhostNet v1 (`timm.models.ghostnet`, the port of Huawei's
official code with the same parameter names; timm loads Huawei's released
weights without renaming) with the published stage table at width 0.05 (every
channel count `make_divisible(c * 0.05, 4)`, mostly the minimum 4) and a
`conv_head` of 16 channels instead of 1280, so the files stay small.

Weights are random with non-trivial statistics: timm's init for the
convolutions, BatchNorm weight 1 + 0.2 N(0,1), bias 0.1 N(0,1), running mean
0.1 N(0,1), running var U(0.5, 1.5); `conv_head` bias 0.1 N(0,1).

Files:

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal (seed 0).
* `features.npy`: the map after `blocks.9` (1x1 conv-BN-ReLU) `[2, 48, 2, 1]`,
  eval mode.
* `embedding.npy`: CION's feature GAP -> conv_head -> ReLU `[2, 16]`.
* `cion.safetensors`: a CION pre-training checkpoint reduced to what the
  importer reads, flattened as the importer flattens `torch.save` dicts:
  `teacher.module.backbone.<key>` (GhostNet has BN, so CION's teacher is
  DDP-wrapped), `teacher.module.head.{mlp.0.*, last_layer.*}` (DINO head) and
  one `student.*` key, with the `num_batches_tracked` counters.
* `bare.safetensors`: the bare state dict plus an ImageNet-style
  `classifier.{weight,bias}` (unexpected unless allowed) and thop profiling
  buffers `total_ops` / `total_params` (set aside), as some released GhostNet
  files carry.
* `manifest.json`: versions and configuration.
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
from timm.models.ghostnet import _create_ghostnet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones", "ghostnet")

WIDTH = 0.05
NUM_FEATURES = 16


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    m = _create_ghostnet("ghostnet_100", width=WIDTH, num_classes=0)
    m.conv_head = nn.Conv2d(m.conv_head.in_channels, NUM_FEATURES, 1, bias=True)
    m.eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1.0 + 0.2 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
                mod.running_mean.copy_(0.1 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(0.5 + torch.rand_like(mod.running_var))
        m.conv_head.bias.copy_(0.1 * torch.randn_like(m.conv_head.bias))
    sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}

    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        feats = m.forward_features(x)
        emb = torch.relu(m.conv_head(feats.mean((2, 3), keepdim=True))).flatten(1)
        # timm's own head path (pool -> conv_head -> act2 -> flatten) agrees.
        emb_timm = m.flatten(m.act2(m.conv_head(m.global_pool(feats))))
    assert torch.allclose(emb, emb_timm, atol=1e-6)

    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "embedding.npy"), emb.numpy().astype(np.float32))

    g = torch.Generator().manual_seed(1)
    teacher = {"module.backbone." + k: v for k, v in sd.items()}
    teacher["module.head.mlp.0.weight"] = torch.randn(4, NUM_FEATURES, generator=g)
    teacher["module.head.mlp.0.bias"] = torch.zeros(4)
    teacher["module.head.last_layer.weight_g"] = torch.ones(5, 1)
    teacher["module.head.last_layer.weight_v"] = torch.randn(5, 4, generator=g)
    # Flattened as the importer flattens nested torch.save dicts ("teacher." +
    # key); safetensors keeps the fixture small (a zip .pth costs ~400 bytes
    # per tensor, and this model has ~500). The nested .pth container itself
    # is covered by the ConvNeXt and ResNet CION fixtures.
    flat = {"teacher." + k: v for k, v in teacher.items()}
    flat["student.module.backbone.conv_stem.weight"] = sd["conv_stem.weight"].clone()
    safetensors.torch.save_file(flat, os.path.join(OUT, "cion.safetensors"))

    bare = dict(sd)
    bare["classifier.weight"] = torch.randn(3, NUM_FEATURES, generator=g)
    bare["classifier.bias"] = torch.zeros(3)
    bare["total_ops"] = torch.zeros(1, dtype=torch.float64)
    bare["total_params"] = torch.zeros(1, dtype=torch.float64)
    bare["conv_stem.total_ops"] = torch.zeros(1, dtype=torch.float64)
    safetensors.torch.save_file(bare, os.path.join(OUT, "bare.safetensors"))

    manifest = {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "width": WIDTH,
        "num_features": NUM_FEATURES,
        "input": "input.npy",
        "features": "features.npy",
        "embedding": "embedding.npy",
        "cion": "cion.safetensors",
        "bare": "bare.safetensors",
        "num_trainable_params": sum(p.numel() for p in m.parameters()),
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("features %s, embedding %s; wrote %s (%d bytes in all)" % (tuple(feats.shape), tuple(emb.shape), OUT, total))


if __name__ == "__main__":
    main()
