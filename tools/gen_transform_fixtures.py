"""Generate PIL resize fixtures for reid-data's transform parity tests.

Writes small PNGs into crates/reid-data/tests/fixtures/transforms/:
  src_<name>.png                    the source image (seeded, smooth + noise)
  <name>_<filter>_<H>x<W>.png       PIL Image.resize((W, H), filter) of it
and manifest.json listing every case and the package versions used.

Run: /work/main/.venv/bin/python tools/gen_transform_fixtures.py
"""

import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "reid-data", "tests", "fixtures", "transforms")


def make_image(rng, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            127 + 100 * np.sin(x / 7.0 + y / 13.0),
            127 + 100 * np.cos(y / 5.0),
            255 * (x + y) / (h + w),
        ],
        axis=-1,
    )
    noise = rng.integers(-20, 21, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(4)
    sources = {"market": (128, 64), "tall": (250, 100), "big": (300, 150)}
    targets = [(256, 128), (64, 32)]
    filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
    cases = []
    for name, (h, w) in sources.items():
        arr = make_image(rng, h, w)
        Image.fromarray(arr, "RGB").save(os.path.join(OUT, f"src_{name}.png"))
        for th, tw in targets:
            for fname, f in filters.items():
                out = Image.fromarray(arr, "RGB").resize((tw, th), f)
                fn = f"{name}_{fname}_{th}x{tw}.png"
                out.save(os.path.join(OUT, fn))
                cases.append(
                    {"source": f"src_{name}.png", "filter": fname, "height": th, "width": tw, "expected": fn}
                )
    manifest = {
        "generator": "tools/gen_transform_fixtures.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "pillow": PIL.__version__},
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
