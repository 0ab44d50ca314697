#!/usr/bin/env python3
"""Writes the parity fixtures of `reid-backbones` into crates/reid-backbones/tests/fixtures/backbones/.

Run from the repository root with the tools venv:

    .venv/bin/python tools/gen_backbone_fixtures.py

What it writes (all small: reduced widths and block counts, 64x32 inputs):

* `input.npy`: float32 `[2, 3, 64, 32]`, standard normal (seed 0), the input of
  every model below.
* For each model variant `<name>` (see `VARIANTS`): `<name>.pth` (a bare
  torchvision-layout state dict, as `torch.save(model.state_dict())` writes
  it) and `<name>.out.npy` (the feature map `[2, C, h, w]` of the model in
  eval mode on `input.npy`).
* `bottleneck.safetensors`: the same state dict as `bottleneck.pth`, written
  with `safetensors.torch.save_file`; `bottleneck_fc.safetensors` adds an
  ImageNet-style `fc.{weight,bias}` (unexpected for a trunk unless allowed).
* Checkpoint layouts, all holding the weights of `bottleneck` (so their
  expected output is `bottleneck.out.npy`), or of `bottleneck_fr` for the
  fast-reid ones (fast-reid stem: max-pool padding 0, ceil mode):
  - `lup_moco.pth`: a LUPerson MoCo v2 training snapshot
    `{epoch, arch, state_dict, optimizer}` whose `state_dict` is a
    DistributedDataParallel state dict of the MoCo module: the trunk under
    `module.encoder_q.`, the MLP projection head as `module.encoder_q.fc.{0,2}`,
    the key encoder under `module.encoder_k.`, `module.queue`,
    `module.queue_ptr` (as LUPerson's MoCo builder names them).
  - `lup_nl.pth`: a LUPerson-NL (PNL) snapshot: as above, plus the encoder's
    classifier and projection branches (named here `classifier.{0,2}` and
    `projection.{0,2}`; the importer ignores every non-trunk child of
    `encoder_q` whatever its name), `module.queue_id`, `module.prototypes`.
  - `cion.pth`: a CION pre-training checkpoint `{student, teacher, optimizer,
    epoch, args, Loss, fp16_scaler}` where `args` is a pickled
    `argparse.Namespace` and both networks are DDP-wrapped
    `MultiCropWrapper`s: `module.backbone.<trunk key>` and
    `module.head.{mlp.{0,2,4}, last_layer.weight_g, last_layer.weight_v}`.
  - `cion_nobn_prefix.pth`: the `teacher` keys with the `backbone.` prefix of
    BN-free models (no `module.`), same weights.
  - `fastreid.pth`: a current fast-reid checkpoint `{model, optimizer,
    scheduler, iteration}` with `backbone.<trunk key>`,
    `heads.bottleneck.0.*` (BNNeck) and `heads.weight` (classifier).
  - `fastreid_old.pth`: the same model in the v0.1 model-zoo naming:
    `heads.bnneck.*`, `heads.classifier.weight`, plus `pixel_mean`,
    `pixel_std`.
  - `fastreid_head.out.npy`: the BNNeck output `[2, C]` (BN of the
    global-average-pooled feature, eval mode) of that fast-reid model, and
    `fastreid_logits.npy` the circle-softmax logits for `fastreid_labels.npy`.
* `transreid.pth`: a TransReID fine-tuned model as CION's fine-tuning code
  saves it (`base.<trunk key>`, `bottleneck.*` BatchNorm1d, `classifier.weight`
  [4, C]), trunk weights of `bottleneck`; `transreid_head.out.npy` its BNNeck
  output `[2, C]`.
* `mgn.pth`, `mgn_input.npy` `[2, 3, 128, 32]`, `mgn.out.npy` `[2, 64]`: a
  fast-reid MGN (LUPerson fork: shared trunk to `layer3[0]`, three branches,
  8 heads of GeM-P → 1x1 conv → BN, extra BN per branch
  `heads_extra_bn_b{1,2,3}`) in its state-dict layout, and its inference
  feature (8 post-BN head features concatenated in the order b1, b2, b3,
  b21, b22, b31, b32, b33).
* Reproducibility: all tensors are seeded; the `.npy` and zip-format `.pth`
  files are byte-identical across runs, except `lup_*.pth` (legacy pickle
  container, which embeds object ids as storage keys) and `mgn.pth` (shared
  storages), whose bytes change while their tensors do not.
* `manifest.json`: versions of the packages used, and per variant its
  configuration (block type, blocks per stage, base width, last stride, stem
  variant, IBN mode).

The PyTorch ResNet below follows torchvision's `ResNet` (v1.5: stride on the
3x3 convolution; parameter names `conv1`, `bn1`, `layerN.i.convK`,
`layerN.i.bnK`, `layerN.0.downsample.{0,1}`) with a configurable base width
and block counts so the fixtures stay small; `check_against_torchvision()`
verifies that at width 64 it has exactly torchvision's state-dict keys and
shapes and computes the same output. IBN-a / IBN-b follow the layouts of
IBN-Net as used by fast-reid, torchreid and CION (IBN-a: `bn1` of every block
of layers 1-3 is `IBN` with `IN` = InstanceNorm2d(int(planes/2), affine) and
`BN` = BatchNorm2d(rest); IBN-b: stem `bn1` is InstanceNorm2d(affine), and an
InstanceNorm2d(affine) named `IN` after the residual add of the last block of
layers 1 and 2, before the final ReLU).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "reid-backbones", "tests", "fixtures", "backbones")


class IBN(nn.Module):
    """IN on the first int(planes/2) channels, BN on the rest."""

    def __init__(self, planes):
        super().__init__()
        self.half = int(planes * 0.5)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, ibn_a, post_in):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = IBN(planes) if ibn_a else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.IN = nn.InstanceNorm2d(planes, affine=True) if post_in else None
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y)) + identity
        if self.IN is not None:
            y = self.IN(y)
        return F.relu(y)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample, ibn_a, post_in):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = IBN(planes) if ibn_a else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.IN = nn.InstanceNorm2d(planes * 4, affine=True) if post_in else None
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y)) + identity
        if self.IN is not None:
            y = self.IN(y)
        return F.relu(y)


class ResNet(nn.Module):
    """torchvision-layout ResNet trunk (no avgpool/fc)."""

    def __init__(self, bottleneck, blocks, width=64, last_stride=2, stem="torchvision", ibn=None):
        super().__init__()
        block = Bottleneck if bottleneck else Basic
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.InstanceNorm2d(width, affine=True) if ibn == "b" else nn.BatchNorm2d(width)
        if stem == "torchvision":
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:  # fast-reid
            self.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        self.inplanes = width
        strides = [1, 2, 2, last_stride]
        for i, (n, s) in enumerate(zip(blocks, strides)):
            planes = width << i
            ibn_a = ibn == "a" and i < 3
            post_in_stage = ibn == "b" and i < 2
            layers = []
            for j in range(n):
                stride = s if j == 0 else 1
                ds = None
                if stride != 1 or self.inplanes != planes * block.expansion:
                    ds = nn.Sequential(
                        nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                layers.append(block(self.inplanes, planes, stride, ds, ibn_a, post_in_stage and j == n - 1))
                self.inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def randomize(model, gen):
    """Random weights with non-trivial BN/IN affine parameters and BN running statistics."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                    m.num_batches_tracked.fill_(1234)


