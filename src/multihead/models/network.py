"""Trunk + head: the whole network, built from the config for a given task layout."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from multihead.components import build_component
from multihead.models.trunk import mlp_trunk
from multihead.tasks import TaskLayout


class MultiTaskNet(nn.Module):
    def __init__(self, trunk: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def build_network(model_cfg: DictConfig, head_cfg: DictConfig, layout: TaskLayout,
                  in_features: int) -> MultiTaskNet:
    """Trunk first, then head: the fixed order that makes equal seeds give equal weights."""
    trunk_cfg = model_cfg.trunk
    trunk = mlp_trunk(in_features, list(trunk_cfg.hidden), int(trunk_cfg.latent),
                      float(trunk_cfg.dropout))
    head = build_component("head", head_cfg, layout=layout, latent=int(trunk_cfg.latent))
    return MultiTaskNet(trunk, head)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
