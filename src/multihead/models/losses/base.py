"""What every multi-task loss provides: output sizes, the loss itself, and probabilities."""

from __future__ import annotations

import torch
from torch import nn

from multihead.tasks import Task, TaskLayout


class MultiTaskLoss(nn.Module):
    """Labels are class indices (batch, tasks) with -1 where a label is missing."""

    #: what the reports call this loss
    name: str = "base"

    def output_size(self, task: Task) -> int:
        """How many outputs the head needs for `task` under this loss."""
        return task.num_classes

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, layout: TaskLayout
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss to minimise, and each task's share of it (for logging)."""
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor, layout: TaskLayout) -> list[torch.Tensor]:
        """Per-task class probabilities that sum to 1 within each task."""
        raise NotImplementedError

    def diagnostics(self, logits: torch.Tensor, layout: TaskLayout) -> dict[str, torch.Tensor]:
        """Per-sample flags worth reporting per task (name -> bool tensor (batch, tasks))."""
        return {}


def task_logits(logits: torch.Tensor, layout: TaskLayout) -> list[torch.Tensor]:
    return [logits[:, s] for s in layout.slices]
