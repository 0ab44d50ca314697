#!/usr/bin/env python3
"""Checks that `reid_backbones::import::save_safetensors` (and
`save_mgn_safetensors`) output loads into PyTorch: strict `load_state_dict`
apart from `num_batches_tracked`, and the same outputs as the fixtures.

    mkdir -p /tmp/export && REID_EXPORT_DIR=/tmp/export \
        cargo test -p reid-backbones --test integration -- parity::safetensors_export parity::fastreid_mgn
    .venv/bin/python tools/backbone_check_export.py /tmp/export
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
from gen_backbone_fixtures import MGN, OUT, ResNet  # noqa: E402


def main():
    export = sys.argv[1]
    manifest = json.load(open(os.path.join(OUT, "manifest.json")))
    x = torch.from_numpy(np.load(os.path.join(OUT, "input.npy")))
    ok = True
    for name in sorted(os.listdir(export)):
        variant = name.removesuffix(".safetensors")
        if variant == "mgn":
            m = manifest["mgn"]
            trunk = ResNet(True, m["blocks"], m["base_width"], 1, "fastreid", None)
            model = MGN(trunk, m["embedding_dim"], m["num_classes"]).eval()
            v = {"output": m["output"]}
            inp = torch.from_numpy(np.load(os.path.join(OUT, m["input"])))
        else:
            v = manifest["variants"][variant]
            model = ResNet(v["bottleneck"], v["blocks"], v["base_width"], v["last_stride"], v["stem"], v["ibn"]).eval()
            inp = x
        result = model.load_state_dict(load_file(os.path.join(export, name)), strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        with torch.inference_mode():
            y = model(inp).numpy()
        ref = np.load(os.path.join(OUT, v["output"]))
        err = np.abs(y - ref).max() / np.abs(ref).max()
        print(f"{variant}: missing {missing}, unexpected {result.unexpected_keys}, rel error {err:.2e}")
        ok &= not missing and not result.unexpected_keys and err < 1e-5
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
