"""Test results of one run: collected from the metrics on every rank, written by rank 0 into
the run folder (metrics.json, confusion and per-class tables, predictions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multihead.data.datamodule import PreparedCohort
from multihead.metrics.collapse import TEST_LOSS, UNINFORMED_LOSS
from multihead.metrics.evaluation import EvaluationMetrics
from multihead.metrics.per_class import per_class_table
from multihead.models.losses.multitask import MultiTaskLoss
from multihead.run_folder import (
    PREDICTIONS_FILE,
    confusion_file,
    confusion_plot_file,
    per_class_file,
    write_metrics,
)


@dataclass
class TestResults:
    scalars: dict[str, float]
    confusion: dict[str, np.ndarray]
    stat_scores: dict[str, np.ndarray]
    index: np.ndarray
    probs: np.ndarray  # classes of the tasks that have probabilities, concatenated
    loss_name: str
    preds: np.ndarray | None = None  # (n, tasks) decoded classes; None: argmax of probs
    years: np.ndarray | None = None  # (n, tasks) point estimates in raw units, NaN where none
    has_probabilities: dict[str, bool] | None = None  # None: every task has them
    task_losses: dict[str, dict[str, float]] | None = None  # task -> its loss, uninformed's


def collect_test_results(metrics: EvaluationMetrics, loss: MultiTaskLoss) -> TestResults:
    """Compute everything; collective under DDP, so every rank must call it."""
    scalars = metrics.compute_scalars()
    confusion = {n: m.confusion.compute().cpu().numpy() for n, m in metrics.tasks.items()}
    stats = {n: m.stat_scores().cpu().numpy() for n, m in metrics.tasks.items()}
    stored = metrics.predictions.compute()

    def to_numpy(t):
        return None if t is None else t.cpu().numpy()

    return TestResults(
        scalars,
        confusion,
        stats,
        to_numpy(stored.index),
        to_numpy(stored.probs),
        loss.name,
        preds=to_numpy(stored.preds),
        years=to_numpy(stored.years),
        has_probabilities={n: m.probabilistic for n, m in metrics.tasks.items()},
        task_losses=metrics.task_loss_means() if metrics.task_losses is not None else None,
    )


def nested_scalars(scalars: dict[str, float], task_names: list[str]) -> dict:
    """`age/accuracy` keys -> {"tasks": {"age": {"accuracy": ...}}, "joint_accuracy": ...}."""
    out: dict = {"tasks": {name: {} for name in task_names}}
    for key, value in scalars.items():
        task, _, metric = key.partition("/")
        if metric:
            out["tasks"][task][metric] = value
        else:
            out[key] = value
    return out


def predictions_frame(results: TestResults, cohort: PreparedCohort) -> pd.DataFrame:
    """One row per test sample: id, true and predicted class per task, and every probability."""
    frame = pd.DataFrame({"sample_id": [cohort.sample_ids[i] for i in results.index]})
    labels = cohort.labels.numpy()[results.index]
    values = cohort.values.numpy()[results.index].astype(float)
    start = 0
    for j, task in enumerate(cohort.tasks):
        has_probs = (results.has_probabilities or {}).get(task.name, True)
        probs = results.probs[:, start : start + task.num_classes] if has_probs else None
        start += task.num_classes if has_probs else 0
        classes = np.asarray(task.classes, dtype=object)
        true = labels[:, j]
        pred = probs.argmax(axis=1) if results.preds is None else results.preds[:, j]
        frame[f"{task.name}_true"] = np.where(true >= 0, classes[np.maximum(true, 0)], None)
        frame[f"{task.name}_pred"] = classes[pred]
        if task.is_binned:  # years: what the MAE compares (see TaskMetrics.update)
            mids = np.asarray(task.midpoints, dtype=float)
            value = values[:, j]
            frame[f"{task.name}_true_value"] = np.where(
                true >= 0, np.where(np.isnan(value), mids[np.maximum(true, 0)], value), np.nan
            )
        given = results.years is not None and not np.isnan(results.years[:, j]).all()
        if given:
            frame[f"{task.name}_pred_value"] = results.years[:, j]  # e.g. regression years
        elif task.is_binned:
            frame[f"{task.name}_pred_value"] = probs @ mids if probs is not None else mids[pred]
        for k, name in enumerate(task.classes if has_probs else ()):
            frame[f"{task.name}_p[{name}]"] = probs[:, k]
    return frame


def write_test_artifacts(
    out: Path, results: TestResults, cohort: PreparedCohort, plots: bool = False
) -> None:
    """The run folder's test files; `plots`: each task's confusion PNG too (drawing takes
    longer than the rest of a small job's test, so by default the sweep report draws them)."""
    out.mkdir(parents=True, exist_ok=True)
    task_names = [t.name for t in cohort.tasks]
    summary = nested_scalars(results.scalars, task_names)
    # top-level "loss" names the loss (head/loss/weighting describe the run); its value is here
    summary["test_loss"] = summary.pop("loss", None)
    summary["loss_name"] = results.loss_name
    summary["n_test"] = int(len(results.index))
    for task in cohort.tasks:
        matrix = results.confusion[task.name]
        summary["tasks"][task.name]["n"] = int(matrix.sum())
        if results.task_losses is not None:  # compared in multihead.metrics.collapse
            losses = results.task_losses[task.name]
            summary["tasks"][task.name][TEST_LOSS] = losses["loss"]
            summary["tasks"][task.name][UNINFORMED_LOSS] = losses["uninformed"]
        frame = pd.DataFrame(
            matrix,
            index=pd.Index(task.classes, name="true"),
            columns=pd.Index(task.classes, name="predicted"),
        )
        frame.to_csv(out / confusion_file(task.name))
        if plots:
            from multihead.reporting.plots import plot_confusion  # matplotlib: only if used

            plot_confusion(
                matrix,
                list(task.classes),
                f"{task.name}: test confusion matrix",
                out / confusion_plot_file(task.name),
            )
        per_class_table(results.stat_scores[task.name], list(task.classes)).to_csv(
            out / per_class_file(task.name), index=False
        )
    predictions_frame(results, cohort).to_csv(out / PREDICTIONS_FILE, index=False)
    write_metrics(out, summary)