# name -> (bottleneck, blocks, width, last_stride, stem, ibn)
VARIANTS = {
    # ResNet18/34 code path (BasicBlock), ImageNet last stride.
    "basic": (False, [2, 1, 1, 1], 4, 2, "torchvision", None),
    # ResNet50/101/152 code path (Bottleneck), ReID last stride 1.
    "bottleneck": (True, [2, 2, 1, 1], 2, 1, "torchvision", None),
    # The same with fast-reid's stem pooling (weights of fast-reid checkpoints).
    "bottleneck_fr": (True, [2, 2, 1, 1], 2, 1, "fastreid", None),
    "ibn_a": (True, [2, 2, 2, 1], 2, 1, "torchvision", "a"),
    "ibn_b": (True, [2, 2, 1, 1], 2, 1, "torchvision", "b"),
    "basic_ibn_a": (False, [2, 1, 1, 1], 4, 1, "torchvision", "a"),
}


def check_against_torchvision():
    """Our definition at width 64 equals torchvision's ResNet18/50 (keys, shapes, output)."""
    import torchvision

    for bottleneck, blocks, tv in [(False, [2, 2, 2, 2], torchvision.models.resnet18), (True, [3, 4, 6, 3], torchvision.models.resnet50)]:
        ref = tv(weights=None).eval()
        ours = ResNet(bottleneck, blocks, 64, 2).eval()
        ref_sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
        ours_sd = ours.state_dict()
        assert list(ref_sd) == list(ours_sd), "key mismatch with torchvision"
        assert all(ref_sd[k].shape == ours_sd[k].shape for k in ref_sd)
        randomize(ref, torch.Generator().manual_seed(1))
        ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")})
        x = torch.randn(1, 3, 64, 32, generator=torch.Generator().manual_seed(2))
        with torch.inference_mode():
            body = nn.Sequential(*list(ref.children())[:-2])
            assert torch.allclose(body(x), ours(x), atol=1e-5)


