"""`head=towers`: the shared trunk, then a small MLP per task before its output layer.

The "separate dense layers" design: tasks share the representation but each gets its own
non-linear transformation of it, so a task can reshape the latent vector without pulling
the other task's layers along.
"""

from __future__ import annotations

import torch
from torch import nn

from multihead.errors import ConfigError
from multihead.models.heads.base import Head
from multihead.models.trunk import TrunkSpec
from multihead.tasks import TaskLayout


def tower(latent: int, depth: int, width: int, dropout: float, out: int) -> nn.Sequential:
    """`depth` Linear-ReLU(-Dropout) blocks of `width` units, then Linear(width, out)."""
    layers: list[nn.Module] = []
    size = latent
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        size = width
    layers.append(nn.Linear(size, out))
    return nn.Sequential(*layers)


def check_tower_options(depth: int, width: int, dropout: float) -> None:
    """Named errors rather than a shape error deep inside torch."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError(
            f"head.depth must be an integer >= 1 (hidden layers per task tower), "
            f"got {depth!r}; depth 0 is head=split"
        )
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ConfigError(
            f"head.width must be an integer >= 1 (units per tower layer), got {width!r}"
        )
    if not 0 <= float(dropout) < 1:
        raise ConfigError(f"head.dropout must be in [0, 1), got {dropout!r}")


class TowersHead(Head):
    owns_task_parameters = True

    def __init__(
        self,
        layout: TaskLayout,
        trunk: TrunkSpec,
        depth: int = 1,
        width: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(layout)
        check_tower_options(depth, width, dropout)
        self.towers = nn.ModuleDict(
            {
                name: tower(trunk.out_features, depth, width, float(dropout), size)
                for name, size in zip(layout.names, layout.sizes, strict=True)
            }
        )

    @classmethod
    def check_options(
        cls, depth: int = 1, width: int = 64, dropout: float = 0.0, **others: object
    ) -> None:
        super().check_options(**others)
        check_tower_options(depth, width, dropout)

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {name: list(module.parameters()) for name, module in self.towers.items()}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([t(z) for t in self.towers.values()], dim=1)
