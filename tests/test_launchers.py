"""Sweeps under Hydra's launcher plugins: `hydra/launcher=joblib` (jobs in parallel on this
machine) and `hydra/launcher=submitit_local` (submitit's job processes) give the same sweep
summary, failed jobs and report rows as the default one-after-another launcher, and each job
sets (and prints) its torch threads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from multihead.reporting.runs import load_runs
from multihead.training.hydra_callbacks import sweep_jobs
from multihead.training.launchers import available_cores, parallel_jobs, threads_per_job
from tests.report_sweep import ROOT, SWEEP_OVERRIDES

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
LOCAL = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
BASIC = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
# two of the four jobs fail inside the job (a missing label column), as in test_sweep.py
GRID = ["head=fused,split", "data.tasks.sex.column=sex,no_such_column"]
TINY = [o for o in SWEEP_OVERRIDES if not o.startswith("data.cv.")] + ["logger=none"]
THREADS = re.compile(r"torch threads per job: (\d+) \((.*)\)")
FACTS = ["seconds"]  # run facts that may differ between two runs of the same job


def test_threads_per_job_follow_the_launcher():
    assert parallel_jobs(-1, 16) == 16 and parallel_jobs(-2, 16) == 15
    assert parallel_jobs(4, 16) == 4 and parallel_jobs(64, 16) == 64
    assert threads_per_job({**JOBLIB, "n_jobs": 2}, 1) == (1, "1 cores / 2 parallel jobs")
    assert threads_per_job({**JOBLIB, "n_jobs": 4}, 16) == (4, "16 cores / 4 parallel jobs")
    assert threads_per_job({**JOBLIB, "n_jobs": 3}, 16)[0] == 5
    assert threads_per_job({**JOBLIB, "n_jobs": -1}, 16)[0] == 1
    assert threads_per_job({**LOCAL, "cpus_per_task": 6}, 16) == (6, "cpus_per_task=6")
    assert threads_per_job({**LOCAL, "cpus_per_task": None}, 16) is None
    assert threads_per_job(BASIC, 16) is None


def sweep(path: Path, *launcher: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "train.py", "-m", *GRID, *TINY, *launcher, f"hydra.sweep.dir={path}"]
    start = time.perf_counter()
    run = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    return run, time.perf_counter() - start


def summary(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path / "sweep_summary.csv").drop(columns=FACTS, errors="ignore")
    return frame.sort_values("job").reset_index(drop=True)


def check_sweep(path: Path, run: subprocess.CompletedProcess) -> pd.DataFrame:
    """Exit status 1 (two jobs failed), a 4-row summary that matches every metrics.json and
    names every failure, and the report's loader seeing the same four jobs."""
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-3000:]
    assert "2 of 4 jobs failed" in run.stdout
    table = summary(path)
    assert len(table) == 4
    failed = table[table["status"] == "FAILED"]
    assert (failed["data.tasks.sex.column"] == "no_such_column").all() and len(failed) == 2
    assert failed["error"].str.contains("no_such_column").all()
    for _, row in table[table["status"] == "ok"].iterrows():
        metrics = json.loads((path / row["job"] / "metrics.json").read_text())
        assert row["age/balanced_accuracy"] == pytest.approx(
            metrics["tasks"]["age"]["balanced_accuracy"]
        )
    runs = load_runs(path)
    assert sorted(runs["job"]) == sorted(table["job"])
    assert (runs.set_index("job")["status"] == table.set_index("job")["status"].str.lower()).all()
    return table


def same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    numbers = [c for c in a.columns if "/" in c or c == "joint_accuracy"]
    pd.testing.assert_frame_equal(a[["job", "status", *numbers]], b[["job", "status", *numbers]])


@pytest.mark.slow
def test_joblib_sweep_matches_the_sequential_one(tmp_path):
    sequential, seq_seconds = sweep(tmp_path / "basic")
    parallel, par_seconds = sweep(tmp_path / "joblib", "hydra/launcher=joblib")
    same_results(
        check_sweep(tmp_path / "basic", sequential), check_sweep(tmp_path / "joblib", parallel)
    )
    printed = THREADS.findall(parallel.stdout + parallel.stderr)
    assert len(printed) == 4, parallel.stdout[-2000:]
    cores = available_cores()
    jobs = parallel_jobs(2, cores)  # conf/hydra/launcher/joblib.yaml: n_jobs: 2
    assert {p for p in printed} == {
        (str(max(1, cores // jobs)), f"{cores} cores / {jobs} parallel jobs")
    }
    assert not THREADS.search(sequential.stdout)  # the basic launcher leaves torch alone
    print(f"4-job sweep: sequential {seq_seconds:.1f} s, joblib (n_jobs=2) {par_seconds:.1f} s")


@pytest.mark.slow
def test_submitit_local_sweep_summary_failures_and_report(tmp_path):
    run, seconds = sweep(tmp_path, "hydra/launcher=submitit_local")
    check_sweep(tmp_path, run)
    logs = "".join(p.read_text() for p in (tmp_path / ".submitit").rglob("*_log.out"))
    assert THREADS.findall(logs) == [("1", "cpus_per_task=1")] * 4
    print(f"4-job sweep under submitit_local: {seconds:.1f} s")


def test_the_summary_reads_the_sweeps_job_folders_from_disk(tmp_path):
    for name in ("10_b", "2_a", "3_beyond_the_plan", "custom", ".submitit", "notes"):
        (tmp_path / name).mkdir()
    for name in ("10_b", "2_a", "3_beyond_the_plan", "custom"):
        (tmp_path / name / ".hydra").mkdir()
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- head={name}\n")
    found = sweep_jobs(tmp_path, planned=None)
    assert [p.name for p, _ in found] == ["2_a", "3_beyond_the_plan", "10_b", "custom"]
    assert found[0][1] == ["head=2_a"]
    assert [p.name for p, _ in sweep_jobs(tmp_path, planned=3)] == ["2_a", "custom"]
