"""What one task's loss provides: output size, loss terms, probabilities, decoded classes.

A multi-task loss (`multitask.MultiTaskLoss`) combines one of these per task, so every task's
loss can be chosen on its own (`loss.age=corn`) and a head never depends on the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from multihead.data.labels import MISSING
from multihead.errors import ConfigError
from multihead.tasks import Task


def known_class(target: torch.Tensor) -> torch.Tensor:
    """`target` with MISSING replaced by class 0: a valid index for samples whose weight is 0."""
    return target.clamp_min(0)


@dataclass(frozen=True)
class TaskTargets:
    """One task's labels and raw values on the training split: what a loss may fit settings
    to (class weights, standardisation), so validation and test data never leak into them."""

    labels: torch.Tensor  # int64 (n,), -1 = missing
    values: torch.Tensor  # float32 (n,), raw value behind a binned label (years), else NaN


class TaskLoss(nn.Module):
    """Loss of one task on its slice `z` (batch, output_size) of the head's outputs.

    Class attributes say what the loss needs and gives:
      * `requires`: "classes" (any task), "ordered" (ordered classes) or "binned" (a task
        binned from a continuous value, i.e. with `edges`),
      * `probabilistic`: whether it yields class probabilities (AUROC and calibration need them),
      * `likelihood`: "categorical" or "gaussian", what uncertainty weighting scales by,
      * `pooled`: tasks with a pooled loss share one mean over all their outputs (BCE),
      * `needs_targets`: it is built with the training split's `TaskTargets` (`targets=`),
      * `diagnostic_names`: the keys `diagnostics` returns.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[str] = "classes"
    probabilistic: ClassVar[bool] = True
    likelihood: ClassVar[str] = "categorical"
    pooled: ClassVar[bool] = False
    needs_targets: ClassVar[bool] = False
    diagnostic_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, task: Task, class_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.task = task
        weight = torch.ones(task.num_classes) if class_weight is None else class_weight
        if weight.shape != (task.num_classes,):
            raise ValueError(
                f"class_weight for task {task.name!r} must have "
                f"{task.num_classes} entries, got shape {tuple(weight.shape)}"
            )
        self.register_buffer("class_weight", weight.float().clone())

    # ------------------------------------------------------------------ what it needs

    @classmethod
    def supports(cls, task: Task) -> bool:
        binned = task.is_binned or task.needs_edges  # quantile bins get their edges from data
        if cls.requires == "binned":
            return binned
        if cls.requires == "ordered":
            return task.ordered or binned
        return True

    @classmethod
    def check_options(cls, **options: object) -> None:
        """Raise ConfigError for a bad option value; losses with options override this."""
        if options:
            raise ConfigError(f"loss {cls.name!r} takes no options, got {sorted(options)}")

    @classmethod
    def output_size(cls, task: Task) -> int:
        """How many head outputs this loss reads for `task`."""
        return task.num_classes

    # ---------------------------------------------------------------- what it computes

    def terms(
        self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of weighted per-sample losses, sum of the weights) over labelled samples only.

        `target` may hold MISSING (-1): those samples get weight 0 (`sample_weight`) and a
        stand-in class (`known_class`), so no row is dropped by a boolean mask, which would
        force a device->host sync to learn the number of rows. Returned apart so the caller
        decides the mean (per task, or pooled over tasks). The sum must stay connected to `z`
        even for an empty batch: DDP needs every output in the graph.
        """
        raise NotImplementedError

    def sample_weight(self, target: torch.Tensor) -> torch.Tensor:
        """Per-sample weight from the true class (1 unless class weights were asked for);
        0 for a sample without a label."""
        weight = self.class_weight[known_class(target)]
        return torch.where(target != MISSING, weight, torch.zeros_like(weight))

    def probabilities(self, z: torch.Tensor) -> torch.Tensor | None:
        """Class probabilities (batch, classes) summing to 1, or None when there are none."""
        raise NotImplementedError

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded class per sample; by default the most probable class."""
        return self.probabilities(z).argmax(dim=1)

    def years(self, z: torch.Tensor) -> torch.Tensor | None:
        """A point estimate in the task's raw unit (years), where the loss predicts one."""
        return None

    def diagnostics(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample flags (name -> bool (batch,)) worth reporting as rates."""
        return {}