class Head(nn.Module):
    """fast-reid EmbeddingHead as MGN uses it: GeM-P, 1x1 conv (no bias), BN with frozen bias, weight."""

    def __init__(self, in_ch, emb, num_classes):
        super().__init__()
        self.pool_layer = GemP()
        self.bottleneck = nn.Sequential(nn.Conv2d(in_ch, emb, 1, bias=False), nn.BatchNorm2d(emb))
        self.weight = nn.Parameter(torch.randn(num_classes, emb) * 0.1)

    def forward(self, x):
        return self.bottleneck(self.pool_layer(x))[..., 0, 0]


class GemP(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * 3.0)

    def forward(self, x):
        x = x.clamp(min=1e-6).pow(self.p)
        return F.adaptive_avg_pool2d(x, 1).pow(1.0 / self.p)


class MGN(nn.Module):
    """fast-reid MGN (LUPerson fork, with the extra BN per branch), in its parameter layout."""

    def __init__(self, trunk, emb, num_classes, extra_bn=True):
        super().__init__()
        import copy

        self.backbone = nn.Sequential(trunk.conv1, trunk.bn1, nn.ReLU(), trunk.maxpool, trunk.layer1, trunk.layer2, trunk.layer3[0])
        res_conv4 = nn.Sequential(*trunk.layer3[1:])
        planes = trunk.layer4[0].conv1.out_channels
        in_ch = trunk.layer4[0].conv1.in_channels
        out_ch = planes * 4
        res_p_conv5 = nn.Sequential(
            Bottleneck(in_ch, planes, 1, nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)), False, False),
            Bottleneck(out_ch, planes, 1, None, False, False),
            Bottleneck(out_ch, planes, 1, None, False, False),
        )
        res_p_conv5.load_state_dict(trunk.layer4.state_dict())
        self.b1 = nn.Sequential(copy.deepcopy(res_conv4), copy.deepcopy(trunk.layer4))
        self.b2 = nn.Sequential(copy.deepcopy(res_conv4), copy.deepcopy(res_p_conv5))
        self.b3 = nn.Sequential(copy.deepcopy(res_conv4), copy.deepcopy(res_p_conv5))
        for name in ["b1", "b2", "b21", "b22", "b3", "b31", "b32", "b33"]:
            setattr(self, f"{name}_head", Head(out_ch, emb, num_classes))
        self.has_extra_bn = extra_bn
        if extra_bn:
            self.heads_extra_bn_b1 = nn.BatchNorm2d(out_ch)
            self.heads_extra_bn_b2 = nn.BatchNorm2d(out_ch)
            self.heads_extra_bn_b3 = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        f = self.backbone(x)
        b1 = self.b1(f)
        b2 = self.b2(f)
        b3 = self.b3(f)
        if self.has_extra_bn:
            b1, b2, b3 = self.heads_extra_bn_b1(b1), self.heads_extra_bn_b2(b2), self.heads_extra_bn_b3(b3)
        b21, b22 = torch.chunk(b2, 2, dim=2)
        b31, b32, b33 = torch.chunk(b3, 3, dim=2)
        return torch.cat([
            self.b1_head(b1), self.b2_head(b2), self.b3_head(b3), self.b21_head(b21),
            self.b22_head(b22), self.b31_head(b31), self.b32_head(b32), self.b33_head(b33),
        ], dim=1)


