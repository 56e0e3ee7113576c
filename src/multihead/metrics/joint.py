"""Joint accuracy: the fraction of samples with every task right."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from multihead.data.labels import MISSING


class JointAccuracy(Metric):
    """Over samples that have every label; sum states, so it syncs exactly across processes."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        labelled = (target != MISSING).all(dim=1)
        self.correct += (preds[labelled] == target[labelled]).all(dim=1).sum()
        self.total += labelled.sum()

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total.clamp_min(1)
