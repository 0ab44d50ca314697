"""Generate PIL / torchvision fixtures for reid-data's pre-training view ops.

Writes small PNGs into crates/reid-data/tests/fixtures/views/:
  src_<name>.png          seeded source images (smooth gradients + noise, saturated
                          patches, grey patches, pure black / white)
  <name>_<op>_<tag>.png   torchvision-on-PIL / Pillow output of one op with fixed
                          parameters
and manifest.json listing every case (op, parameters, files), the
RandomResizedCrop fallback boxes torchvision computes, and the package versions.

Ops: grayscale (3 channels), brightness / contrast / saturation / hue
(torchvision.transforms.functional on PIL), solarize (PIL ImageOps, threshold
128), PIL ImageFilter.GaussianBlur(radius), resized crop (torchvision
F.resized_crop, bilinear and bicubic) and one fixed-parameter chain in the
order of the CION multi-crop pipeline.

Run: /work/main/.venv/bin/python tools/gen_view_fixtures.py
"""

import json
import math
import os
import sys

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter, ImageOps

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-data", "tests", "fixtures", "views")


def make_image(rng, h, w):
    """Smooth colour gradients + noise, with saturated, grey, black and white patches."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            127 + 120 * np.sin(x / 5.0 + y / 9.0),
            127 + 120 * np.cos(y / 4.0 - x / 11.0),
            255 * (x + 2 * y) / (w + 2 * h),
        ],
        axis=-1,
    )
    noise = rng.integers(-30, 31, size=(h, w, 3))
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    # Random colours in one band (hue / saturation corner cases).
    img[h // 3 : h // 3 + 4] = rng.integers(0, 256, size=(4, w, 3), dtype=np.uint8)
    # Grey patch (s = 0), pure primaries, black and white.
    img[0:3, 0:3] = rng.integers(0, 256, size=(3, 3, 1), dtype=np.uint8)
    img[h - 1, 0] = [0, 0, 0]
    img[h - 1, 1] = [255, 255, 255]
    img[h - 1, 2] = [255, 0, 0]
    img[h - 1, 3] = [0, 255, 0]
    img[h - 1, 4] = [0, 0, 255]
    img[h - 1, 5] = [255, 0, 255]
    img[h - 1, 6] = [1, 0, 0]
    img[h - 1, 7] = [254, 255, 255]
    return img


def save(img, name):
    img.save(os.path.join(OUT, name), optimize=True)
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".png"):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20261122)
    sources = {"a": (48, 24), "b": (40, 30)}
    cases = []
    def run(name, src, colour_only):
        src_file = save(src, f"src_{name}.png")
        h, w = src.height, src.width

        def case(op, tag, out, **params):
            fn = save(out, f"{name}_{op}_{tag}.png")
            cases.append({"source": src_file, "op": op, "params": params, "expected": fn})

        case("grayscale", "3", F.rgb_to_grayscale(src, num_output_channels=3))
        for f in [0.0, 0.6, 0.83, 1.37, 2.0]:
            case("brightness", f"{f}", F.adjust_brightness(src, f), factor=f)
        for f in [0.0, 0.6, 0.91, 1.4, 2.5]:
            case("contrast", f"{f}", F.adjust_contrast(src, f), factor=f)
        for f in [0.0, 0.8, 1.13, 1.2, 3.0]:
            case("saturation", f"{f}", F.adjust_saturation(src, f), factor=f)
        for f in [-0.5, -0.1, -0.0371, 0.0, 0.05, 0.1, 0.5]:
            case("hue", f"{f}", F.adjust_hue(src, f), factor=f)
        case("solarize", "128", ImageOps.solarize(src, 128), threshold=128)
        if colour_only:
            return
        for r in [0.1, 0.37, 0.5, 1.0, 1.5, 2.0, 6.0, 20.0, 60.0]:
            case("gaussian_blur", f"{r}", src.filter(ImageFilter.GaussianBlur(radius=r)), radius=r)
        crops = [
            # top, left, height, width, out_h, out_w
            (3, 2, 30, 15, 16, 8),
            (0, 0, h, w, 52, 26),
            (5, 4, 21, 9, 32, 16),
            (10, 1, 7, 20, 12, 6),
        ]
        for top, left, ch, cw, oh, ow in crops:
            for interp, iname in [
                (T.InterpolationMode.BILINEAR, "bilinear"),
                (T.InterpolationMode.BICUBIC, "bicubic"),
            ]:
                out = F.resized_crop(src, top, left, ch, cw, [oh, ow], interp)
                case(
                    "resized_crop",
                    f"{top}_{left}_{ch}_{cw}_{oh}x{ow}_{iname}",
                    out,
                    top=top,
                    left=left,
                    height=ch,
                    width=cw,
                    out_height=oh,
                    out_width=ow,
                    interpolation=iname,
                )
        # One fixed-parameter chain in CION's multi-crop order:
        # resized crop -> hflip -> colour jitter (fixed order) -> grayscale? -> blur -> solarize.
        chain = {
            "crop": [2, 1, 36, 20],
            "out_size": [32, 16],
            "interpolation": "bicubic",
            "flip": True,
            "jitter_order": [2, 0, 3, 1],
            "brightness": 1.23,
            "contrast": 0.71,
            "saturation": 0.86,
            "hue": -0.064,
            "grayscale": False,
            "blur_radius": 0.83,
            "solarize": True,
        }
        img = F.resized_crop(src, *chain["crop"], chain["out_size"], T.InterpolationMode.BICUBIC)
        img = F.hflip(img)
        for fn_id in chain["jitter_order"]:
            if fn_id == 0:
                img = F.adjust_brightness(img, chain["brightness"])
            elif fn_id == 1:
                img = F.adjust_contrast(img, chain["contrast"])
            elif fn_id == 2:
                img = F.adjust_saturation(img, chain["saturation"])
            else:
                img = F.adjust_hue(img, chain["hue"])
        img = img.filter(ImageFilter.GaussianBlur(radius=chain["blur_radius"]))
        img = ImageOps.solarize(img)
        case("chain", "cion", img, **chain)

    for name, (h, w) in sources.items():
        run(name, Image.fromarray(make_image(rng, h, w), "RGB"), False)
    # 1024 uniformly random colours: HSV / blend corner cases.
    run("c", Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8), "RGB"), True)

    # torchvision RandomResizedCrop fallback (central crop clamped to the
    # ratio range): force it with an unreachable scale.
    fallbacks = []
    for (h, w) in [(100, 30), (30, 100), (64, 48), (256, 128), (7, 5)]:
        for ratio in [(3.0 / 4.0, 4.0 / 3.0), (0.4, 0.6), (0.25, 0.4)]:
            dummy = Image.new("RGB", (w, h))
            i, j, ch, cw = T.RandomResizedCrop.get_params(dummy, scale=[5.0, 6.0], ratio=list(ratio))
            fallbacks.append(
                {"height": h, "width": w, "ratio": list(ratio), "box": [i, j, ch, cw]}
            )

    manifest = {
        "generator": "tools/gen_view_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
        "cases": cases,
        "rrc_fallback": fallbacks,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
