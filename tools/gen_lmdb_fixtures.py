"""Writes LUPerson / LUPerson-NL LMDB fixtures the way the upstream Python
converters do (python `lmdb` + `pickle`), so the Rust reader is tested on
databases it did not write itself.

- LUPerson: env at <out>/LUPerson/ (data.mdb), keys '{i:02d}_{j:02d}_{k:04d}_{m:08d}',
  values = raw JPEG bytes, keys.pkl = a plain pickled list (what convert_lmdb.py writes).
- LUPerson-NL: env at <out>/LUPerson-NL/lmdb/, keys '{vid:05d}_{pid:06d}_{frame:07d}_{obj:02d}',
  keys.pkl = {"keys": [...], "pids": [...]} (convert_lmdb.py of LUPerson-NL).
manifest.json records every key, its value's length and FNV-1a 64 hash, and the image size.

Usage: .venv/bin/python tools/gen_lmdb_fixtures.py [out_dir]
"""

import io
import json
import os
import pickle
import shutil
import sys

import lmdb
import numpy as np
from PIL import Image


def jpeg(seed, h, w):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return format(h, "016x")


def write(env_dir, items):
    os.makedirs(env_dir, exist_ok=True)
    env = lmdb.open(env_dir, map_size=1 << 22)
    with env.begin(write=True) as txn:
        for k, v in items:
            txn.put(k.encode("ascii"), v)
    env.close()
    lock = os.path.join(env_dir, "lock.mdb")
    if os.path.exists(lock):
        os.remove(lock)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "crates", "reid-data", "tests", "fixtures", "lmdb")
    shutil.rmtree(out, ignore_errors=True)
    manifest = {"python_lmdb": lmdb.__version__, "pickle_protocol": pickle.DEFAULT_PROTOCOL}

    lup_keys = ["00_00_0000_00000000", "00_00_0000_00000001", "00_01_0000_00000000",
                "01_00_0002_00000000", "01_00_0002_00000001"]
    lup = [(k, jpeg(i, 16 + 2 * i, 8 + i)) for i, k in enumerate(lup_keys)]
    write(os.path.join(out, "LUPerson"), lup)
    with open(os.path.join(out, "LUPerson", "keys.pkl"), "wb") as f:
        pickle.dump(lup_keys, f)

    nl_keys = ["00001_000000_0000000_00", "00001_000000_0000005_00", "00001_000001_0000005_01",
               "00002_000002_0000010_00", "00002_000002_0000011_00", "00002_000003_0000011_01"]
    nl_pids = [int(k.split("_")[1]) for k in nl_keys]
    nl = [(k, jpeg(100 + i, 20, 10)) for i, k in enumerate(nl_keys)]
    write(os.path.join(out, "LUPerson-NL", "lmdb"), nl)
    with open(os.path.join(out, "LUPerson-NL", "keys.pkl"), "wb") as f:
        pickle.dump({"keys": nl_keys, "pids": nl_pids}, f)

    def entries(items):
        res = []
        for k, v in items:
            im = Image.open(io.BytesIO(v))
            res.append({"key": k, "len": len(v), "fnv1a64": fnv1a64(v),
                        "width": im.width, "height": im.height})
        return res

    manifest["luperson"] = entries(lup)
    manifest["luperson_nl"] = {"entries": entries(nl), "pids": nl_pids}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
