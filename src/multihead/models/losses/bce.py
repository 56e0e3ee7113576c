"""`bce`: sigmoid + binary cross-entropy against the one-hot target, one output per class.

This is the setup users start from (one sigmoid layer over all outputs): the loss is pooled,
so all tasks using it share ONE mean over all their outputs, exactly
`BCEWithLogitsLoss()(logits, multi_hot)`. Its sigmoids are not normalised within a task, so
for metrics each task's sigmoids are divided by their sum, and how often the raw sigmoids are
incoherent (none above 0.5, or more than one) is reported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihead.models.losses.base import TaskLoss, known_class


class BinaryCrossEntropyLoss(TaskLoss):
    name = "bce"
    diagnostic_names = ("incoherent_rate",)
    pooled = True

    def terms(self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor):
        # F.one_hot would read the largest label on the host; a comparison stays on the device
        classes = torch.arange(z.shape[1], device=z.device)
        one_hot = (known_class(target)[:, None] == classes).to(z.dtype)
        elementwise = F.binary_cross_entropy_with_logits(z, one_hot, reduction="none")
        weight = self.sample_weight(target)
        # every output of a sample counts once in the mean: its weight times the output count
        return (weight[:, None] * elementwise).sum(), weight.sum() * z.shape[1]

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(z)
        return p / p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        return z.argmax(dim=1)  # the largest sigmoid; identical to the normalised argmax

    def diagnostics(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"incoherent_rate": (z > 0).sum(dim=1) != 1}  # sigmoid > 0.5
