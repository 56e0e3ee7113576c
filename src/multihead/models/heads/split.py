"""`head=split`: one Linear per task on the shared latent vector."""

from __future__ import annotations

import torch
from torch import nn

from multihead.models.heads.base import Head
from multihead.models.trunk import TrunkSpec
from multihead.tasks import TaskLayout


def task_linears(layout: TaskLayout, latent: int) -> nn.ModuleList:
    """One Linear per task, created in task order: the RNG draws that `fused` reproduces."""
    return nn.ModuleList(nn.Linear(latent, size) for size in layout.sizes)


class SplitHead(Head):
    owns_task_parameters = True

    def __init__(self, layout: TaskLayout, trunk: TrunkSpec) -> None:
        super().__init__(layout)
        self.heads = nn.ModuleDict(
            zip(layout.names, task_linears(layout, trunk.out_features), strict=True)
        )

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {name: list(module.parameters()) for name, module in self.heads.items()}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(z) for head in self.heads.values()], dim=1)
