"""Trunk + head: the whole network, built from the config for a given task layout."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from multihead.components import build_component, component_class
from multihead.models.trunk import trunk_spec
from multihead.tasks import TaskLayout


class MultiTaskNet(nn.Module):
    def __init__(self, trunk: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def build_network(
    model_cfg: DictConfig, head_cfg: DictConfig, layout: TaskLayout, in_features: int
) -> MultiTaskNet:
    """Trunk first, then head: the fixed order that makes equal seeds give equal weights.

    A head that does not share a trunk (`separate`) builds its own per task from the same
    spec and reads the features through an identity trunk.
    """
    spec = trunk_spec(model_cfg.trunk, in_features)
    shares = getattr(component_class("head", head_cfg), "shares_trunk", True)
    trunk = spec.build() if shares else nn.Identity()
    head = build_component("head", head_cfg, layout=layout, trunk=spec)
    return MultiTaskNet(trunk, head)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
