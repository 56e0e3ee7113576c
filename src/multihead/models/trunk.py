"""The MLP trunk: features -> latent representation read by the heads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig
from torch import nn


def mlp_trunk(
    in_features: int, hidden: Sequence[int], latent: int, dropout: float
) -> nn.Sequential:
    """Linear-ReLU-Dropout blocks ending in a ReLU latent layer of width `latent`."""
    layers: list[nn.Module] = []
    width = in_features
    for size in [*hidden, latent]:
        layers += [nn.Linear(width, int(size)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class TrunkSpec:
    """How to build a trunk, handed to every head: shared-trunk heads read `latent`, while a
    head without sharing (`separate`) builds one trunk per task from the same spec."""

    in_features: int
    hidden: tuple[int, ...]
    latent: int
    dropout: float

    @classmethod
    def from_config(cls, trunk_cfg: DictConfig, in_features: int) -> TrunkSpec:
        return cls(
            int(in_features),
            tuple(int(h) for h in trunk_cfg.hidden),
            int(trunk_cfg.latent),
            float(trunk_cfg.dropout),
        )

    def build(self) -> nn.Sequential:
        return mlp_trunk(self.in_features, self.hidden, self.latent, self.dropout)
