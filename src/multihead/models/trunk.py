"""The MLP trunk: features -> latent representation read by the heads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from hydra.utils import get_object
from omegaconf import DictConfig
from torch import nn

from multihead.errors import ConfigError

#: a model option's value that `model=auto` replaces by its rule's choice
AUTO = "auto"
#: `model.batch_size` value: the whole training split in every step (full-batch L-BFGS)
FULL_BATCH = "full"


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


class SkipTrunk(nn.Module):
    """The MLP's latent vector with the input features appended (`model.trunk.skip`): every
    head is then a linear model of the features plus a nonlinear part, so the network can
    fall back to the linear model (decay shrinks the MLP's share) instead of losing to it."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mlp(x), x], dim=1)


def trunk_layers(trunk_cfg: DictConfig) -> tuple[tuple[int, ...], int]:
    """(hidden widths, latent width) from `hidden`/`latent`, or from `width` x `depth`."""
    width = trunk_cfg.get("width")
    if width is not None:
        depth = int(trunk_cfg.get("depth") or 1)
        return tuple([int(width)] * (depth - 1)), int(width)
    return tuple(int(h) for h in trunk_cfg.hidden), int(trunk_cfg.latent)


def trunk_class(trunk_cfg: DictConfig) -> type[TrunkSpec]:
    """The spec class `model.trunk._target_` names (default: the MLP trunk below)."""
    target = trunk_cfg.get("_target_")
    if not target:
        return TrunkSpec
    try:
        return get_object(target)
    except Exception as err:  # Hydra raises ImportError or its own errors
        raise ConfigError(f"model.trunk._target_={target!r} cannot be imported: {err}") from None


def trunk_spec(trunk_cfg: DictConfig, in_features: int) -> TrunkSpec:
    return trunk_class(trunk_cfg).from_config(trunk_cfg, in_features)


@dataclass(frozen=True)
class TrunkSpec:
    """How to build a trunk, handed to every head: shared-trunk heads read `latent`, while a
    head without sharing (`separate`) builds one trunk per task from the same spec."""

    in_features: int
    hidden: tuple[int, ...]
    latent: int
    dropout: float
    skip: bool = False  # the input features appended to the latent vector (SkipTrunk)
    #: whether the trunk has weights (learned jointly by every task it serves)
    learned: ClassVar[bool] = True

    @property
    def out_features(self) -> int:
        """Width of what the heads read: the latent vector (+ the features with `skip`)."""
        return self.latent + (self.in_features if self.skip else 0)

    @classmethod
    def from_config(cls, trunk_cfg: DictConfig, in_features: int) -> TrunkSpec:
        """`width` and `depth`, when set, replace `hidden` and `latent` by `depth` layers of
        `width` units (the form `model=auto` and tuning use)."""
        hidden, latent = trunk_layers(trunk_cfg)
        skip = bool(trunk_cfg.get("skip", False))
        return cls(int(in_features), hidden, latent, float(trunk_cfg.dropout), skip)

    @classmethod
    def check_config(cls, trunk_cfg: DictConfig) -> None:
        """ConfigError for widths < 1 or dropout outside [0, 1); `auto` values (model=auto)
        are checked once they are chosen."""
        if any(trunk_cfg.get(k) == AUTO for k in ("width", "depth", "dropout")):
            return
        for key in ("width", "depth"):
            value = trunk_cfg.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"model.trunk.{key} must be null or an integer >= 1, got {value!r}"
                )
        hidden, latent = trunk_layers(trunk_cfg)
        if any(h < 1 for h in hidden) or latent < 1:
            raise ConfigError(
                f"model.trunk: widths must be >= 1, got hidden={list(hidden)}, latent={latent}"
            )
        if not 0 <= float(trunk_cfg.dropout) < 1:
            raise ConfigError(f"model.trunk.dropout must be in [0, 1), got {trunk_cfg.dropout}")
        if not isinstance(trunk_cfg.get("skip", False), bool):
            raise ConfigError(f"model.trunk.skip must be true or false, got {trunk_cfg.skip!r}")

    def build(self) -> nn.Module:
        mlp = mlp_trunk(self.in_features, self.hidden, self.latent, self.dropout)
        return SkipTrunk(mlp) if self.skip else mlp
