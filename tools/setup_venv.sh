#!/usr/bin/env bash
# Creates the reference Python environment (.venv at the repository root)
# from tools/requirements.txt: what the fixture generators and the
# side-by-side benchmarks run with. Needs python3 (≥ 3.10) with venv and
# network access to PyPI. Re-running it updates an existing .venv to the
# pinned versions.
#
#   tools/setup_venv.sh            # → .venv
#   REID_VENV=/path tools/setup_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${REID_VENV:-.venv}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip >/dev/null
# From PyPI (torch's default Linux wheel; a CPU-only wheel works as well:
# every generator and benchmark runs on the CPU).
"$venv/bin/python" -m pip install -r tools/requirements.txt
"$venv/bin/python" - <<'PY'
import importlib
for name in ["torch", "torchvision", "numpy", "safetensors", "PIL", "timm", "lmdb", "onnx", "onnxruntime"]:
    m = importlib.import_module(name)
    print(f"{name:12} {getattr(m, '__version__', '?')}")
PY
echo "ready: $venv/bin/python (set REID_PYTHON to use another interpreter)"
