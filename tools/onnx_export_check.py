#!/usr/bin/env python3
"""The deployment route of an exported BoT model: safetensors -> PyTorch ->
ONNX -> onnxruntime, checked against our own features.

    reid export --weights model.safetensors --out folded.safetensors \
        --input-tensor x.npy --features ours.npy
    .venv/bin/python tools/onnx_export_check.py --model folded.safetensors \
        --input x.npy --features ours.npy --onnx model.onnx

`--model` is a file of `reid export` (inference form, BatchNorms folded:
`reid.form = folded`) or of `finetune --export-model` (training form); the
architecture comes from the file's `reid.*` metadata. The script builds the
matching PyTorch module -- for ResNet BoT models the torchvision-layout
ResNet / IBN-Net of `tools/fixtures/gen_backbone_fixtures.py` (a bias on every folded
convolution and no BatchNorm after it) plus the BNNeck head; for ReIDZoo
ViTs (`reid export --arch vit_small`) CION's own `TransReID_ViT`, imported
from a CION_ReIDZoo checkout given by `--cion` -- loads the file with strict
key checking (only BatchNorm's `num_batches_tracked` counters may be absent),
exports ONNX (opset 17, dynamic batch), runs it with onnxruntime, and
compares PyTorch's and onnxruntime's features with ours (`--features`, the
`[batch, dim]` features `reid export` wrote for `--input`). Prints one JSON
object; exits 1 when a relative error (max |diff| / max |ours|) exceeds
`--tolerance` (default 1e-4).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

# (`cion_reidzoo` is imported from this folder, the generator from fixtures/)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
from gen_backbone_fixtures import ResNet  # noqa: E402

# ReIDZoo ViTs -> the factory of CION's `CION_Pretrain/models/Vision_Transformer.py`
# (CION_ReIDZoo 7ac6fd7) that builds them.
VIT_FACTORIES = {"vit_tiny": "vit_tiny_p16", "vit_small": "vit_small_p16", "vit_base": "vit_base_p16"}

# depth -> (bottleneck, blocks per stage), as torchvision's constructors.
DEPTHS = {
    18: (False, [2, 2, 2, 2]),
    34: (False, [3, 4, 6, 3]),
    50: (True, [3, 4, 6, 3]),
    101: (True, [3, 4, 23, 3]),
    152: (True, [3, 8, 36, 3]),
}


def parse_arch(arch):
    """`resnet50`, `resnet50_ibn_a`, `resnet18_ibn_b` -> (depth, ibn)."""
    name = arch.removeprefix("resnet")
    ibn = None
    for suffix, mode in (("_ibn_a", "a"), ("_ibn_b", "b"), ("_ibn", "a")):
        if name.endswith(suffix):
            name, ibn = name.removesuffix(suffix), mode
            break
    depth = int(name)
    if depth not in DEPTHS:
        raise SystemExit(f"reid.arch {arch!r}: expected resnet18/34/50/101/152 with an optional _ibn_a/_ibn_b")
    return depth, ibn


def with_bias(conv):
    """`conv`'s shape with a bias: the slot of a folded BatchNorm's shift."""
    return nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)


def fold_layout(trunk):
    """Turns the reference trunk into the folded layout: every convolution
    followed by a BatchNorm gets a bias and the BatchNorm becomes an
    identity; IBN-a splits and InstanceNorms stay (they depend on the input)."""
    for module in trunk.modules():
        for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, with_bias(conv))
                setattr(module, bn_name, nn.Identity())
        ds = getattr(module, "downsample", None)
        if isinstance(ds, nn.Sequential) and isinstance(ds[1], nn.BatchNorm2d):
            ds[0] = with_bias(ds[0])
            ds[1] = nn.Identity()
    return trunk


class Heads(nn.Module):
    """fast-reid's BoT head at test time: global average pooling, BNNeck."""

    def __init__(self, dim, feature):
        super().__init__()
        self.bottleneck = nn.Sequential(nn.BatchNorm1d(dim))
        self.feature = feature

    def forward(self, x):
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.bottleneck(pooled) if self.feature == "bnneck" else pooled


