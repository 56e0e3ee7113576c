"""Trunk + head: the whole network, built from the config for a given task layout."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from multihead.components import build_component, component_class
from multihead.errors import ConfigError
from multihead.models.trunk import trunk_spec
from multihead.tasks import TaskLayout


class MultiTaskNet(nn.Module):
    def __init__(self, trunk: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def member_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What each network trains on: this one's output (see `EnsembleNet`)."""
        return [self(x)]


class EnsembleHeads(nn.ModuleList):
    """The members' heads, seen as one: each task owns its head's parameters in every member."""

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        owned: dict[str, list[nn.Parameter]] = {}
        for head in self:
            for task, params in head.task_parameters().items():
                owned.setdefault(task, []).extend(params)
        return owned


class EnsembleNet(nn.Module):
    """`model.ensemble` networks of one design, each from its own initial weights (drawn one
    after the other from the seeded RNG), trained side by side on the same batches, each on
    its own loss (`member_outputs`); the ensemble's output is the mean of theirs (logits, or
    years for a regression head), which every metric, checkpoint choice, prediction and
    explanation reads. On a small cohort one network's result moves with its initial weights
    and dropout draws by more than the differences a comparison looks for; the mean of a few
    networks moves less (a deep ensemble: Lakshminarayanan et al., 2017)."""

    def __init__(self, members: list[MultiTaskNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.member_outputs(x)).mean(dim=0)

    def member_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [member(x) for member in self.members]

    @property
    def trunk(self) -> nn.ModuleList:
        return nn.ModuleList(member.trunk for member in self.members)

    @property
    def head(self) -> EnsembleHeads:
        return EnsembleHeads(member.head for member in self.members)


def build_network(
    model_cfg: DictConfig, head_cfg: DictConfig, layout: TaskLayout, in_features: int
) -> MultiTaskNet | EnsembleNet:
    """Trunk first, then head: the fixed order that makes equal seeds give equal weights.

    A head that does not share a trunk (`separate`) builds its own per task from the same
    spec and reads the features through an identity trunk. `model.ensemble` > 1 builds that
    many such networks one after the other (the first is the one a single network would be).
    """
    spec = trunk_spec(model_cfg.trunk, in_features)
    shares = getattr(component_class("head", head_cfg), "shares_trunk", True)

    def one() -> MultiTaskNet:
        trunk = spec.build() if shares else nn.Identity()
        return MultiTaskNet(trunk, build_component("head", head_cfg, layout=layout, trunk=spec))

    members = ensemble_size(model_cfg)
    return one() if members == 1 else EnsembleNet([one() for _ in range(members)])


def ensemble_size(model_cfg: DictConfig) -> int:
    """`model.ensemble` (default 1): networks trained side by side, their outputs averaged."""
    value = model_cfg.get("ensemble", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.ensemble must be an integer >= 1, got {value!r}")
    return value


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
