"""`ce`: softmax cross-entropy, the standard loss for one task's classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihead.models.losses.base import TaskLoss, known_class


class CrossEntropyLoss(TaskLoss):
    name = "ce"

    def terms(self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor):
        weight = self.sample_weight(target)
        nll = F.cross_entropy(z, known_class(target), reduction="none")
        return (weight * nll).sum(), weight.sum()

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, dim=1)
