"""What a W&B run gets beyond Lightning's per-epoch scalars, read from the files the run wrote.

At setup the resolved config (config.yaml) is sent flattened (`model.trunk.dropout`), so runs
can be filtered and grouped by any setting. After test: a W&B confusion matrix per task, the
per-class TP/FP/TN/FN table, the predictions table and the test metrics as run summary. The
files are the single source of truth: W&B shows exactly what metrics.json and the CSVs say.

Active only with `logger=wandb` or `logger=many` (the logger config adds this callback), and
only on rank 0 (the only process that writes the files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"


def flatten_config(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'model': {'trunk': {'dropout': 0.5}}} -> {'model.trunk.dropout': 0.5}; lists stay."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def summary_metrics(metrics: Mapping) -> dict[str, float]:
    """metrics.json as `test/<task>/<metric>` (+ joint accuracy, test size); nulls left out."""
    out = {
        f"test/{task}/{name}": value
        for task, values in (metrics.get("tasks") or {}).items()
        for name, value in values.items()
        if isinstance(value, (int, float))
    }
    for key in ("joint_accuracy", "n_test"):
        if isinstance(metrics.get(key), (int, float)):
            out[f"test/{key}"] = metrics[key]
    return out


def task_names(out: Path) -> list[str]:
    return [p.stem.removeprefix("confusion_") for p in sorted(out.glob("confusion_*.csv"))]


def confusion_pairs(matrix: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(true, predicted) class indices, one pair per test sample, from a confusion matrix."""
    counts = matrix.to_numpy(dtype=int)
    true, pred = np.nonzero(counts)
    reps = counts[true, pred]
    return np.repeat(true, reps).tolist(), np.repeat(pred, reps).tolist()


def per_class_frame(out: Path, tasks: list[str]) -> pd.DataFrame:
    """Every task's per-class table stacked, with a `task` column first."""
    frames = [
        pd.read_csv(out / f"per_class_{t}.csv", dtype={"class": str}).assign(task=t)
        for t in tasks
        if (out / f"per_class_{t}.csv").exists()
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["task", *[c for c in frame.columns if c != "task"]]]


def predictions_frame(out: Path, max_rows: int) -> pd.DataFrame:
    """predictions.csv, or a fixed random subset of `max_rows` rows when it is longer."""
    frame = pd.read_csv(out / "predictions.csv", dtype={"sample_id": str})
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=0).sort_index()
    return frame


def test_payload(out: Path, max_prediction_rows: int) -> dict[str, Any]:
    """The W&B objects to log for one run folder: confusion plots and the two tables."""
    import wandb

    payload: dict[str, Any] = {}
    tasks = task_names(out)
    for task in tasks:
        matrix = pd.read_csv(out / f"confusion_{task}.csv", index_col=0)
        true, pred = confusion_pairs(matrix)
        payload[f"test/{task}/confusion_matrix"] = wandb.plot.confusion_matrix(
            y_true=true,
            preds=pred,
            class_names=[str(c) for c in matrix.columns],
            title=f"{task}: test confusion matrix",
        )
    if tasks:
        payload["test/per_class"] = wandb.Table(dataframe=per_class_frame(out, tasks))
    if (out / "predictions.csv").exists():
        payload["test/predictions"] = wandb.Table(
            dataframe=predictions_frame(out, max_prediction_rows)
        )
    return payload


def wandb_run(trainer: pl.Trainer):
    """The W&B run behind the trainer's WandbLogger, or None when W&B is not logging."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return None


class WandbTestTables(Callback):
    """Sends the run's config at setup and its test files after test, to the W&B run."""

    def __init__(self, output_dir: str, max_prediction_rows: int = 10_000) -> None:
        self.output_dir = Path(output_dir)
        self.max_prediction_rows = int(max_prediction_rows)
        self._config_sent = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        path = self.output_dir / CONFIG_FILE
        if self._config_sent or not trainer.is_global_zero or not path.exists():
            return
        run = wandb_run(trainer)
        if run is not None:
            config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
            run.config.update(flatten_config(config), allow_val_change=True)
            self._config_sent = True

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not (self.output_dir / METRICS_FILE).exists():
            return
        run = wandb_run(trainer)
        if run is None:
            return
        payload = test_payload(self.output_dir, self.max_prediction_rows)
        run.log({**payload, "trainer/global_step": trainer.global_step})
        metrics = json.loads((self.output_dir / METRICS_FILE).read_text())
        run.summary.update(summary_metrics(metrics))
