#!/usr/bin/env python3
"""PyTorch side of `benches/resnet.rs`: times a torchvision ResNet50 trunk
(no avgpool/fc) in inference mode and prints one JSON line.

    backbone_bench_torch.py --batch 16 --height 256 --width 128 --last-stride 1 \
        --threads 2 --warmup 2 --runs 7

`--last-stride 1` sets the stride of layer4's first block to 1 (the ReID
trunk), as our `ResNetConfig` does. Times cover the forward pass only (the
output is already a CPU tensor).
"""

import argparse
import json
import statistics
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--last-stride", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--profile", action="store_true", help="median time per stage (stem, layer1-4) instead")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    if a.last_stride == 1:
        model.layer4[0].conv2.stride = (1, 1)
        model.layer4[0].downsample[0].stride = (1, 1)
    trunk = torch.nn.Sequential(*list(model.children())[:-2]).eval()
    x = torch.randn(a.batch, 3, a.height, a.width)
    if a.profile:
        stages = [("stem", torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool))]
        stages += [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
        result = {}
        with torch.inference_mode():
            h = x
            for name, mod in stages:
                ts = []
                for i in range(a.warmup + a.runs):
                    t0 = time.perf_counter()
                    out = mod(h)
                    float(out.flatten()[0])
                    if i >= a.warmup:
                        ts.append(time.perf_counter() - t0)
                result[name] = statistics.median(ts)
                h = out
        print(json.dumps({"stages_s": result}))
        return
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            y = trunk(x)
            float(y[0, 0, 0, 0])
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(dt)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "out_shape": list(y.shape),
    }))


if __name__ == "__main__":
    main()
