"""`logger=many` (CSV + W&B + TensorBoard) in a 2-job sweep, W&B offline without credentials.

The W&B runs are read back with wandb's own reader (`wandb leet inspect --json`, the tool that
ships with the library for .wandb transaction logs) and compared with the files each job wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from multihead.training.loggers import confusion_pairs, flatten_config, summary_metrics
from tests.report_sweep import run_sweep

OVERRIDES = [
    "debug=fast",
    "logger=many",
    "data.synthetic.n_samples=400",
    "data.synthetic.n_features=300",
    "data.synthetic.n_age_features=60",
    "model.trunk.hidden=[64]",
    "model.trunk.latent=32",
    "trainer.max_epochs=2",
    "callbacks.early_stopping=null",
]
EPOCHS = 2


def offline_env(home: Path) -> dict[str, str]:
    """No API key, no netrc, no terminal: what a fresh machine or CI has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), NETRC=str(home / "no-netrc"), WANDB_SILENT="true")
    return env


def leet(*args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in leet("--json", str(run_dir)).splitlines() if line]


def table(run_dir: Path, summary: dict, key: str) -> pd.DataFrame:
    """A logged W&B table, found through the path the run summary records for it."""
    data = json.loads((run_dir / "files" / summary[key]["path"]).read_text())
    return pd.DataFrame(data["data"], columns=data["columns"])


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    sweep = run_sweep(
        root / "sweep", ["head=fused,split", "loss=ce"], OVERRIDES, env=offline_env(root / "home")
    )
    jobs = []
    for job in sweep.job_dirs():
        (run_dir,) = (job / "wandb").glob("offline-run-*")  # exactly one W&B run per job
        jobs.append(
            (job, run_dir, records(run_dir), json.loads(leet("--summary", "--json", str(run_dir))))
        )
    return sweep, jobs


def test_one_finished_run_per_job_named_grouped_and_tagged(wandb_sweep):
    sweep, jobs = wandb_sweep
    assert "wandb sync" in sweep.stdout
    assert len(jobs) == 2
    ids = set()
    for job, _, recs, summary in jobs:
        head = json.loads((job / "metrics.json").read_text())["head"]
        (run,) = [r["run"] for r in recs if r["type"] == "run"]
        ids.add(run["run_id"])
        assert run["run_group"] == sweep.path.name
        assert run["display_name"].startswith(f"head={head} loss=ce")
        assert "logger=" not in run["display_name"] and "debug=" not in run["display_name"]
        assert set(run["tags"]) == {
            f"head={head}",
            "loss=ce",
            "weighting=fixed",
            "data=synthetic",
            "seed=0",
        }
        assert summary["state"] == "finished" and summary["exit_code"] == 0
        assert [r["exit"]["exit_code"] for r in recs if r["type"] == "exit"] == [0]
    assert len(ids) == 2  # wandb.finish() after each job: the second job is a new run


def test_resolved_config_is_flattened(wandb_sweep):
    from omegaconf import OmegaConf

    _, jobs = wandb_sweep
    for job, _, recs, _ in jobs:
        config: dict = {}
        for r in recs:
            if r["type"] == "config":
                config.update(r["config"].get("update", {}))
        saved = flatten_config(OmegaConf.to_container(OmegaConf.load(job / "config.yaml")))
        for key in (
            "head.name",
            "loss.name",
            "weighting.name",
            "seed",
            "model.trunk.latent",
            "data.synthetic.n_samples",
            "trainer.max_epochs",
        ):
            assert config[key] == saved[key], key
        assert config["head.name"] == json.loads((job / "metrics.json").read_text())["head"]


def test_per_epoch_scalars_and_summary_match_the_run_files(wandb_sweep):
    _, jobs = wandb_sweep
    for job, _, recs, summary in jobs:
        history = [r["history"]["item"] for r in recs if r["type"] == "history"]
        val = [h for h in history if "val/age/balanced_accuracy" in h]
        assert len(val) == EPOCHS
        logged = pd.read_csv(job / "csv" / "metrics.csv").dropna(
            subset=["val/age/balanced_accuracy"]
        )
        assert [h["val/age/balanced_accuracy"] for h in val] == pytest.approx(
            logged["val/age/balanced_accuracy"].tolist()
        )
        metrics = json.loads((job / "metrics.json").read_text())
        expected = summary_metrics(metrics)
        assert "test/sex/balanced_accuracy" in expected and "test/joint_accuracy" in expected
        for key, value in expected.items():
            assert summary["summary"][key] == pytest.approx(value), key


