"""`soft`: label-distribution learning with Gaussian soft targets over neighbouring bins.

The target of a sample in bin y is q_k proportional to exp(-(k - y)^2 / (2 sigma^2)) over the
task's bins k (renormalised within the range), so predicting a neighbouring bin costs less
than a distant one. The loss is KL(q || softmax(z)): zero when the prediction is the target
distribution. `sigma` is in bins; as sigma -> 0 it becomes plain cross-entropy.
"""

from __future__ import annotations

import math

import torch

from multihead.errors import ConfigError
from multihead.models.losses.base import TaskLoss, known_class
from multihead.tasks import Task


def gaussian_targets(target: torch.Tensor, num_classes: int, sigma: float) -> torch.Tensor:
    """(batch, classes) distributions centred on each sample's bin."""
    bins = torch.arange(num_classes, device=target.device, dtype=torch.float32)
    distance = bins[None, :] - target[:, None].float()
    return torch.softmax(-distance.square() / (2 * sigma**2), dim=1)


class SoftLabelLoss(TaskLoss):
    name = "soft"
    requires = "ordered"

    def __init__(
        self, task: Task, class_weight: torch.Tensor | None = None, sigma: float = 1.0
    ) -> None:
        super().__init__(task, class_weight)
        self.check_options(sigma=sigma)
        self.sigma = float(sigma)

    @classmethod
    def check_options(cls, sigma: float = 1.0) -> None:
        if not isinstance(sigma, int | float) or not math.isfinite(sigma) or sigma <= 0:
            raise ConfigError(
                f"loss.options.soft.sigma must be a number > 0 (target width in "
                f"bins), got {sigma!r}"
            )

    def terms(self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor):
        q = gaussian_targets(known_class(target), z.shape[1], self.sigma).to(z.dtype)
        log_p = torch.log_softmax(z, dim=1)
        kl = (torch.xlogy(q, q) - q * log_p).sum(dim=1)
        weight = self.sample_weight(target)
        return (weight * kl).sum(), weight.sum()

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, dim=1)
