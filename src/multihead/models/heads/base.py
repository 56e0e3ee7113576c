"""What every head is: a module from the trunk's output to all task outputs, in task order."""

from __future__ import annotations

import inspect
from typing import ClassVar

from torch import nn

from multihead.errors import ConfigError
from multihead.tasks import TaskLayout

#: arguments every head gets from the network builder rather than from its YAML
RUNTIME_ARGS = ("self", "layout", "trunk")


class Head(nn.Module):
    """Returns one tensor (batch, layout.total) so losses and decoding never see the design.

    `shares_trunk = False` tells the network builder to feed the head the raw features
    instead of a shared trunk's latent vector (the head then builds its own trunks).
    `owns_task_parameters = True`: every task has parameters of its own (`task_parameters`),
    which `model.head_decay` can penalise per task; `fused` keeps all tasks in one matrix.
    """

    shares_trunk: ClassVar[bool] = True
    owns_task_parameters: ClassVar[bool] = False

    def __init__(self, layout: TaskLayout) -> None:
        super().__init__()
        self.layout = layout

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Task name -> the parameters only that task uses (empty: none are task-owned)."""
        return {}

    @classmethod
    def check_options(cls, **options: object) -> None:
        """ConfigError for YAML options the head does not take; checked before any data is
        loaded. Heads with options extend this to check their values."""
        accepted = [n for n in inspect.signature(cls.__init__).parameters if n not in RUNTIME_ARGS]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"head {cls.__name__} has no option(s) {unknown}; it takes {accepted or 'none'}"
            )