def np_save(name, arr):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(arr, dtype=np.float32))


def main():
    check_against_torchvision()
    os.makedirs(OUT, exist_ok=True)
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    np_save("input.npy", x.numpy())
    manifest = {
        "generator": "tools/gen_backbone_fixtures.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "input": "input.npy",
        "variants": {},
    }
    try:
        import torchvision

        manifest["versions"]["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    models = {}
    for seed, (name, (bottleneck, blocks, width, last_stride, stem, ibn)) in enumerate(VARIANTS.items()):
        model = ResNet(bottleneck, blocks, width, last_stride, stem, ibn).eval()
        # The fast-reid variant shares the weights of "bottleneck".
        randomize(model, torch.Generator().manual_seed(100 + (1 if name == "bottleneck_fr" else seed)))
        with torch.inference_mode():
            out = model(x)
        models[name] = model
        torch.save(model.state_dict(), os.path.join(OUT, f"{name}.pth"))
        np_save(f"{name}.out.npy", out.numpy())
        manifest["variants"][name] = {
            "bottleneck": bottleneck,
            "blocks": blocks,
            "base_width": width,
            "last_stride": last_stride,
            "stem": stem,
            "ibn": ibn,
            "weights": f"{name}.pth",
            "output": f"{name}.out.npy",
            "output_shape": list(out.shape),
        }
    sd = models["bottleneck"].state_dict()
    gen = torch.Generator().manual_seed(7)

    # Torchvision layout in safetensors.
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(OUT, "bottleneck.safetensors"))
    # An ImageNet-style classifier beside the trunk: `fc.*` is unexpected
    # for a trunk unless allowed.
    with_fc = {k: v.contiguous() for k, v in sd.items()}
    with_fc["fc.weight"] = torch.randn(3, models["bottleneck"].inplanes, generator=torch.Generator().manual_seed(3))
    with_fc["fc.bias"] = torch.zeros(3)
    save_file(with_fc, os.path.join(OUT, "bottleneck_fc.safetensors"))
    import safetensors

    manifest["versions"]["safetensors"] = safetensors.__version__
    c = models["bottleneck"].inplanes

    def rnd(*shape):
        return torch.randn(*shape, generator=gen)

    # LUPerson MoCo v2 snapshot (DDP-wrapped MoCo: encoder_q / encoder_k with
    # the MLP head replacing fc, queue buffers).
    def moco_state(extra_encoder=None, extra_module=None):
        state = {}
        for enc in ["encoder_q", "encoder_k"]:
            for k, v in sd.items():
                state[f"module.{enc}.{k}"] = v.clone()
            head = {"fc.0.weight": rnd(c, c), "fc.0.bias": rnd(c), "fc.2.weight": rnd(8, c), "fc.2.bias": rnd(8)}
            head.update(extra_encoder or {})
            for k, v in head.items():
                state[f"module.{enc}.{k}"] = v
        state["module.queue"] = F.normalize(rnd(8, 32), dim=0)
        state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
        state.update(extra_module or {})
        return state

    lup = moco_state()
    torch.save(
        {"epoch": 200, "arch": "resnet50", "state_dict": lup, "optimizer": {"state": {}, "param_groups": [{"lr": 0.3, "momentum": 0.9, "params": [0, 1]}]}},
        os.path.join(OUT, "lup_moco.pth"),
        # The legacy (pre-1.6, non-zip) serialisation, as 2020-era snapshots
        # may use; exercises the reader's second container format.
        _use_new_zipfile_serialization=False,
    )
    pnl_extra = {
        "classifier.0.weight": rnd(16, c),
        "classifier.0.bias": rnd(16),
        "classifier.2.weight": rnd(5, 16),
        "classifier.2.bias": rnd(5),
        "projection.0.weight": rnd(c, c),
        "projection.0.bias": rnd(c),
        "projection.2.weight": rnd(8, c),
        "projection.2.bias": rnd(8),
    }
    pnl = moco_state(pnl_extra, {"module.queue_id": -torch.ones(32, 1, dtype=torch.long), "module.prototypes": torch.zeros(5, 8)})
    torch.save({"epoch": 90, "arch": "resnet50", "state_dict": pnl, "optimizer": {"state": {}}}, os.path.join(OUT, "lup_nl.pth"), _use_new_zipfile_serialization=False)

    # CION / ReIDZoo pre-training checkpoint (DINO-style, DDP-wrapped).
    def cion_net(prefix):
        net = {f"{prefix}backbone.{k}": v.clone() for k, v in sd.items()}
        net.update(
            {
                f"{prefix}head.mlp.0.weight": rnd(16, c),
                f"{prefix}head.mlp.0.bias": rnd(16),
                f"{prefix}head.mlp.2.weight": rnd(16, 16),
                f"{prefix}head.mlp.2.bias": rnd(16),
                f"{prefix}head.mlp.4.weight": rnd(8, 16),
                f"{prefix}head.mlp.4.bias": rnd(8),
                f"{prefix}head.last_layer.weight_g": torch.ones(33, 1),
                f"{prefix}head.last_layer.weight_v": rnd(33, 8),
            }
        )
        return net

    args = argparse.Namespace(arch="resnet50_ibn", output_dim=65336, lr=0.0005, batch_size_per_gpu=64, epochs=100)
    torch.save(
        {
            "student": cion_net("module."),
            "teacher": cion_net("module."),
            "optimizer": {"state": {}, "param_groups": []},
            "epoch": 100,
            "args": args,
            "Loss": {"center": torch.zeros(1, 33)},
            "fp16_scaler": {"scale": 65536.0},
        },
        os.path.join(OUT, "cion.pth"),
    )
    torch.save({"teacher": cion_net(""), "epoch": 100, "args": args}, os.path.join(OUT, "cion_nobn_prefix.pth"))

    # fast-reid: backbone with fast-reid stem + BNNeck head + classifier.
    fr_sd = models["bottleneck_fr"].state_dict()
    neck = nn.BatchNorm1d(c)
    randomize(neck, gen)
    num_classes = 5
    weight = rnd(num_classes, c) * 0.1
    fr_model = {f"backbone.{k}": v.clone() for k, v in fr_sd.items()}
    fr_model.update({f"heads.bottleneck.0.{k}": v.clone() for k, v in neck.state_dict().items()})
    fr_model["heads.weight"] = weight
    torch.save({"model": fr_model, "optimizer": {"state": {}}, "scheduler": {"last_epoch": 59}, "iteration": 6000}, os.path.join(OUT, "fastreid.pth"))
    old = {f"backbone.{k}": v.clone() for k, v in fr_sd.items()}
    old.update({f"heads.bnneck.{k}": v.clone() for k, v in neck.state_dict().items()})
    old["heads.classifier.weight"] = weight
    old["pixel_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    old["pixel_std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    torch.save({"model": old}, os.path.join(OUT, "fastreid_old.pth"))
    neck.eval()
    with torch.inference_mode():
        fmap = models["bottleneck_fr"](x)
        pooled = fmap.mean(dim=(2, 3))
        bn_feat = neck(pooled)
        labels = torch.tensor([1, 3])
        sim = F.linear(F.normalize(bn_feat), F.normalize(weight))
        s, m = 64.0, 0.35
        alpha_p = torch.clamp_min(-sim + 1 + m, 0.0)
        alpha_n = torch.clamp_min(sim + m, 0.0)
        s_p = s * alpha_p * (sim - (1 - m))
        s_n = s * alpha_n * (sim - m)
        one_hot = F.one_hot(labels, num_classes).bool()
        logits = torch.where(one_hot, s_p, s_n)
    np_save("fastreid_head.out.npy", bn_feat.numpy())
    np_save("fastreid_logits.npy", logits.numpy())
    np.save(os.path.join(OUT, "fastreid_labels.npy"), labels.numpy().astype(np.int64))
    # TransReID (CION fine-tuning): `base.*` trunk, BatchNorm1d `bottleneck`
    # with frozen bias, bias-free Linear `classifier`; saved as a bare
    # state dict. Post-BN feature of the GAP for the head test.
    tr_neck = nn.BatchNorm1d(c)
    randomize(tr_neck, torch.Generator().manual_seed(400))
    tr = {f"base.{k}": v.clone() for k, v in sd.items()}
    tr.update({f"bottleneck.{k}": v.clone() for k, v in tr_neck.state_dict().items()})
    tr["classifier.weight"] = torch.randn(4, c, generator=torch.Generator().manual_seed(401)) * 0.001
    torch.save(tr, os.path.join(OUT, "transreid.pth"))
    tr_neck.eval()
    with torch.inference_mode():
        np_save("transreid_head.out.npy", tr_neck(models["bottleneck"](x).mean(dim=(2, 3))).numpy())
    manifest["layouts"] = {
        "bottleneck.safetensors": "bottleneck",
        "bottleneck_fc.safetensors": "bottleneck",
        "lup_moco.pth": "bottleneck",
        "lup_nl.pth": "bottleneck",
        "cion.pth": "bottleneck",
        "cion_nobn_prefix.pth": "bottleneck",
        "fastreid.pth": "bottleneck_fr",
        "fastreid_old.pth": "bottleneck_fr",
        "transreid.pth": "bottleneck",
    }
    # MGN (fast-reid, LUPerson fork with EXTRA_BN): trunk blocks [1, 1, 2, 3]
    # (layer3[1:] non-empty, layer4 of 3 blocks as res_p_conv5 needs),
    # width 1, input 128x32 so the branch maps are 8 rows high and
    # torch.chunk(3) gives 3/3/2 rows.
    trunk = ResNet(True, [1, 1, 2, 3], 1, 1, "fastreid", None)
    randomize(trunk, torch.Generator().manual_seed(300))
    mgn = MGN(trunk, 8, 5).eval()
    randomize(mgn, torch.Generator().manual_seed(301))
    with torch.no_grad():
        for name, mod in mgn.named_modules():
            if isinstance(mod, GemP):
                mod.p.fill_(2.5)
    xm = torch.randn(2, 3, 128, 32, generator=torch.Generator().manual_seed(302))
    np_save("mgn_input.npy", xm.numpy())
    with torch.inference_mode():
        np_save("mgn.out.npy", mgn(xm).numpy())
    torch.save({"model": mgn.state_dict(), "iteration": 60}, os.path.join(OUT, "mgn.pth"))
    manifest["mgn"] = {"blocks": [1, 1, 2, 3], "base_width": 1, "embedding_dim": 8, "num_classes": 5, "extra_bn": True, "gem_p": 2.5, "input": "mgn_input.npy", "output": "mgn.out.npy", "weights": "mgn.pth"}
    manifest["fastreid_head"] = {"num_classes": num_classes, "scale": 64.0, "margin": 0.35, "labels": "fastreid_labels.npy"}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    total = 0
    for fname in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, fname))
        total += size
        print(f"{fname:32s} {size / 1024:8.1f} KiB")
    print(f"{'total':32s} {total / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
