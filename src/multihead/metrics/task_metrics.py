"""All metrics of one task. Probabilities in, never logits; every average is explicit."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
    MulticlassStatScores,
)

from multihead.data.labels import MISSING
from multihead.tasks import Task

ECE_BINS = 15


class TaskMetrics(nn.Module):
    """Scalars, confusion matrix and per-class stat scores for one task.

    Samples whose label is missing (-1) are left out, so each task is measured on the samples
    that have its label.
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        k = task.num_classes
        self.task = task
        self.scalars = MetricCollection({
            "accuracy": MulticlassAccuracy(k, average="micro"),
            "balanced_accuracy": MulticlassRecall(k, average="macro"),
            "f1_macro": MulticlassF1Score(k, average="macro"),
            # per class, averaged in compute_scalars: torchmetrics' macro scores a class with
            # no positives as 0 and still divides by k, which understates AUROC
            "auroc_macro": MulticlassAUROC(k, average="none", thresholds=None),
            "ece": MulticlassCalibrationError(k, n_bins=ECE_BINS, norm="l1"),
        })
        self.confusion = MulticlassConfusionMatrix(k)
        self.stat_scores = MulticlassStatScores(k, average=None)
        self.ordinal = MetricCollection({
            "mae_years": MeanMetric(),
            "within_one_bin_accuracy": MeanMetric(),
        }) if task.is_binned else None
        if task.is_binned:
            self.register_buffer("midpoints", torch.tensor(task.midpoints, dtype=torch.float32),
                                 persistent=False)

    def update(self, probs: torch.Tensor, target: torch.Tensor, value: torch.Tensor) -> None:
        keep = target != MISSING
        probs, target, value = probs[keep], target[keep], value[keep]
        if target.numel() == 0:
            return
        self.scalars.update(probs, target)
        self.confusion.update(probs, target)
        self.stat_scores.update(probs, target)
        if self.ordinal is not None:
            pred = probs.argmax(dim=1)
            true_years = torch.where(torch.isnan(value), self.midpoints[target], value)
            self.ordinal["mae_years"].update((self.midpoints[pred] - true_years).abs())
            self.ordinal["within_one_bin_accuracy"].update(
                ((pred - target).abs() <= 1).float())

    def compute_scalars(self) -> dict[str, float]:
        scalars = self.scalars.compute()
        present = self.stat_scores.compute()[:, 4] > 0  # support: classes with positives
        scalars["auroc_macro"] = scalars["auroc_macro"][present].mean()
        out = {k: float(v) for k, v in scalars.items()}
        if self.ordinal is not None:
            out.update({k: float(v) for k, v in self.ordinal.compute().items()})
        return out

    def reset(self) -> None:
        for m in (self.scalars, self.confusion, self.stat_scores, self.ordinal):
            if m is not None:
                m.reset()
