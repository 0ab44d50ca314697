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

`--mode single`: one process, `torch.set_num_threads(1)`, no DataLoader
(the per-core figure). `--mode workers`: `torch.utils.data.DataLoader`
with `--workers` persistent worker processes (each single-threaded, the
default collate = `torch.stack`); the warm-up epochs start the workers.
Each timed run is one pass over every file.
"""

import argparse
import json
import time

import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image


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


def epoch_single(ds, batch):
    n = len(ds)
    for start in range(0, n, batch):
        x = torch.stack([ds[i][0] for i in range(start, min(n, start + batch))])
        assert x.dim() == 4


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
    a = p.parse_args()
    with open(a.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    ds = Files(paths, bot(a.height, a.width))
    times = []
    if a.mode == "single":
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            epoch_single(ds, a.batch)
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
    else:
        loader = torch.utils.data.DataLoader(
            ds, batch_size=a.batch, num_workers=a.workers, persistent_workers=True, shuffle=False
        )
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            for x, _ in loader:
                assert x.dim() == 4
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
