"""`python train.py -m ...` runs every job, keeps going past a failure, and summarises all."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

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