class Bot(nn.Module):
    def __init__(self, backbone, heads):
        super().__init__()
        self.backbone = backbone
        self.heads = heads

    def forward(self, x):
        return self.heads(self.backbone(x))


def build_vit(meta, state, cion):
    """CION's own ViT (imported from the checkout `cion`), its classifier
    replaced by an identity as CION's `MultiCropWrapper` does."""
    if cion is None:
        raise SystemExit(f"reid.arch {meta['reid.arch']}: pass --cion PATH (a CION_ReIDZoo checkout) for its ViT module")
    import cion_reidzoo

    module = cion_reidzoo.import_file(cion, "CION_Pretrain/models/Vision_Transformer.py", "cion_pretrain_vit")
    size = (int(meta.get("reid.height", 256)), int(meta.get("reid.width", 128)))
    model = getattr(module, VIT_FACTORIES[meta["reid.arch"]])(img_size=size)
    model.fc = nn.Identity()
    model.load_state_dict(state, strict=True)
    return model.eval()


def build(meta, state, cion=None):
    if meta["reid.arch"] in VIT_FACTORIES:
        return build_vit(meta, state, cion)
    depth, ibn = parse_arch(meta["reid.arch"])
    bottleneck, blocks = DEPTHS[depth]
    width = int(meta.get("reid.base_width", 64))
    trunk = ResNet(bottleneck, blocks, width, int(meta.get("reid.last_stride", 1)), meta.get("reid.stem_pool", "torchvision"), ibn)
    if meta.get("reid.form") == "folded":
        fold_layout(trunk)
    dim = width * 8 * (4 if bottleneck else 1)
    model = Bot(trunk, Heads(dim, meta.get("reid.feature", "bnneck"))).eval()
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise SystemExit(f"{meta['reid.arch']}: missing keys {missing}, unexpected keys {result.unexpected_keys}")
    return model


def rel(a, ref):
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="[batch, 3, H, W] float32 .npy")
    ap.add_argument("--features", required=True, help="our [batch, dim] features of --input")
    ap.add_argument("--onnx", help="where to write the ONNX model (default: next to --model)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--cion", help="a CION_ReIDZoo checkout (commit 7ac6fd7): the reference module of ReIDZoo ViTs")
    args = ap.parse_args()

    with safe_open(args.model, "pt") as f:
        meta = f.metadata() or {}
    if "reid.arch" not in meta:
        raise SystemExit(f"{args.model}: no reid.arch metadata (write it with `reid export` or `finetune --export-model`)")
    model = build(meta, load_file(args.model), args.cion)
    x = torch.from_numpy(np.load(args.input).astype(np.float32))
    ours = np.load(args.features).astype(np.float32)
    with torch.inference_mode():
        torch_out = model(x).numpy()

    import onnx
    import onnxruntime as ort

    onnx_path = args.onnx or os.path.splitext(args.model)[0] + ".onnx"
    torch.onnx.export(
        model,
        (x,),
        onnx_path,
        input_names=["images"],
        output_names=["features"],
        dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(onnx_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    ort_out = session.run(["features"], {"images": x.numpy()})[0]

    report = {
        "model": os.path.basename(args.model),
        "form": meta.get("reid.form", "trained"),
        "arch": meta["reid.arch"],
        "onnx": os.path.basename(onnx_path),
        "batch": int(x.shape[0]),
        "dim": int(ours.shape[1]),
        "torch_vs_ours": rel(torch_out, ours),
        "onnxruntime_vs_ours": rel(ort_out, ours),
        "onnxruntime_vs_torch": rel(ort_out, torch_out),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }
    print(json.dumps(report, indent=2))
    ok = max(report["torch_vs_ours"], report["onnxruntime_vs_ours"]) <= args.tolerance
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
