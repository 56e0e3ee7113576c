"""`python train.py -m ...` runs every job, keeps going past a failure, and summarises all."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from multihead.run_folder import MAX_JOB_FOLDER_NAME, job_folder_name
from tests.conftest import ROOT, SMALL


@pytest.mark.slow
def test_sweep_summary_lists_every_job_and_failures(tmp_path):
    overrides = [o for o in SMALL if not o.startswith("trainer.max_epochs")]
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "head=fused,split",
        "loss=bce,ce",
        # the second value fails in the job (a missing label column), not at composition
        "data.tasks.sex.column=sex,no_such_column",
        "trainer.max_epochs=2",
        *overrides,
        f"hydra.sweep.dir={tmp_path}",
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert len(summary) == 8
    assert set(zip(summary["head"], summary["loss"], strict=True)) == {
        (h, loss) for h in ("fused", "split") for loss in ("bce", "ce")
    }
    ok = summary[summary["status"] == "ok"]
    failed = summary[summary["status"] == "FAILED"]
    assert len(ok) == 4 and len(failed) == 4
    assert (failed["data.tasks.sex.column"] == "no_such_column").all()
    assert failed["error"].str.contains("no_such_column").all()
    for _, row in ok.iterrows():
        metrics = json.loads((tmp_path / row["job"] / "metrics.json").read_text())
        assert metrics["head"] == row["head"] and metrics["loss"] == row["loss"]
        assert row["age/balanced_accuracy"] == pytest.approx(
            metrics["tasks"]["age"]["balanced_accuracy"]
        )
    assert "sweep summary: 8 jobs" in run.stdout
    assert "4 of 8 jobs failed" in run.stdout


def test_long_job_folder_names_are_shortened_with_a_hash():
    short = "head=split,loss=ce"
    assert job_folder_name(short) == short
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    for name in (long_a, long_b, "é" * 150):  # two-byte characters are not cut in half
        shortened = job_folder_name(name)
        assert len(shortened.encode()) <= MAX_JOB_FOLDER_NAME
        assert shortened == job_folder_name(name)  # a re-run sweep finds the same folder
        assert shortened.startswith(name[:50]) and "~" in shortened
    assert job_folder_name(long_a) != job_folder_name(long_b)


@pytest.mark.slow
def test_a_sweep_with_long_overrides_runs(tmp_path):
    """A job folder named by all its overrides exceeded the file system's 255 bytes a name
    (`OSError: File name too long` before the first job); names are shortened instead."""
    space = (
        "+tune.space.head_weight_decay={key: model.head_decay, per_task: true, type: float, "
        "low: 1.0e-4, high: 1.0, log: true, models: [mlp, auto, linear]}"
    )
    cmd = [sys.executable, "train.py", "-m", "seed=0,1", *SMALL, "head=split", "tune=optuna"]
    cmd += ["tune.trials=1", "tune.folds=1", space, f"hydra.sweep.dir={tmp_path}"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert list(summary["status"]) == ["ok", "ok"]
    for job in summary["job"]:
        assert len(job.encode()) <= 255 and "~" in job
        assert (tmp_path / job / "metrics.json").is_file()
