"""Collects every evaluated sample's probabilities, gathered from all processes at compute."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class PredictionStore(Metric):
    """List states are gathered with uneven per-rank sizes, so nothing is padded or dropped."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self.add_state("probs", default=[], dist_reduce_fx="cat")

    def update(self, index: torch.Tensor, probs: torch.Tensor) -> None:
        self.index.append(index)
        self.probs.append(probs)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(index, probs) sorted by sample index."""
        index, probs = dim_zero_cat(self.index), dim_zero_cat(self.probs)
        order = torch.argsort(index)
        return index[order], probs[order]
