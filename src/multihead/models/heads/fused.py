"""`head=fused`: one Linear(latent, sum of task sizes), the single-layer setup users start from.

It is initialised as the split heads stacked, so for the same seed `fused` and `split` are
the same network; only the loss and the decoding can make them differ.
"""

from __future__ import annotations

import torch
from torch import nn

from multihead.models.heads.base import Head
from multihead.models.heads.split import task_linears
from multihead.models.trunk import TrunkSpec
from multihead.tasks import TaskLayout


class FusedHead(Head):
    def __init__(self, layout: TaskLayout, trunk: TrunkSpec) -> None:
        super().__init__(layout)
        per_task = task_linears(layout, trunk.out_features)
        # skip_init: allocate without drawing from the RNG, so everything built after the head
        # sees the same RNG state as with `split`.
        self.linear = nn.utils.skip_init(nn.Linear, trunk.out_features, layout.total)
        with torch.no_grad():
            self.linear.weight.copy_(torch.cat([m.weight for m in per_task]))
            self.linear.bias.copy_(torch.cat([m.bias for m in per_task]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)
