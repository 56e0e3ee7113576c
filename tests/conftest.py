"""Shared test helpers: compose the real Hydra config with small, fast overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_SILENT", "true")

# The shared real ALL cohort (tests using it skip when ../shared is absent), read as a user would
ALL_LEUKEMIA = ROOT.parent / "shared" / "data" / "all_leukemia"
ALL_LEUKEMIA_OVERRIDES = [
    "data=table",
    f"data.matrix={ALL_LEUKEMIA / 'expression.csv.gz'}",
    f"data.samples={ALL_LEUKEMIA / 'samples.csv'}",
    "data.labels.missing=mask",
    "data.tasks.age.bins=quantile:3",
    "data.preprocess.top_k=500",
    "data.batch_size=16",
]

# Tests that only a CUDA GPU can run: skipped without one; `scripts/gpu_check.sh` runs them
# (`pytest -m cuda`). Use as `pytestmark = NEEDS_CUDA` or `pytest.param(..., marks=NEEDS_CUDA)`.
NEEDS_CUDA = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# A small cohort that still has structure; training on it takes a few seconds.
SMALL = [
    "debug=fast",
    "logger=none",
    "data.synthetic.n_samples=500",
    "data.synthetic.n_features=400",
    "data.synthetic.n_age_features=100",
    "trainer.max_epochs=8",
    "callbacks.early_stopping=null",
]


def config_options(group: str) -> list[str]:
    """The choices of a config group, as `python train.py GROUP=...` accepts them."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def run_train_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python train.py ARGS` from the project root, output captured."""
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """The config `python train.py OVERRIDES` would get, with the output folder fixed."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        extra = (
            [f"paths.output_dir={output_dir}"]
            if output_dir is not None
            else ["paths.output_dir=/tmp/unused"]
        )
        return compose(config_name="train", overrides=[*overrides, *extra])


@pytest.fixture
def small_config(tmp_path: Path):
    def make(*overrides: str, out: str = "run") -> DictConfig:
        return compose_config([*SMALL, *overrides], tmp_path / out)

    return make


# the one small sweep the report and notebook tests share (session-scoped, run on first use)
from tests.report_sweep import report_sweep  # noqa: E402,F401
