"""`regression`: one output predicting the standardised raw value (years), Huber or MSE.

Training targets are (years - mean) / sd with the mean and sd of the training split (a
sample without raw years uses its bin midpoint). The prediction is decoded back to years,
which give the MAE directly, and binned with the task's edges for the class metrics. There
are no class probabilities, so AUROC and calibration are not applicable and are not reported.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from multihead.errors import ConfigError, DataError
from multihead.models.losses.base import TaskLoss, TaskTargets, known_class
from multihead.tasks import Task

KINDS = ("huber", "mse")


class RegressionLoss(TaskLoss):
    name = "regression"
    requires = "binned"
    probabilistic = False
    likelihood = "gaussian"
    needs_targets = True

    def __init__(
        self,
        task: Task,
        class_weight: torch.Tensor | None = None,
        targets: TaskTargets | None = None,
        kind: str = "huber",
        delta: float = 1.0,
    ) -> None:
        super().__init__(task, class_weight)
        self.check_options(kind=kind, delta=delta)
        self.kind, self.delta = kind, float(delta)
        if targets is None:
            raise ValueError("regression needs the training targets to standardise years")
        self.register_buffer("edges", torch.tensor(task.edges, dtype=torch.float32))
        labelled = targets.labels >= 0
        years = self.true_years(targets.labels[labelled], targets.values[labelled])
        if years.numel() == 0:
            raise DataError(
                f"task {task.name!r}: no labelled training sample to standardise "
                "its values for loss=regression"
            )
        self.register_buffer("center", years.mean())
        self.register_buffer("scale", years.std(correction=0).clamp_min(1e-6))

    @classmethod
    def check_options(cls, kind: str = "huber", delta: float = 1.0) -> None:
        if kind not in KINDS:
            raise ConfigError(
                f"loss.options.regression.kind must be one of {list(KINDS)}, got {kind!r}"
            )
        if not isinstance(delta, int | float) or not math.isfinite(delta) or delta <= 0:
            raise ConfigError(
                f"loss.options.regression.delta must be a number > 0 (standard "
                f"deviations), got {delta!r}"
            )

    @classmethod
    def output_size(cls, task: Task) -> int:
        return 1

    def true_years(self, target: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Raw years per sample; the bin midpoint where the raw value is unknown (for an
        unlabelled sample, whose weight is 0, the first bin's midpoint: any finite stand-in)."""
        value = value.float()
        midpoints = (self.edges[:-1] + self.edges[1:]) / 2
        return torch.where(torch.isnan(value), midpoints[known_class(target)], value)

    def terms(self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor):
        standardised = (self.true_years(target, value) - self.center) / self.scale
        pred = z[:, 0]
        if self.kind == "huber":
            per_sample = F.huber_loss(
                pred, standardised.to(pred.dtype), reduction="none", delta=self.delta
            )
        else:
            per_sample = (pred - standardised.to(pred.dtype)).square()
        weight = self.sample_weight(target)
        return (weight * per_sample).sum(), weight.sum()

    def probabilities(self, z: torch.Tensor) -> None:
        return None

    def years(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, 0] * self.scale + self.center

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """The bin of the predicted years (left-closed; below/above the range: first/last)."""
        return torch.bucketize(self.years(z).contiguous(), self.edges[1:-1], right=True)
