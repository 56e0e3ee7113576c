"""All metrics of one task. Every average is explicit.

Label metrics (accuracy, balanced accuracy, F1, confusion, per-class counts, within one bin)
judge the decoded class the loss predicts; AUROC and calibration judge the class
probabilities (calibration's top label is their argmax). A task whose loss gives no
probabilities (regression) has no AUROC or calibration: they are reported as None
(not applicable), never computed from made-up probabilities.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassCalibrationError, MulticlassConfusionMatrix
from torchmetrics.functional.classification.accuracy import _accuracy_reduce
from torchmetrics.functional.classification.f_beta import _fbeta_reduce

from multihead.data.labels import MISSING
from multihead.metrics.auroc import ClassAUROC
from multihead.metrics.names import ECE_BINS
from multihead.tasks import Task

PROBABILITY_METRICS = ("auroc_macro", "ece")
# torchmetrics' per-update checks of its inputs (classes in range, probabilities summing to
# 1) read values on the host and cost more than the update; labels are validated when the
# data are loaded and predictions come from the losses' decoders
CHECKED = False


def expected_years(probs: torch.Tensor | None, midpoints: torch.Tensor) -> torch.Tensor | None:
    """sum_k p_k mid_k: the point estimate in years of a class distribution over bins."""
    return None if probs is None else probs.float() @ midpoints


def balanced_accuracy(stat_scores: torch.Tensor) -> float:
    """Mean recall over the classes present in the true labels (scikit-learn's
    `balanced_accuracy_score`): a class that is predicted but never true does not count.
    `stat_scores`: per class [tp, fp, tn, fn, support]. NaN when no sample has a label."""
    tp, support = stat_scores[:, 0].double(), stat_scores[:, 4].double()
    present = support > 0
    if not bool(present.any()):
        return float("nan")
    return float((tp[present] / support[present]).mean())


class TaskMetrics(nn.Module):
    """Scalars, confusion matrix and per-class stat scores for one task.

    Samples whose label is missing (-1) are left out, so each task is measured on the samples
    that have its label.
    """

    def __init__(self, task: Task, probabilistic: bool = True) -> None:
        super().__init__()
        k = task.num_classes
        self.task = task
        self.probabilistic = probabilistic
        # every label metric comes from the confusion matrix: one update a batch
        self.confusion = MulticlassConfusionMatrix(k, validate_args=CHECKED)
        self.probability_scalars = (
            MetricCollection(
                {
                    # per class, averaged in compute_scalars: torchmetrics' macro scores a
                    # class with no positives as 0 and still divides by k (understates AUROC)
                    "auroc_macro": ClassAUROC(k),
                    "ece": MulticlassCalibrationError(
                        k, n_bins=ECE_BINS, norm="l1", validate_args=CHECKED
                    ),
                }
            )
            if probabilistic
            else None
        )
        self.ordinal = (
            MetricCollection(
                {
                    "mae_years": MeanMetric(),
                    "mae_years_argmax": MeanMetric(),
                    "within_one_bin_accuracy": MeanMetric(),
                }
            )
            if task.is_binned
            else None
        )
        if task.is_binned:
            self.register_buffer(
                "midpoints", torch.tensor(task.midpoints, dtype=torch.float32), persistent=False
            )

    def update(
        self,
        probs: torch.Tensor | None,
        target: torch.Tensor,
        value: torch.Tensor,
        preds: torch.Tensor | None = None,
        years: torch.Tensor | None = None,
    ) -> None:
        """`preds`: decoded classes (default: argmax of `probs`); `years`: a point estimate in
        raw units for the MAE (default: the expected years under `probs`, sum_k p_k mid_k, or
        the predicted bin's midpoint without probabilities)."""
        if preds is None:
            preds = probs.argmax(dim=1)
        keep = target != MISSING
        target, value, preds = target[keep], value[keep], preds[keep]
        if target.numel() == 0:
            return
        self.confusion.update(preds, target)
        if self.probability_scalars is not None:
            self.probability_scalars.update(probs[keep], target)
        if self.ordinal is not None:
            true_years = torch.where(torch.isnan(value), self.midpoints[target], value)
            argmax_years = self.midpoints[preds]
            estimate = expected_years(probs[keep] if probs is not None else None, self.midpoints)
            estimate = years[keep] if years is not None else estimate
            estimate = argmax_years if estimate is None else estimate
            self.ordinal["mae_years"].update((estimate - true_years).abs())
            self.ordinal["mae_years_argmax"].update((argmax_years - true_years).abs())
            self.ordinal["within_one_bin_accuracy"].update(((preds - target).abs() <= 1).float())

    def stat_scores(self) -> torch.Tensor:
        """Per class [tp, fp, tn, fn, support] (int64): torchmetrics' `MulticlassStatScores`
        (average=None), derived from the confusion matrix (true class x predicted class) as
        that metric derives them from its own."""
        confusion = self.confusion.compute()
        tp = confusion.diag()
        fp = confusion.sum(0) - tp
        fn = confusion.sum(1) - tp
        tn = confusion.sum() - (fp + fn + tp)
        return torch.stack([tp, fp, tn, fn, tp + fn], dim=-1)

    def compute_scalars(self) -> dict[str, float | None]:
        stats = self.stat_scores()
        tp, fp, tn, fn = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
        # torchmetrics' reductions of the same counts: MulticlassAccuracy(average="micro")
        # and MulticlassF1Score(average="macro"), classes with tp + fp + fn == 0 left out
        out = {
            "accuracy": float(_accuracy_reduce(tp, fp, tn, fn, average="micro")),
            "f1_macro": float(_fbeta_reduce(tp, fp, tn, fn, 1.0, average="macro")),
        }
        out["balanced_accuracy"] = balanced_accuracy(stats)
        if self.probability_scalars is not None:
            scalars = self.probability_scalars.compute()
            present = stats[:, 4] > 0  # support: classes with positives
            out["auroc_macro"] = float(scalars["auroc_macro"][present].mean())
            out["ece"] = float(scalars["ece"])
        else:
            out.update(dict.fromkeys(PROBABILITY_METRICS))
        if self.ordinal is not None:
            out.update({k: float(v) for k, v in self.ordinal.compute().items()})
        return out

    def reset(self) -> None:
        for m in (self.probability_scalars, self.confusion, self.ordinal):
            if m is not None:
                m.reset()
