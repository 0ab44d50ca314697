#!/usr/bin/env python3
"""PyTorch side of `benches/loader.rs`: times PIL decoding + torchvision's
BoT training transforms + batching on a list of JPEG files and prints one
JSON line.

    bench_loader_torch.py --list files.txt --batch 64 --height 256 --width 128 \
        --mode single --warmup 1 --runs 1
    bench_loader_torch.py --list files.txt --mode workers --workers 2 ...

The pipeline is what `TrainTransform::bot` does, in torchvision terms:
`Image.open(p).convert("RGB")`, `Resize((H, W), BICUBIC)`,
`RandomHorizontalFlip(0.5)`, `Pad(10, fill=0)`, `RandomCrop((H, W))`,
`ToTensor()`, `Normalize(ImageNet)`, `RandomErasing(p=0.5, scale=(0.02,
0.33), ratio=(0.3, 3.3), value=0)` (fast-reid erases with the mean before
normalising, which is 0 after it), then `torch.stack` per batch.

`--pipeline moco|pnl|cion` times the pre-training views instead (what
`reid_data::views` draws; the upstream pipelines, written in torchvision
terms from their definitions):
- `moco`: LUPerson's `TwoCropsTransform` of `get_lup_transformer('ori-cj+sre')`
  (LUPerson `lup_moco.py` / `lup_transforms.py`): twice
  `RandomResizedCrop((256, 128), scale=(0.2, 1))`, `RandomGrayscale(0.2)`,
  PIL Gaussian blur with radius U(0.1, 2) at p 0.5, flip, `ToTensor`,
  `Normalize`, random erasing (area U(0.02, 0.6), aspect U(0.3, 1/0.3), fill 0);
- `pnl`: LUPerson-NL's weak view (`Resize((256, 128), BICUBIC)`, `Pad(10)`,
  `RandomCrop`, flip, `ToTensor`, `Normalize`) and strong view (the `moco`
  view);
- `cion`: CION_ReIDZoo `CION_Pretrain/data/aug.py`'s multi-crop: 2 global
  `RandomResizedCrop((256, 128), scale=(0.8, 1), ratio=(0.4, 0.6), BICUBIC)`
  and 8 local `((128, 64), scale=(0.05, 0.8))` crops, each flip,
  `ColorJitter(0.4, 0.4, 0.2, 0.1)` at p 0.8, `RandomGrayscale(0.2)`, PIL
  blur (p 1 / 0.1 + solarize p 0.2 / 0.5), `ToTensor`, `Normalize`.
Each view is stacked into its own `[batch, 3, h, w]` tensor.

`--mode single`: one process, `torch.set_num_threads(1)`, no DataLoader
(the per-core figure). `--mode workers`: `torch.utils.data.DataLoader`
with `--workers` persistent worker processes (each single-threaded, the
default collate = `torch.stack`); the warm-up epochs start the workers.
Each timed run is one pass over every file.
"""

import argparse
import json
import random
import time

import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps


def bot(height, width):
    return T.Compose(
        [
            T.Resize((height, width), interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(0.5),
            T.Pad(10, fill=0),
            T.RandomCrop((height, width)),
            T.ToTensor(),
            T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            T.RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0),
        ]
    )


class PilBlur:
    """PIL `ImageFilter.GaussianBlur` with a radius drawn from U(lo, hi), as
    LUPerson's and CION's `GaussianBlur` classes apply it."""

    def __init__(self, lo=0.1, hi=2.0):
        self.lo, self.hi = lo, hi

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.lo, self.hi)))


class Solarize:
    """PIL `ImageOps.solarize` (threshold 128) with probability `p`."""

    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LUPERSON = ([0.3525, 0.3106, 0.3140], [0.2660, 0.2522, 0.2505])


def lup_view():
    return T.Compose(
        [
            T.RandomResizedCrop((256, 128), scale=(0.2, 1.0)),
            T.RandomGrayscale(0.2),
            T.RandomApply([PilBlur()], p=0.5),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(*LUPERSON),
            T.RandomErasing(p=0.5, scale=(0.02, 0.6), ratio=(0.3, 1 / 0.3), value=0),
        ]
    )


def pnl_weak():
    return T.Compose(
        [
            T.Resize((256, 128), interpolation=T.InterpolationMode.BICUBIC),
            T.Pad(10, fill=0),
            T.RandomCrop((256, 128)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(*LUPERSON),
        ]
    )


def cion_crop(size, scale, blur_p, solarize_p=0.0):
    steps = [
        T.RandomResizedCrop(size, scale=scale, ratio=(0.4, 0.6), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(0.5),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(0.2),
        T.RandomApply([PilBlur()], p=blur_p),
    ]
    if solarize_p > 0:
        steps.append(Solarize(solarize_p))
    return T.Compose(steps + [T.ToTensor(), T.Normalize(*IMAGENET)])


class Views:
    """Several pipelines applied to one image: a list of tensors."""

    def __init__(self, pipelines):
        self.pipelines = pipelines

    def __call__(self, img):
        return [p(img) for p in self.pipelines]


def views(name):
    if name == "moco":
        v = lup_view()
        return Views([v, v])
    if name == "pnl":
        return Views([pnl_weak(), lup_view()])
    glob1 = cion_crop((256, 128), (0.8, 1.0), 1.0)
    glob2 = cion_crop((256, 128), (0.8, 1.0), 0.1, solarize_p=0.2)
    local = cion_crop((128, 64), (0.05, 0.8), 0.5)
    return Views([glob1, glob2] + [local] * 8)


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            img = im.convert("RGB")
        return self.transform(img), 0


def stack(items):
    """One `[batch, 3, h, w]` tensor per view (a plain tensor for one view)."""
    if isinstance(items[0], list):
        return [torch.stack([it[v] for it in items]) for v in range(len(items[0]))]
    return torch.stack(items)


def epoch_single(ds, batch):
    n = len(ds)
    for start in range(0, n, batch):
        x = stack([ds[i][0] for i in range(start, min(n, start + batch))])
        assert (x[0] if isinstance(x, list) else x).dim() == 4


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--list", required=True, help="text file, one image path per line")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--mode", choices=["single", "workers"], default="single")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipeline", choices=["bot", "moco", "pnl", "cion"], default="bot")
    a = p.parse_args()
    with open(a.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    torch.set_num_threads(1)
    transform = bot(a.height, a.width) if a.pipeline == "bot" else views(a.pipeline)
    ds = Files(paths, transform)
    times = []
    if a.mode == "single":
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            epoch_single(ds, a.batch)
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
    else:
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=a.batch,
            num_workers=a.workers,
            persistent_workers=True,
            shuffle=False,
            collate_fn=lambda items: (stack([x for x, _ in items]), None),
        )
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            for x, _ in loader:
                assert (x[0] if isinstance(x, list) else x).dim() == 4
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "times_s": times,
                "images": len(paths),
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "pillow": PIL.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
