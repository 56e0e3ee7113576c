"""`weighting=fixed`: a constant weight per task (1 unless configured)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from multihead.errors import ConfigError
from multihead.models.weighting.base import TaskWeighting


class FixedWeighting(TaskWeighting):
    name = "fixed"

    def __init__(
        self, likelihoods: Mapping[str, str], weights: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(likelihoods)
        weights = dict(weights or {})
        self.check_options(weights, self.task_names)
        self.register_buffer(
            "weights", torch.tensor([float(weights.get(name, 1.0)) for name in self.task_names])
        )

    @staticmethod
    def check_options(weights: Mapping[str, float], task_names: list[str]) -> None:
        unknown = sorted(set(weights) - set(task_names))
        if unknown:
            raise ConfigError(
                f"weighting.weights names {unknown}, which are not tasks; "
                f"the tasks are {task_names}"
            )
        bad = {
            k: v
            for k, v in weights.items()
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0
        }
        if bad:
            raise ConfigError(f"weighting.weights must be numbers >= 0, got {bad}")
        if task_names and all(float(weights.get(n, 1.0)) == 0 for n in task_names):
            raise ConfigError("weighting.weights: every task has weight 0, nothing would train")

    def forward(self, parts):
        return (self.weights * self._stack(parts)).sum()

    def selection_loss(self, parts):
        return self.forward(parts)  # constant weights: the objective itself

    def task_weights(self) -> dict[str, float]:
        return dict(zip(self.task_names, self.weights.tolist(), strict=True))
