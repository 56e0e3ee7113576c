"""`loss=ce`: softmax cross-entropy per task, summed over tasks (on `fused`, per slice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihead.data.labels import MISSING
from multihead.models.losses.base import MultiTaskLoss, task_logits
from multihead.tasks import TaskLayout


class CrossEntropyLoss(MultiTaskLoss):
    name = "ce"

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, layout: TaskLayout):
        parts: dict[str, torch.Tensor] = {}
        for j, (task, z) in enumerate(zip(layout.tasks, task_logits(logits, layout))):
            target = labels[:, j]
            if bool((target != MISSING).any()):
                parts[task.name] = F.cross_entropy(z, target, ignore_index=MISSING)
            else:  # keeps every output in the graph (DDP needs it) while adding nothing
                parts[task.name] = z.sum() * 0.0
        return torch.stack(list(parts.values())).sum(), parts

    def probabilities(self, logits: torch.Tensor, layout: TaskLayout) -> list[torch.Tensor]:
        return [torch.softmax(z, dim=1) for z in task_logits(logits, layout)]
