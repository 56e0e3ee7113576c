"""Sweeps under Hydra's launcher plugins: `hydra/launcher=joblib` (jobs in parallel on this
machine) and `hydra/launcher=submitit_local` (submitit's job processes) give the same sweep
summary, failed jobs and report rows as the default one-after-another launcher, and each job
sets (and prints) its torch threads. A submitit job with several tasks trains on one rank
per task (CPU/gloo here) with exact test counts, its files written once, by rank 0."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from multihead.errors import ConfigError
from multihead.reporting.runs import load_runs
from multihead.run_folder import (
    BEST_CHECKPOINT,
    FINISHED_FACT,
    LAST_CHECKPOINT,
    read_confusion,
    read_metrics,
    read_predictions,
)
from multihead.training.hydra_callbacks import sweep_jobs
from multihead.training.launchers import (
    MAIN_PORTS,
    SubmititEnvironment,
    available_cores,
    main_port,
    parallel_jobs,
    spread_over_tasks,
    threads_per_job,
)
from multihead.training.run import evaluate_checkpoint
from multihead.training.validation import validate_config
from tests.conftest import compose_config
from tests.report_sweep import ROOT, SWEEP_OVERRIDES

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
LOCAL = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
BASIC = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
# two of the four jobs fail inside the job (a missing label column), as in test_sweep.py
GRID = ["head=fused,split", "data.tasks.sex.column=sex,no_such_column"]
TINY = [o for o in SWEEP_OVERRIDES if not o.startswith("data.cv.")] + ["logger=none"]
# parallel jobs print at once, so two messages may share a line: no greedy `.*`
THREADS = re.compile(r"torch threads per job: (\d+) \(([^)]*)\)")
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


# ------------------------------------------------------------- one job, several tasks (ranks)

TWO_TASKS = {**LOCAL, "tasks_per_node": 2, "nodes": 1, "gpus_per_node": 0, "cpus_per_task": 1}
#: what submitit_local sets in a job's task (submitit/local/local.py)
TASK_ENV = {
    "SUBMITIT_EXECUTOR": "local",
    "SUBMITIT_LOCAL_JOB_ID": "4242",
    "SUBMITIT_LOCAL_NTASKS": "2",
    "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
    "SUBMITIT_LOCAL_NODEID": "0",
    "SUBMITIT_LOCAL_GLOBALID": "1",
    "SUBMITIT_LOCAL_LOCALID": "1",
}
#: 401 samples: an odd test split (61), so padding or a sample counted twice would show
RANKS_OVERRIDES = [*TINY, "data.synthetic.n_samples=401", "trainer.devices=2"]
RANK_LINE = re.compile(r"rank (\d) of 2 \(submitit job")


@pytest.fixture
def in_a_task(monkeypatch):
    """This process looks like task 1 of a 2-task submitit_local job; rank-zero state restored."""
    from pytorch_lightning.utilities import rank_zero_only

    for name, value in TASK_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)


def test_the_ranks_come_from_submitits_job_environment(in_a_task):
    env = SubmititEnvironment()
    assert SubmititEnvironment.detect() and env.creates_processes_externally
    assert (env.global_rank(), env.local_rank(), env.node_rank(), env.world_size()) == (1, 1, 0, 2)
    assert env.main_address == "127.0.0.1" and env.main_port == main_port("4242")
    env.validate_settings(num_devices=2, num_nodes=1)
    with pytest.raises(ValueError, match="2 tasks"):
        env.validate_settings(num_devices=1, num_nodes=1)
    # every task of a job meets on one port; concurrent jobs draw their own
    ports = {main_port(str(job)) for job in range(4000, 4050)}
    assert main_port("4242") == main_port("4242") and len(ports) >= 49
    assert all(MAIN_PORTS[0] <= p <= MAIN_PORTS[1] for p in ports)


def test_outside_a_submitit_job_nothing_is_detected(monkeypatch):
    for name in TASK_ENV:
        monkeypatch.delenv(name, raising=False)
    assert not SubmititEnvironment.detect()


def test_a_job_of_two_tasks_trains_one_rank_per_task(in_a_task):
    from pytorch_lightning.utilities import rank_zero_only

    cfg = compose_config(RANKS_OVERRIDES)
    with pytest.raises(ConfigError, match="relaunches"):  # plain ddp outside a task job
        validate_config(compose_config([*RANKS_OVERRIDES, "+trainer.strategy=ddp"]))
    assert spread_over_tasks(cfg, {**TWO_TASKS, "tasks_per_node": 1}) == 1
    assert "plugins" not in cfg.trainer  # one task: the job is left as it is
    assert spread_over_tasks(cfg, TWO_TASKS) == 2
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 1
    assert rank_zero_only.rank == 1  # this task writes nothing
    validate_config(cfg)  # ddp is fine when the ranks are submitit's tasks


@pytest.mark.parametrize(
    "overrides,launcher,message",
    [
        ([], {}, "trainer.devices must be 2 too, got 1"),
        (["trainer.devices=3"], {}, "trainer.devices must be 2 too, got 3"),
        (["trainer.devices=2", "+trainer.num_nodes=2"], {}, "trainer.num_nodes must be 1"),
        (["trainer.devices=2", "trainer.accelerator=gpu"], {}, "gpus_per_node >= 2"),
        (["trainer.devices=2", "tune=optuna"], {}, "tune=optuna runs its trials in one"),
        (["trainer.devices=2", "trainer.accelerator=gpu"], {"gpus_per_node": 2}, None),
    ],
)
def test_a_job_of_several_tasks_refuses_what_it_cannot_spread(
    in_a_task, overrides, launcher, message
):
    cfg = compose_config([*TINY, *overrides])
    if message is None:  # the one that can be spread
        assert spread_over_tasks(cfg, {**TWO_TASKS, **launcher}) == 2
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        spread_over_tasks(cfg, {**TWO_TASKS, **launcher})


@pytest.mark.slow
def test_a_two_task_job_under_submitit_local_counts_exactly(tmp_path):
    """`hydra.launcher.tasks_per_node=2 trainer.devices=2`: both tasks train as the two ranks
    of one job (gloo); rank 0 alone writes; the test counts sum to the odd test split and
    equal the checkpoint's, re-evaluated on one process."""
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "head=fused",
        *RANKS_OVERRIDES,
        "hydra/launcher=submitit_local",
        "hydra.launcher.tasks_per_node=2",
        f"hydra.sweep.dir={tmp_path}",
    ]
    started = time.perf_counter()
    run = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - started
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    (job,) = [p for p in tmp_path.iterdir() if (p / ".hydra").is_dir()]
    logs = {
        int(p.name.split("_")[1]): p.read_text()
        for p in (tmp_path / ".submitit").rglob("*_log.out")
    }
    assert sorted(logs) == [0, 1]
    for rank, log in logs.items():  # each task was its own rank of the job's process group
        assert RANK_LINE.findall(log) == [str(rank)], log[-2000:]
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log, log[-2000:]
    assert "test metrics:" in logs[0] and "test metrics:" not in logs[1]
    assert "trained " not in logs[1]

    metrics = read_metrics(job)
    assert metrics["world_size"] == 2 and FINISHED_FACT in metrics  # the full record
    n_test = metrics["split_sizes"]["test"]
    assert n_test % 2 == 1 and metrics["n_test"] == n_test
    assert sorted(p.name for p in (job / "checkpoints").iterdir()) == sorted(
        Path(name).name for name in (BEST_CHECKPOINT, LAST_CHECKPOINT)
    )
    assert len(read_predictions(job)) == n_test and read_predictions(job)["sample_id"].is_unique

    single = tmp_path / "one_process"
    one_process = compose_config([*TINY, "head=fused", "data.synthetic.n_samples=401"], single)
    evaluate_checkpoint(one_process, job / BEST_CHECKPOINT)
    for task in ("age", "sex"):
        confusion = read_confusion(job, task)
        assert int(confusion.to_numpy().sum()) == n_test == metrics["tasks"][task]["n"]
        pd.testing.assert_frame_equal(confusion, read_confusion(single, task))
    pd.testing.assert_frame_equal(read_predictions(job), read_predictions(single), atol=1e-6)
    print(f"2-task job under submitit_local: {seconds:.1f} s")
