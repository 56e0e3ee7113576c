"""`corn`: Conditional Ordinal Regression for Neural networks (Shi, Cao & Raschka 2021).

K-1 outputs; output k is trained as the binary question "y > k?" on the samples that are
known to have y > k-1 only (the conditional training subset). Then
P(y > k) = prod_{j<=k} sigmoid(z_j), which is non-increasing by construction, so ranks are
always consistent; the decoded class is the number of P(y > k) above 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihead.models.losses.base import TaskLoss
from multihead.models.losses.ordinal import class_probabilities, decode_rank
from multihead.tasks import Task


class CornLoss(TaskLoss):
    name = "corn"
    requires = "ordered"

    @classmethod
    def output_size(cls, task: Task) -> int:
        return task.num_classes - 1

    def terms(self, z: torch.Tensor, target: torch.Tensor, value: torch.Tensor):
        thresholds = torch.arange(z.shape[1], device=z.device)
        in_subset = (target[:, None] >= thresholds).to(z.dtype)  # y > k-1: conditional subset
        above = (target[:, None] > thresholds).to(z.dtype)
        bce = F.binary_cross_entropy_with_logits(z, above, reduction="none")
        weight = self.sample_weight(target)[:, None] * in_subset
        # one mean over every (sample, threshold) pair in the subsets, as in the paper
        return (weight * bce).sum(), weight.sum()

    def exceedance(self, z: torch.Tensor) -> torch.Tensor:
        """P(y > k) for k = 0..K-2: a product of conditional probabilities."""
        return torch.cumprod(torch.sigmoid(z), dim=1)

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        return class_probabilities(self.exceedance(z))

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        return decode_rank(self.exceedance(z))
