#!/usr/bin/env bash
# The checks only a CUDA GPU can make, on any machine with one (no network, a few minutes):
#   1. the tests marked `cuda` (skipped elsewhere): a training step without host syncs for
#      every loss x weighting on the GPU, data.placement=device vs host on the GPU, `auto`
#      placing a small cohort there, and a 1-epoch `trainer=gpu` run with exact counts;
#   2. the fit benchmark on the GPU (project fit vs a raw PyTorch loop).
# Run from the repository root: `bash scripts/gpu_check.sh` (uses .venv/bin/python when it
# exists, else `python` on PATH). Exits non-zero, saying so, when no GPU is visible.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi

"$PYTHON" - <<'PY'
import sys

try:
    import torch
except ImportError:
    sys.exit(f"gpu_check: {sys.executable} has no torch; run `make install` first")
if not torch.cuda.is_available():
    sys.exit(
        f"gpu_check: no CUDA GPU is visible (torch {torch.__version__}, "
        f"built for CUDA {torch.version.cuda}); nothing was checked"
    )
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY

echo "gpu_check: tests marked cuda"
"$PYTHON" -m pytest -q -p no:cacheprovider -m cuda -rs tests
echo "gpu_check: benchmark on the GPU"
"$PYTHON" scripts/benchmark.py --device cuda --features 20000 --batch 512 --samples 20000
echo "gpu_check: all passed"
