"""Each head x loss trains end to end, writes every artifact, and beats the majority class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import confusion_matrix

from multihead.training.run import train
from tests.conftest import ROOT, SMALL


@pytest.mark.parametrize("head", ["fused", "split"])
@pytest.mark.parametrize("loss", ["bce", "ce"])
def test_head_loss_beats_majority_class(small_config, head, loss):
    plots = head == "split"  # confusion PNGs only when asked for
    cfg = small_config(f"head={head}", f"loss={loss}", f"plots={str(plots).lower()}")
    metrics = train(cfg)
    out = cfg.paths.output_dir
    preds = pd.read_csv(f"{out}/predictions.csv", dtype={"sample_id": str})
    assert len(preds) == metrics["n_test"] == metrics["split_sizes"]["test"]
    for task in ("age", "sex"):
        majority = preds[f"{task}_true"].value_counts(normalize=True).iloc[0]
        accuracy = (preds[f"{task}_true"] == preds[f"{task}_pred"]).mean()
        assert metrics["tasks"][task]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
        assert accuracy > majority + 0.03, f"{head}+{loss} {task}: {accuracy} vs {majority}"
        # the confusion matrix on disk is the one the predictions imply
        conf = pd.read_csv(f"{out}/confusion_{task}.csv", index_col=0)
        classes = list(conf.columns)
        expected = confusion_matrix(preds[f"{task}_true"], preds[f"{task}_pred"], labels=classes)
        np.testing.assert_array_equal(conf.to_numpy(), expected)
        per_class = pd.read_csv(f"{out}/per_class_{task}.csv")
        assert per_class["support"].sum() == len(preds)
        assert (per_class["tp"] == np.diag(expected)).all()
        probs = preds[[c for c in preds.columns if c.startswith(f"{task}_p[")]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for name in (
        "config.yaml",
        "splits.csv",
        "checkpoints/best.ckpt",
        "informative_features.json",
    ):
        assert (Path(out) / name).exists(), name
    assert (Path(out) / "confusion_age.png").exists() == plots
    assert ("incoherent_rate" in metrics["tasks"]["age"]) == (loss == "bce")
    saved = json.loads((Path(out) / "metrics.json").read_text())
    assert saved["head"] == head and saved["loss"] == loss and saved["num_parameters"] > 0


def test_third_task_trains_decodes_and_is_measured(small_config):
    cfg = small_config(
        "head=fused",
        "loss=ce",
        "+data.tasks.batch={column: batch, classes: [batch1, batch2, batch3]}",
    )
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert list(metrics["tasks"]) == ["age", "sex", "batch"]
    preds = pd.read_csv(out / "predictions.csv")
    assert {"batch_true", "batch_pred", "batch_p[batch1]"} <= set(preds.columns)
    accuracy = (preds["batch_true"] == preds["batch_pred"]).mean()
    assert metrics["tasks"]["batch"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert (out / "confusion_batch.csv").exists() and (out / "per_class_batch.csv").exists()
    state = torch.load(out / metrics["best_checkpoint"], weights_only=False)
    n_classes = len(pd.read_csv(out / "confusion_age.csv", index_col=0)) + 2 + 3
    assert state["state_dict"]["net.head.linear.weight"].shape[0] == n_classes


def test_wandb_without_credentials_runs_offline_and_never_prompts(tmp_path):
    """No key, no netrc, no terminal input: the run finishes offline and says how to sync."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), NETRC=str(tmp_path / "no-netrc"))
    (tmp_path / "home").mkdir()
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "train.py",
        *SMALL,
        "trainer.max_epochs=1",
        "logger=wandb",
        f"hydra.run.dir={out}",
    ]
    run = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "wandb sync" in run.stdout
    assert (out / "metrics.json").exists()
    assert list((out / "wandb").glob("offline-run-*")), "no offline W&B run folder"
