"""What every head is: a module from the trunk's output to all task outputs, in task order."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from multihead.tasks import TaskLayout


class Head(nn.Module):
    """Returns one tensor (batch, layout.total) so losses and decoding never see the design.

    `shares_trunk = False` tells the network builder to feed the head the raw features
    instead of a shared trunk's latent vector (the head then builds its own trunks).
    """

    shares_trunk: ClassVar[bool] = True

    def __init__(self, layout: TaskLayout) -> None:
        super().__init__()
        self.layout = layout
