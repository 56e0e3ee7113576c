"""Sweeps that resume: a finished job is skipped, an interrupted one resumes from its
`last.ckpt` and ends with exactly the metrics of an uninterrupted run (CPU, deterministic)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

import multihead.training.run as run_module
from multihead.data.datamodule import CohortDataModule, prepare_cohort
from multihead.run_folder import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    METRICS_FILE,
    REQUESTED_CONFIG_FILE,
)
from multihead.training.builders import build_module
from multihead.training.resume import RandomState
from multihead.training.run import train
from tests.conftest import ROOT, SMALL, compose_config
from tests.report_sweep import SWEEP_OVERRIDES

EPOCHS = ["trainer.max_epochs=4"]
VARYING = ("seconds",)  # facts of a run that differ between two runs of the same job


class Interrupted(RuntimeError):
    pass


class KillAfterEpoch(pl.Callback):
    """Stands for a job killed after epoch `epoch` (0-based) ended and was checkpointed: it
    raises as the next epoch starts (the checkpoint is saved last in an epoch's end)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch + 1:
            raise Interrupted(f"killed after epoch {self.epoch}")


def killing_after(monkeypatch, epoch: int) -> None:
    build = run_module.build_trainer

    def build_trainer(cfg, out):
        trainer = build(cfg, out)
        trainer.callbacks.insert(0, KillAfterEpoch(epoch))
        return trainer

    monkeypatch.setattr(run_module, "build_trainer", build_trainer)


def comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VARYING}


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_metrics(tmp_path, monkeypatch, capsys):
    whole = train(compose_config([*SMALL, *EPOCHS], tmp_path / "whole"))

    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        killing_after(patch, epoch=1)
        with pytest.raises(Interrupted):
            train(compose_config([*SMALL, *EPOCHS], out))
    assert (out / LAST_CHECKPOINT).exists() and not (out / METRICS_FILE).exists()
    assert torch.load(out / LAST_CHECKPOINT, weights_only=False)["epoch"] == 1

    capsys.readouterr()
    resumed = train(compose_config([*SMALL, *EPOCHS], out))
    assert "resuming from" in capsys.readouterr().out
    assert resumed["epochs_trained"] == whole["epochs_trained"] == 4
    assert comparable(resumed) == comparable(whole)
    assert (out / "predictions.csv").read_text() == (
        tmp_path / "whole" / "predictions.csv"
    ).read_text()

    # run again: finished, so skipped, and its files are left alone
    stamp = (out / METRICS_FILE).stat().st_mtime_ns
    again = train(compose_config([*SMALL, *EPOCHS], out))
    assert "already finished, skipped" in capsys.readouterr().out
    assert again == json.loads((out / METRICS_FILE).read_text())
    assert (out / METRICS_FILE).stat().st_mtime_ns == stamp


def test_pcgrad_step_count_travels_in_the_checkpoint():
    """PCGrad's projection order is seeded by its step count (with 3+ tasks the order
    matters): the checkpoint carries it, so a resumed run continues the same orders."""
    cfg = compose_config([*SMALL, "weighting=pcgrad"])
    cohort = prepare_cohort(cfg.data)
    trained = build_module(cfg, cohort, None)
    trained.weighting.steps = 7
    checkpoint: dict = {}
    trained.on_save_checkpoint(checkpoint)
    resumed = build_module(cfg, cohort, None)
    assert resumed.weighting.steps == 0
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.weighting.steps == 7
    assert resumed.weighting.counters() == trained.weighting.counters() == {"steps": 7}


@pytest.mark.slow
def test_without_the_saved_random_state_the_resumed_run_differs(tmp_path, monkeypatch):
    """The check above can fail: resuming without restoring the random generators (dropout,
    batch order) ends elsewhere."""
    whole = train(compose_config([*SMALL, *EPOCHS], tmp_path / "whole"))
    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        killing_after(patch, epoch=1)
        with pytest.raises(Interrupted):
            train(compose_config([*SMALL, *EPOCHS], out))
    monkeypatch.setattr(RandomState, "load_state_dict", lambda self, state: None)
    plain_load = CohortDataModule.load_state_dict

    def forget_shuffle(self, state):
        plain_load(self, {k: v for k, v in state.items() if k != "shuffle_state"})

    monkeypatch.setattr(CohortDataModule, "load_state_dict", forget_shuffle)
    resumed = train(compose_config([*SMALL, *EPOCHS], out))
    assert comparable(resumed) != comparable(whole)


def test_another_config_in_the_folder_is_not_resumed(tmp_path, monkeypatch, capsys):
    out = tmp_path / "job"
    cfg = compose_config([*SMALL, "trainer.max_epochs=2"], out)
    with monkeypatch.context() as patch:
        killing_after(patch, epoch=0)
        with pytest.raises(Interrupted):
            train(cfg)
    assert (out / REQUESTED_CONFIG_FILE).exists()
    capsys.readouterr()
    other = train(compose_config([*SMALL, "trainer.max_epochs=2", "seed=1"], out))
    printed = capsys.readouterr().out
    assert "resuming" not in printed and "skipped" not in printed
    assert other["seed"] == 1 and other["epochs_trained"] == 2
    # the earlier attempt's checkpoints were dropped, not kept beside this run's (best-v1)
    assert sorted(p.name for p in (out / CHECKPOINT_DIR).iterdir()) == ["best.ckpt", "last.ckpt"]
    assert other["best_checkpoint"] == BEST_CHECKPOINT


def test_a_datamodule_restores_its_shuffling_order():
    cohort = prepare_cohort(compose_config(SMALL).data)
    first = CohortDataModule(cohort, 64, 256, shuffle_seed=3)
    loader = first.train_dataloader()
    _ = [b["index"] for b in loader]  # epoch 0
    saved = first.state_dict()
    want = [b["index"] for b in loader]  # epoch 1
    second = CohortDataModule(cohort, 64, 256, shuffle_seed=3)
    second.load_state_dict(saved)
    got = [b["index"] for b in second.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))


@pytest.mark.slow
def test_a_rerun_sweep_skips_finished_jobs_and_resumes_the_others(tmp_path):
    tiny = [o for o in SWEEP_OVERRIDES if not o.startswith("data.cv.")] + ["logger=none"]
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "head=fused,split",
        *tiny,
        f"hydra.sweep.dir={tmp_path}",
    ]

    def sweep() -> subprocess.CompletedProcess:
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        return run

    sweep()
    jobs = sorted(p for p in tmp_path.iterdir() if (p / METRICS_FILE).exists())
    assert len(jobs) == 2
    before = [json.loads((j / METRICS_FILE).read_text()) for j in jobs]
    (jobs[1] / METRICS_FILE).unlink()  # job 1 stopped before writing its results
    again = sweep()
    assert again.stdout.count("already finished, skipped") == 1
    assert again.stdout.count("resuming from") == 1
    after = [json.loads((j / METRICS_FILE).read_text()) for j in jobs]
    assert after[0] == before[0]
    assert comparable(after[1]) == comparable(before[1])
    assert "sweep summary: 2 jobs" in again.stdout
