"""`loss=bce`: one sigmoid + binary cross-entropy over all outputs against the multi-hot target.

This is the setup users start from. Its sigmoids are not normalised within a task, so for
metrics each task's sigmoid slice is divided by its sum, and how often the raw sigmoids are
incoherent (none above 0.5, or more than one) is reported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihead.data.labels import MISSING
from multihead.models.losses.base import MultiTaskLoss, task_logits
from multihead.tasks import TaskLayout


def multi_hot(labels: torch.Tensor, layout: TaskLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (batch, total) and a mask that is 0 over the slice of a missing label."""
    target = torch.zeros(labels.shape[0], layout.total, device=labels.device)
    mask = torch.ones_like(target)
    for j, s in enumerate(layout.slices):
        present = labels[:, j] != MISSING
        rows = torch.nonzero(present).squeeze(1)
        target[rows, s.start + labels[rows, j]] = 1.0
        mask[~present, s] = 0.0
    return target, mask


class BinaryCrossEntropyLoss(MultiTaskLoss):
    name = "bce"

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, layout: TaskLayout):
        target, mask = multi_hot(labels, layout)
        elementwise = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * mask
        denominator = mask.sum().clamp_min(1.0)
        # Each task's share of the one mean over all outputs: the shares add up to the loss.
        parts = {t.name: elementwise[:, s].sum() / denominator
                 for t, s in zip(layout.tasks, layout.slices)}
        return elementwise.sum() / denominator, parts

    def probabilities(self, logits: torch.Tensor, layout: TaskLayout) -> list[torch.Tensor]:
        out = []
        for z in task_logits(logits, layout):
            p = torch.sigmoid(z)
            out.append(p / p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny))
        return out

    def diagnostics(self, logits: torch.Tensor, layout: TaskLayout) -> dict[str, torch.Tensor]:
        above = [(z > 0).sum(dim=1) for z in task_logits(logits, layout)]  # sigmoid > 0.5
        return {"incoherent_rate": torch.stack([a != 1 for a in above], dim=1)}
