"""`head=separate`: no sharing at all, one full network (trunk + output layer) per task.

The no-sharing baseline: if it matches the shared designs, the tasks gain nothing from each
other; it has about (number of tasks) x the parameters, which metrics.json reports.
"""

from __future__ import annotations

import torch
from torch import nn

from multihead.models.heads.base import Head
from multihead.models.trunk import TrunkSpec
from multihead.tasks import TaskLayout


class SeparateHead(Head):
    shares_trunk = False  # reads the features directly; the network's trunk is the identity
    owns_task_parameters = True

    def __init__(self, layout: TaskLayout, trunk: TrunkSpec) -> None:
        super().__init__(layout)
        self.networks = nn.ModuleDict(
            {
                name: nn.Sequential(trunk.build(), nn.Linear(trunk.out_features, size))
                for name, size in zip(layout.names, layout.sizes, strict=True)
            }
        )

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {name: list(module.parameters()) for name, module in self.networks.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(x) for net in self.networks.values()], dim=1)
