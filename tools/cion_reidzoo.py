"""Shared by the generators that build fixtures from CION's own model code
(`tools/fixtures/gen_cion_*_fixtures.py`) and by `tools/onnx_export_check.py`:
importing CION_ReIDZoo's model files from a local checkout, and writing a
pre-training checkpoint the way CION's `CION_Pretrain/run.py` writes one.

Nothing of CION's code is copied here: the generators take the path of a
CION_ReIDZoo checkout (`--cion PATH`, the repository root, commit 7ac6fd7)
and import its files from there.

The environment has no timm. CION's model files import a few timm helpers;
`install_stubs` provides minimal stand-ins before they are imported:

* `trunc_normal_` -> `torch.nn.init.trunc_normal_` (initialisation only; every
  generator overwrites the weights with seeded values anyway);
* `DropPath` -> identity module (the generators compute in eval mode, where
  timm's `DropPath` is the identity);
* `to_2tuple`, `register_model` (identity decorator), ImageNet mean/std.

CION's `run.py` at 7ac6fd7 does not parse (the `--image_root` default misses
its opening quote), so its `main_parse_args` cannot be imported; the
checkpoint's `args` entry is an `argparse.Namespace` built here with the
fields the checkpoint needs to be read (`arch`, `output_dim`, ...): what
matters to a reader is that `args` is a pickled `argparse.Namespace`.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import types

import torch
import torch.nn as nn

CION_COMMIT = "7ac6fd7"


class _DropPathEval(nn.Module):
    """Stand-in for timm's DropPath in eval mode (the identity)."""

    def __init__(self, drop_prob=0.0, *args, **kwargs):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        assert not (self.training and self.drop_prob > 0), "stub DropPath: eval only"
        return x


def _to_2tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def install_stubs(force=False):
    """Registers stand-ins for the timm pieces CION's model files import, and
    for `data.dataloader` (imported by `run.py`, not needed here).

    Without `force` a real timm, when installed, is used instead. `force`
    (call it before anything imports timm) installs the stand-ins anyway:
    the weights a generator leaves at their initialisation then do not
    depend on timm's version (timm's `trunc_normal_` draws other numbers
    than torch's)."""
    if "timm" in sys.modules and not getattr(sys.modules["timm"], "_reid_stub", False):
        if force:
            raise RuntimeError("install_stubs(force=True) after a real timm was imported")
        return  # a real timm is installed and imported: use it
    if "timm" in sys.modules:
        return  # the stand-ins are installed
    if not force:
        try:
            import timm  # noqa: F401

            return
        except ImportError:
            pass

    def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
        return torch.nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)

    mods = {}
    for name in (
        "timm",
        "timm.models",
        "timm.models.layers",
        "timm.models.vision_transformer",
        "timm.models.registry",
        "timm.data",
    ):
        mods[name] = types.ModuleType(name)
        sys.modules[name] = mods[name]
    mods["timm"]._reid_stub = True
    mods["timm"].models = mods["timm.models"]
    mods["timm"].data = mods["timm.data"]
    mods["timm.models"].layers = mods["timm.models.layers"]
    mods["timm.models"].vision_transformer = mods["timm.models.vision_transformer"]
    mods["timm.models"].registry = mods["timm.models.registry"]
    layers = mods["timm.models.layers"]
    layers.trunc_normal_ = trunc_normal_
    layers.DropPath = _DropPathEval
    layers.to_2tuple = _to_2tuple
    mods["timm.models.vision_transformer"].trunc_normal_ = trunc_normal_
    mods["timm.models.registry"].register_model = lambda f: f
    mods["timm.data"].IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
    mods["timm.data"].IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def import_file(cion_root, rel_path, name):
    """Imports `rel_path` of the checkout `cion_root` as module `name`."""
    path = os.path.join(cion_root, rel_path)
    if not os.path.isfile(path):
        raise SystemExit("not a CION_ReIDZoo checkout (no %s): %s" % (rel_path, cion_root))
    install_stubs()
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pretrain_modules(cion_root):
    """CION_Pretrain's `utils` (MultiCropWrapper, has_batchnorms,
    get_params_groups), `models.Head` (DINOHead) and `loss`
    (GradualIdentityDINOLoss)."""
    utils = import_file(cion_root, "CION_Pretrain/utils.py", "cion_pretrain_utils")
    head = import_file(cion_root, "CION_Pretrain/models/Head.py", "cion_pretrain_head")
    loss = import_file(cion_root, "CION_Pretrain/loss.py", "cion_pretrain_loss")
    return utils, head, loss


