#!/usr/bin/env python3
"""End-to-end check of `examples/extract.rs` against torchvision (not a fixture
generator: writes into a scratch folder given as argument).

    .venv/bin/python tools/backbone_extract_check.py /tmp/bbx
    cargo run --release --example extract -- --arch resnet50 --last-stride 2 \
        --weights /tmp/bbx/r50.pth --input-tensor /tmp/bbx/x.npy --output /tmp/bbx/f.npy
    .venv/bin/python tools/backbone_extract_check.py /tmp/bbx --compare /tmp/bbx/f.npy

Writes a torchvision ResNet50 with random weights and BN statistics
(`r50.pth`, with its ImageNet `fc`, and `r50_trunk.safetensors` without),
an input `x.npy` `[3, 3, 256, 128]` and the expected GAP features
`expected.npy` `[3, 2048]`; `--compare` prints the relative error.
"""

import os
import sys

import numpy as np
import torch
import torchvision


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) > 3 and sys.argv[2] == "--compare":
        got = np.load(sys.argv[3])
        want = np.load(os.path.join(out, "expected.npy"))
        err = np.abs(got - want).max() / np.abs(want).max()
        print(f"shape {got.shape} vs {want.shape}; max rel error {err:.3e}")
        sys.exit(0 if got.shape == want.shape and err < 1e-4 else 1)
    gen = torch.Generator().manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    torch.save(model.state_dict(), os.path.join(out, "r50.pth"))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("fc.")}, os.path.join(out, "r50_trunk.safetensors"))
    x = torch.randn(3, 3, 256, 128, generator=gen)
    np.save(os.path.join(out, "x.npy"), x.numpy())
    with torch.inference_mode():
        body = torch.nn.Sequential(*list(model.children())[:-2])
        feat = body(x).mean(dim=(2, 3))
    np.save(os.path.join(out, "expected.npy"), feat.numpy())
    print("wrote", out)


if __name__ == "__main__":
    main()
