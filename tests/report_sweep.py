"""One small real sweep (2 heads x 2 losses x 3 CV folds) shared by the report and notebook tests.

It is run once per test session through `train.py -m`, exactly as a user would, so the report
is tested on the folders, multirun.yaml and CSV logs that Hydra and Lightning really write.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEADS = ("fused", "split")
LOSSES = ("bce", "ce")
FOLDS = (0, 1, 2)  # 3-fold cross-validation: three data splits, the replicates
SEEDS = (0,)
# debug=fast-sized: every age bin populated in every split, seconds per job
SWEEP_OVERRIDES = [
    "debug=fast",
    "logger=csv",
    "data.synthetic.n_samples=400",
    "data.synthetic.n_features=300",
    "data.synthetic.n_age_features=60",
    "model.trunk.hidden=[64]",
    "model.trunk.latent=32",
    "trainer.max_epochs=3",
    "callbacks.early_stopping=null",
    f"data.cv.folds={len(FOLDS)}",
]


@dataclass(frozen=True)
class Sweep:
    path: Path
    stdout: str

    def job_dirs(self) -> list[Path]:
        return sorted(
            (p for p in self.path.iterdir() if (p / "metrics.json").exists()),
            key=lambda p: int(p.name.split("_", 1)[0]),
        )


def run_sweep(
    path: Path, grid: list[str], overrides: list[str], env: dict | None = None, timeout: int = 900
) -> Sweep:
    """`python train.py -m GRID OVERRIDES hydra.sweep.dir=PATH`; fails the test if it fails."""
    cmd = [sys.executable, "train.py", "-m", *grid, *overrides, f"hydra.sweep.dir={path}"]
    run = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return Sweep(path, run.stdout)


@pytest.fixture(scope="session")
def report_sweep(tmp_path_factory) -> Sweep:
    grid = [
        f"head={','.join(HEADS)}",
        f"loss={','.join(LOSSES)}",
        f"data.cv.fold={','.join(map(str, FOLDS))}",
    ]
    return run_sweep(tmp_path_factory.mktemp("report_sweep"), grid, SWEEP_OVERRIDES)
