#!/usr/bin/env python3
"""End-to-end check of `extract --arch NAME` on full-size ReIDZoo models
against timm, at 256x128 with random weights (not a fixture generator:
the checkpoints are tens of MB, so nothing is written to the repository).

    cargo build --example extract
    .venv/bin/python tools/zoo_extract_check.py [target/debug/examples/extract]

For each model: timm's model (no classifier; BN running statistics set to
non-trivial values), its state dict saved as safetensors, a fixed input
`[2, 3, 256, 128]`, the extract binary run with `--input-tensor`, and the
relative error `max|ours - timm| / max|timm|` of the CION feature printed.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
from safetensors.torch import save_file

MODELS = [  # (ReIDZoo name, timm name)
    ("ghostnet_0_5", "ghostnet_050"),
    ("repvit_m0_9", "repvit_m0_9"),
    ("edgenext_x_small", "edgenext_x_small"),
    ("volo_d1", "volo_d1_224"),
]

# Extra timm arguments per model (VOLO lays pos_embed out for 256x128).
EXTRA = {"volo_d1": {"img_size": (256, 128)}}


def cion_feature(name, model, x):
    if name.startswith("ghostnet"):
        f = model.global_pool(model.forward_features(x))
        return model.act2(model.conv_head(f)).flatten(1)
    return model(x)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/examples/extract"
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 128)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "x.npy", x.numpy())
        for name, timm_name in MODELS:
            kwargs = {} if name.startswith("ghostnet") else {"num_classes": 0}
            kwargs.update(EXTRA.get(name, {}))
            model = timm.create_model(timm_name, pretrained=False, **kwargs).eval()
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
            sd = {k: v.contiguous() for k, v in model.state_dict().items()
                  if not k.startswith("classifier")}
            save_file(sd, tmp / f"{name}.safetensors")
            with torch.no_grad():
                ref = cion_feature(name, model, x).numpy()
            out = tmp / f"{name}.npy"
            subprocess.run([binary, "--arch", name, "--weights", str(tmp / f"{name}.safetensors"),
                            "--input-tensor", str(tmp / "x.npy"), "--output", str(out)],
                           check=True, capture_output=True)
            ours = np.load(out)
            err = np.abs(ours - ref).max() / np.abs(ref).max()
            print(f"{name:<18} {str(ours.shape):<10} rel. error {err:.2e} (timm {timm.__version__})")


if __name__ == "__main__":
    main()
