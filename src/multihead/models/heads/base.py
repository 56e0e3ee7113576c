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
    """

    shares_trunk: ClassVar[bool] = True

    def __init__(self, layout: TaskLayout) -> None:
        super().__init__()
        self.layout = layout

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
