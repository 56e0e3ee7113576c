"""What every task weighting provides: the training objective, the loss used to select
checkpoints, and the weights worth logging each epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn


class TaskWeighting(nn.Module):
    """Built with `likelihoods` (task name -> "categorical" or "gaussian"), in task order.

    `manual = True` marks a gradient method: it sets the parameters' gradients itself
    (`set_gradients`), so Lightning runs it with manual optimization.
    """

    name: ClassVar[str] = ""
    manual: ClassVar[bool] = False

    def __init__(self, likelihoods: Mapping[str, str]) -> None:
        super().__init__()
        self.task_names = list(likelihoods)

    def _stack(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([parts[name] for name in self.task_names])

    def forward(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The training objective (for gradient methods: the sum whose gradient they edit)."""
        return self._stack(parts).sum()

    def selection_loss(self, parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Validation loss that picks the best checkpoint: the plain sum of task losses, so it
        is comparable across epochs even while learned weights move."""
        return self._stack(parts).sum()

    def task_weights(self) -> dict[str, float]:
        """The current weight of each task's loss."""
        return {name: 1.0 for name in self.task_names}

    def epoch_values(self) -> dict[str, float]:
        """Values logged once per epoch (`weighting/<key>`); resets any per-epoch counters."""
        return {f"{name}/weight": w for name, w in self.task_weights().items()}

    def counters(self) -> dict[str, int]:
        """Plain counters the weighting keeps outside its parameters (saved in checkpoints,
        so a resumed run continues them)."""
        return {}

    def load_counters(self, counters: Mapping[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, int(value))

    def set_gradients(
        self,
        parts: Mapping[str, torch.Tensor],
        params: Sequence[nn.Parameter],
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        """Gradient methods only: write `.grad` of `params`; `reduce` averages over processes."""
        raise TypeError(f"weighting {self.name!r} is not a gradient method")
