"""Time of Integrated Gradients on the default cohort's test split, next to a forward pass.

    python scripts/benchmark_explain.py                 # 300 test samples x 5,000 features
    python scripts/benchmark_explain.py --steps 50 --threads 2 --method gxi

The default synthetic cohort (2,000 samples x 5,000 genes, 15% test: 300 samples) and the
default model (`model=mlp`, `head=fused`, `loss=bce`) are built as `python train.py` would;
the weights are the untrained ones, which costs the same time as trained ones. Printed: the
attribution time for every head, a plain forward pass of the same samples, their ratio, the
samples per batch and the largest interpolated block in MiB (batch x steps x features floats).
The goal in the issue: IG with 50 steps under 30 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from multihead import explain  # noqa: E402
from multihead.data.datamodule import prepare_cohort  # noqa: E402
from multihead.training.builders import build_module  # noqa: E402

GOAL_SECONDS = 30.0
MB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=explain.DEFAULT_STEPS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", choices=sorted(explain.METHODS), default="ig")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. model.trunk.latent=64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [*args.overrides, "logger=none", "paths.output_dir=/tmp/unused"])
    cohort = prepare_cohort(cfg.data)
    module = build_module(cfg, cohort, None).eval()
    test = cohort.splits["test"]
    x, labels = cohort.feature_rows(test), cohort.labels[test].numpy()
    n, p = x.shape

    with torch.no_grad():
        module(torch.from_numpy(x))  # warm-up: the first call allocates
        started = time.perf_counter()
        module(torch.from_numpy(x))
        forward = time.perf_counter() - started

    started = time.perf_counter()
    for j in range(len(cohort.tasks)):
        known = labels[:, j] >= 0
        explain.head_attributions(module, j, x[known], labels[known, j], args.method, args.steps)
    took = time.perf_counter() - started

    steps = args.steps if args.method == "ig" else 1
    rows = explain.batch_rows(p, steps)
    print(
        f"{explain.METHODS[args.method]}, {args.steps} steps, {n} samples x {p} features, "
        f"{len(cohort.tasks)} heads, {args.threads} threads"
    )
    print(
        f"  attributions: {took:.2f} s (goal < {GOAL_SECONDS:.0f} s: "
        f"{'met' if took < GOAL_SECONDS else 'MISSED'})"
    )
    print(f"  forward pass: {forward * 1000:.1f} ms; ratio {took / forward:.0f}x")
    print(f"  {rows} samples per batch: at most {rows * steps * p * 4 / MB:.0f} MiB interpolated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
