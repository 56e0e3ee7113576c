"""The shared MLP trunk: features -> latent representation used by every head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp_trunk(in_features: int, hidden: Sequence[int], latent: int, dropout: float) -> nn.Sequential:
    """Linear-ReLU-Dropout blocks ending in a ReLU latent layer of width `latent`."""
    layers: list[nn.Module] = []
    width = in_features
    for size in [*hidden, latent]:
        layers += [nn.Linear(width, int(size)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    return nn.Sequential(*layers)
