"""Experiment loggers from `logger=`, and what a W&B run gets beyond Lightning's scalars.

W&B never prompts: offline when it has no credentials. `WandbTestTables` sends what a W&B run
gets beyond Lightning's per-epoch scalars, read from the files the run wrote: at setup the
resolved config (config.yaml) is sent flattened (`model.trunk.dropout`), so runs
can be filtered and grouped by any setting. After test: a W&B confusion matrix per task, the
per-class TP/FP/TN/FN table, the predictions table and the test metrics as run summary. The
files are the single source of truth: W&B shows exactly what metrics.json and the CSVs say.

Active only with `logger=wandb` or `logger=many` (the logger config adds this callback), and
only on rank 0 (the only process that writes the files).
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import Logger
from rich.console import Console

from multihead.metrics.names import JOINT
from multihead.run_folder import (
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    confusion_tasks,
    per_class_file,
    read_confusion,
    read_metrics,
    read_per_class,
    read_predictions,
)

WANDB_HOST = "api.wandb.ai"


def wandb_has_credentials() -> bool:
    """An API key in the environment or a netrc entry: the two places wandb looks."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.exists() and netrc.netrc(path).authenticators(WANDB_HOST) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def _hydra_runtime():
    """Hydra's runtime config in a Hydra run or sweep, else None (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def run_name(hydra_cfg=None) -> str | None:
    """The job's command-line overrides, e.g. `head=split loss=ce seed=1`: the same words
    as the job folder (without the keys it leaves out) and without the choice of logger;
    None (W&B picks a name) when there are none."""
    hydra_cfg = hydra_cfg if hydra_cfg is not None else _hydra_runtime()
    if hydra_cfg is None:
        return None
    excluded = set(hydra_cfg.job.config.override_dirname.exclude_keys)

    def shown(override: str) -> bool:
        key = override.lstrip("+~").split("=", 1)[0]
        return key not in excluded and key.split(".", 1)[0] not in ("logger", "hydra")

    return " ".join(str(o) for o in hydra_cfg.overrides.task if shown(str(o))) or None


def sweep_group(hydra_cfg=None) -> str | None:
    """Jobs of one `-m` sweep share a W&B group named after the sweep folder."""
    from hydra.types import RunMode

    hydra_cfg = hydra_cfg if hydra_cfg is not None else _hydra_runtime()
    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hydra_cfg.sweep.dir)).name


def wandb_logger(
    save_dir: str,
    project: str,
    mode: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    **kwargs,
):
    """A WandbLogger whose mode is decided here, so a run without a key never blocks; named
    after the job's overrides and grouped by sweep unless `name`/`group` are given."""
    from pytorch_lightning.loggers import WandbLogger

    mode = mode or ("online" if wandb_has_credentials() else "offline")
    if mode == "offline":
        Console().print(
            f"[yellow]W&B: no credentials found, logging offline under {save_dir}/"
            "wandb; upload later with `wandb sync <run dir>`.[/yellow]"
        )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        mode=mode,
        name=name or run_name(),
        group=group or sweep_group(),
        tags=[str(t) for t in tags] if tags else None,
        **kwargs,
    )


def build_loggers(cfg: DictConfig | None) -> list[Logger]:
    """One logger per entry of the `logger` group (several with `logger=many`)."""
    if not cfg:
        return []
    return [instantiate(entry) for entry in cfg.values() if entry is not None]


def finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()


# ------------------------------------------------- W&B: config, test tables and summary


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
    for key in (JOINT, "n_test"):
        if isinstance(metrics.get(key), (int, float)):
            out[f"test/{key}"] = metrics[key]
    return out


def confusion_pairs(matrix: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(true, predicted) class indices, one pair per test sample, from a confusion matrix."""
    counts = matrix.to_numpy(dtype=int)
    true, pred = np.nonzero(counts)
    reps = counts[true, pred]
    return np.repeat(true, reps).tolist(), np.repeat(pred, reps).tolist()


def per_class_frame(out: Path, tasks: list[str]) -> pd.DataFrame:
    """Every task's per-class table stacked, with a `task` column first."""
    frames = [
        read_per_class(out, t).assign(task=t) for t in tasks if (out / per_class_file(t)).exists()
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["task", *[c for c in frame.columns if c != "task"]]]


def predictions_frame(out: Path, max_rows: int) -> pd.DataFrame:
    """predictions.csv, or a fixed random subset of `max_rows` rows when it is longer."""
    frame = read_predictions(out)
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=0).sort_index()
    return frame


def test_payload(out: Path, max_prediction_rows: int) -> dict[str, Any]:
    """The W&B objects to log for one run folder: confusion plots and the two tables."""
    import wandb

    payload: dict[str, Any] = {}
    tasks = confusion_tasks(out)
    for task in tasks:
        matrix = read_confusion(out, task)
        true, pred = confusion_pairs(matrix)
        payload[f"test/{task}/confusion_matrix"] = wandb.plot.confusion_matrix(
            y_true=true,
            preds=pred,
            class_names=[str(c) for c in matrix.columns],
            title=f"{task}: test confusion matrix",
        )
    if tasks:
        payload["test/per_class"] = wandb.Table(dataframe=per_class_frame(out, tasks))
    if (out / PREDICTIONS_FILE).exists():
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
        run.summary.update(summary_metrics(read_metrics(self.output_dir) or {}))
