"""Collects every evaluated sample's outputs, gathered from all processes at compute."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class StoredPredictions(NamedTuple):
    index: torch.Tensor  # (n,) sample index, sorted
    probs: torch.Tensor  # (n, classes of the tasks that have probabilities), concatenated
    preds: torch.Tensor | None  # (n, tasks) decoded classes
    years: torch.Tensor | None  # (n, tasks) point estimates in raw units, NaN where none


class PredictionStore(Metric):
    """List states are gathered with uneven per-rank sizes, so nothing is padded or dropped."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in StoredPredictions._fields:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        index: torch.Tensor,
        probs: torch.Tensor,
        preds: torch.Tensor | None = None,
        years: torch.Tensor | None = None,
    ) -> None:
        self.index.append(index)
        self.probs.append(probs)
        if preds is not None:
            self.preds.append(preds)
        if years is not None:
            self.years.append(years)

    def compute(self) -> StoredPredictions:
        """Everything sorted by sample index; preds/years None if never given."""
        index = dim_zero_cat(self.index)
        order = torch.argsort(index)

        def column(state: list | torch.Tensor) -> torch.Tensor | None:
            # a list before a multi-process sync, one tensor after it
            if isinstance(state, list) and not state:
                return None
            return dim_zero_cat(state)[order]

        return StoredPredictions(
            index[order], column(self.probs), column(self.preds), column(self.years)
        )
