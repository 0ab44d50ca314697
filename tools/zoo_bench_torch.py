#!/usr/bin/env python3
"""PyTorch side of `benches/zoo.rs`: times one ReIDZoo model's CION feature
in inference mode and prints one JSON line.

    zoo_bench_torch.py --model convnext_tiny --batch 16 --height 256 \
        --width 128 --threads 2 --warmup 1 --runs 3

The reference of each family is what its parity tests compare against:
timm 1.0 models (`num_classes=0`, so the output is the pooled feature;
RepViT and FastViT re-parameterised with `timm.utils.reparameterize_model`,
as our inference form is), torchvision's ResNet50 with last stride 1 + GAP,
GhostNet's `conv_head` feature, and for the ICS ViT and Swin the reference
modules of `tools/fixtures/gen_vit_fixtures.py` /
`tools/fixtures/gen_swin_fixtures.py` at full size (timm has neither the IBN
stem nor CION's Swin layout). Random weights; times cover the forward pass
only.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import timm
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))


class ResNetGap(torch.nn.Module):
    def __init__(self):
        super().__init__()
        m = torchvision.models.resnet50(weights=None)
        m.layer4[0].conv2.stride = (1, 1)
        m.layer4[0].downsample[0].stride = (1, 1)
        self.trunk = torch.nn.Sequential(*list(m.children())[:-2])

    def forward(self, x):
        return self.trunk(x).mean(dim=(2, 3))


class GhostFeature(torch.nn.Module):
    def __init__(self, name):
        super().__init__()
        self.m = timm.create_model(name, pretrained=False)

    def forward(self, x):
        m = self.m
        return m.act2(m.conv_head(m.global_pool(m.forward_features(x)))).flatten(1)


class OutputAt(torch.nn.Module):
    """Output `index` of a model that returns several (ViT: 0, the class
    token; Swin: 1, the average-pooled tokens)."""

    def __init__(self, m, index):
        super().__init__()
        self.m = m
        self.index = index

    def forward(self, x):
        return self.m(x)[self.index]


TIMM = {  # our name -> (timm name, re-parameterise)
    "edgenext_small": ("edgenext_small", False),
    "edgenext_x_small": ("edgenext_x_small", False),
    "repvit_m1_0": ("repvit_m1_0", True),
    "repvit_m0_9": ("repvit_m0_9", True),
    "fastvit_s12": ("fastvit_s12", True),
    "convnext_tiny": ("convnext_tiny", False),
    "volo_d1": ("volo_d1_224", False),
}


def build(name, height, width):
    if name == "resnet50":
        return ResNetGap()
    if name.startswith("ghostnet_"):
        mult = {"ghostnet_0_5": "050", "ghostnet_1_0": "100", "ghostnet_1_3": "130"}[name]
        return GhostFeature(f"ghostnet_{mult}")
    if name == "vit_small":
        from gen_vit_fixtures import IcsViT

        return OutputAt(IcsViT(dim=384, depth=12, heads=6, hidden=64, patch=16, img=(height, width)), 0)
    if name == "swin_tiny":
        from gen_swin_fixtures import SwinRef

        return OutputAt(SwinRef(96, [2, 2, 6, 2], [3, 6, 12, 24], 8), 1)
    timm_name, reparam = TIMM[name]
    kwargs = {"num_classes": 0}
    if name.startswith("volo"):
        kwargs["img_size"] = (height, width)
    m = timm.create_model(timm_name, pretrained=False, **kwargs).eval()
    if reparam:
        from timm.utils.model import reparameterize_model

        m = reparameterize_model(m)
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(a.model, a.height, a.width).eval()
    x = torch.randn(a.batch, 3, a.height, a.width)
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            y = model(x)
            float(y.flatten()[0])
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(dt)
    print(json.dumps({
        "model": a.model,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "threads": torch.get_num_threads(),
        "median_s": statistics.median(times),
        "times_s": times,
        "out_shape": list(y.shape),
    }))


if __name__ == "__main__":
    main()