def test_confusion_matrices_and_tables_landed(wandb_sweep):
    _, jobs = wandb_sweep
    for job, run_dir, recs, summary in jobs:
        s = summary["summary"]
        predictions = pd.read_csv(job / "predictions.csv", dtype={"sample_id": str})
        logged = table(run_dir, s, "test/predictions")
        assert list(logged.columns) == list(predictions.columns)
        assert logged["sample_id"].astype(str).tolist() == predictions["sample_id"].tolist()
        per_class = table(run_dir, s, "test/per_class")
        for task in ("age", "sex"):
            mine = pd.read_csv(job / f"per_class_{task}.csv", dtype={"class": str})
            theirs = per_class[per_class["task"] == task].reset_index(drop=True)
            assert theirs["class"].astype(str).tolist() == mine["class"].tolist()
            for column in ("tp", "fp", "tn", "fn", "support"):
                assert theirs[column].astype(int).tolist() == mine[column].tolist(), column
            confusion = pd.read_csv(job / f"confusion_{task}.csv", index_col=0)
            plot = table(run_dir, s, f"test/{task}/confusion_matrix_table")
            counts = plot.pivot_table(
                index="Actual", columns="Predicted", values="nPredictions", aggfunc="sum"
            )
            counts = counts.reindex(
                index=confusion.index.astype(str), columns=confusion.columns.astype(str)
            ).fillna(0)
            assert (counts.to_numpy() == confusion.to_numpy()).all(), task
        panels = [
            r
            for r in recs
            if r["type"] == "config"
            and any(k.startswith("_wandb.visualize.test/") for k in r["config"].get("update", {}))
        ]
        assert len(panels) == 2  # a W&B confusion-matrix chart per task


def test_tensorboard_and_csv_loggers_ran_alongside(wandb_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, jobs = wandb_sweep
    for job, *_ in jobs:
        events = EventAccumulator(str(job / "tensorboard"))
        events.Reload()
        tags = events.Tags()["scalars"]
        assert "val/loss" in tags and "test/age/balanced_accuracy" in tags
        assert len(events.Scalars("val/loss")) == EPOCHS
        metrics = json.loads((job / "metrics.json").read_text())
        assert events.Scalars("test/age/balanced_accuracy")[-1].value == pytest.approx(
            metrics["tasks"]["age"]["balanced_accuracy"], rel=1e-6
        )
        assert (job / "csv" / "metrics.csv").exists()


def test_confusion_pairs_expand_counts_exactly():
    matrix = pd.DataFrame([[2, 0], [1, 3]], index=["a", "b"], columns=["a", "b"])
    true, pred = confusion_pairs(matrix)
    assert sorted(zip(true, pred, strict=True)) == [(0, 0), (0, 0), (1, 0), (1, 1), (1, 1), (1, 1)]


def test_run_name_and_group_come_from_the_hydra_job():
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from multihead.training.loggers import run_name, sweep_group

    hydra = OmegaConf.create(
        {
            "overrides": {
                "task": [
                    "head=split",
                    "logger=wandb",
                    "debug=fast",
                    "logger.wandb.project=x",
                    "seed=1",
                ]
            },
            "job": {"config": {"override_dirname": {"exclude_keys": ["experiment", "debug"]}}},
            "mode": RunMode.MULTIRUN,
            "sweep": {"dir": "/runs/multirun/2026-01-02_03-04-05"},
        }
    )
    assert run_name(hydra) == "head=split seed=1"
    assert sweep_group(hydra) == "2026-01-02_03-04-05"
    hydra.mode = RunMode.RUN
    assert sweep_group(hydra) is None  # a single run has no group