def randomise_(module, generator):
    """Seeded non-trivial weights: every convolution / linear weight
    N(0, 1/fan_in), biases 0.1 N; BatchNorm and LayerNorm (also a model's
    own `LayerNorm` class) weight 1 + 0.2 N, bias 0.1 N; BatchNorm
    running mean 0.1 N, running var U(0.5, 1.5)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            elif (isinstance(m, (nn.LayerNorm, nn.GroupNorm)) or type(m).__name__ == "LayerNorm") \
                    and getattr(m, "weight", None) is not None:
                # (also the models' own channels-first LayerNorm classes)
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))


def calibrate_bn_(module, images):
    """Sets every BatchNorm's running statistics to those of `module`'s
    own activations on `images` (one training-mode pass with momentum 1),
    then perturbs them slightly (mean + 0.05 N, var x U(0.9, 1.1)), as a
    trained network's statistics roughly match its activations; without
    this, random weights through a deep BN network grow the activations
    by orders of magnitude."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    was_training = module.training
    module.train()
    for m in bns:
        m.momentum = 1.0
    with torch.no_grad():
        module(images)
    g = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        for m, (momentum, _) in zip(bns, saved):
            m.momentum = momentum
            m.running_mean.add_(0.05 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.mul_(0.9 + 0.2 * torch.rand(m.running_var.shape, generator=g))
    module.train(was_training)


class _DdpLike(nn.Module):
    """Only used when torch.distributed is unavailable: the `module.` prefix
    of DistributedDataParallel."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def _ddp(module):
    import torch.distributed as dist

    if dist.is_available():
        if not dist.is_initialized():
            fd, path = tempfile.mkstemp()
            os.close(fd)
            os.unlink(path)
            dist.init_process_group("gloo", init_method="file://" + path, rank=0, world_size=1)
        return nn.parallel.DistributedDataParallel(module)
    return _DdpLike(module)


def pretrain_checkpoint(cion_root, arch, make_backbone, seed, head_hidden=32, head_bottleneck=16,
                        out_dim=64, student_noise=0.05, calibration=None):
    """Builds student and teacher as CION's `run.py` does and returns
    `(save_dict, teacher_backbone)`.

    `run.py`: `MultiCropWrapper(backbone, DINOHead(embed_dim, output_dim,
    use_bn=use_bn_in_head))` for both (the wrapper sets `backbone.fc` and
    `backbone.head` to identities); when the model has BatchNorm it is
    converted to SyncBatchNorm and the teacher is DDP-wrapped too (keys
    `module.backbone.*`, else `backbone.*`); the student is always
    DDP-wrapped; the teacher starts from the student's weights; the file
    holds `student`, `teacher`, `optimizer`, `epoch`, `args`, `Loss` and
    `fp16_scaler`.

    Reduced here: the DINO head's widths (`hidden_dim`, `bottleneck_dim`,
    `output_dim`; the keys are CION's). SyncBatchNorm needs CUDA under DDP,
    so the BN model is checked to keep its keys under the conversion and
    DDP-wraps the plain BatchNorm model (same state-dict keys). After the
    teacher copies the student, one AdamW step on random gradients and
    `student_noise` move the student away, so a reader of the wrong
    dictionary fails. `calibration` (images): BatchNorm statistics from
    the backbone's own activations (`calibrate_bn_`).
    """
    utils, head_mod, loss_mod = pretrain_modules(cion_root)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    student = make_backbone()
    teacher = make_backbone()
    embed_dim = student.embed_dim if hasattr(student, "embed_dim") else student.num_features
    args = argparse.Namespace(
        arch=arch,
        output_dim=out_dim,
        norm_last_layer=True,
        use_bn_in_head=False,
        momentum_teacher=0.996,
        image_size=[256, 128],
        optimizer="adamw",
        lr=0.0005,
        epochs=100,
        use_fp16=True,
        seed=seed,
        output_dir="logs/" + arch,
    )
    student_head = head_mod.DINOHead(embed_dim, args.output_dim, use_bn=args.use_bn_in_head,
                                     hidden_dim=head_hidden, bottleneck_dim=head_bottleneck)
    teacher_head = head_mod.DINOHead(embed_dim, args.output_dim, use_bn=args.use_bn_in_head,
                                     hidden_dim=head_hidden, bottleneck_dim=head_bottleneck)
    student = utils.MultiCropWrapper(student, student_head)
    teacher = utils.MultiCropWrapper(teacher, teacher_head)
    randomise_(student, g)
    has_bn = utils.has_batchnorms(student)
    if has_bn and calibration is not None:
        calibrate_bn_(student.backbone, calibration)
    if has_bn:
        import copy

        # (the backbone alone: the weight-normed DINO head cannot be deep-copied)
        keys = list(student.backbone.state_dict().keys())
        synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(student.backbone))
        assert list(synced.state_dict().keys()) == keys
        teacher = _ddp(teacher)
        teacher_without_ddp = teacher.module
    else:
        teacher_without_ddp = teacher
    student = _ddp(student)
    teacher_without_ddp.load_state_dict(student.module.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False

    optimizer = torch.optim.AdamW(utils.get_params_groups(student))
    for p in student.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=g)
    optimizer.step()
    with torch.no_grad():
        for p in student.parameters():
            p.add_(student_noise * torch.randn(p.shape, generator=g))
    loss = loss_mod.GradualIdentityDINOLoss(out_dim=args.output_dim, ncrops=10)
    with torch.no_grad():
        loss.center.copy_(torch.randn(loss.center.shape, generator=g))
    save_dict = {
        "student": student.state_dict(),
        "teacher": teacher.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 100,
        "args": args,
        "Loss": loss.state_dict(),
        "fp16_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                        "growth_interval": 2000, "_growth_tracker": 17},
    }
    teacher_without_ddp.eval()
    return save_dict, teacher_without_ddp.backbone, has_bn


def slim(save_dict):
    """The entries of a `pretrain_checkpoint` dictionary that a reader
    needs (`teacher`, `epoch`, `args`): the file kept as a fixture."""
    return {k: save_dict[k] for k in ("teacher", "epoch", "args")}
