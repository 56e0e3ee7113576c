"""`weighting=uncertainty`: homoscedastic task uncertainty (Kendall, Gal & Cipolla 2018).

Each task t has a learned log-variance s_t = log sigma_t^2 and contributes
    c_t * exp(-s_t) * L_t + s_t / 2,
with c_t = 1 for a categorical likelihood (softmax, eq. 10 of the paper) and 1/2 for a
Gaussian one (regression, eq. 7): a task whose loss stays high gets a larger variance and
a smaller weight, and the s_t / 2 term keeps variances from growing without bound. The
log-variances are parameters of the LightningModule, so the optimizer updates them and DDP
averages their gradients; they are used in every step, never left out of the graph.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from multihead.errors import ConfigError
from multihead.models.weighting.base import TaskWeighting

SCALE = {"categorical": 1.0, "gaussian": 0.5}


class UncertaintyWeighting(TaskWeighting):
    name = "uncertainty"

    def __init__(self, likelihoods: Mapping[str, str], init_log_var: float = 0.0) -> None:
        super().__init__(likelihoods)
        self.check_options(init_log_var)
        self.log_vars = nn.Parameter(torch.full((len(self.task_names),), float(init_log_var)))
        self.register_buffer(
            "scale", torch.tensor([SCALE[likelihoods[n]] for n in self.task_names])
        )

    @staticmethod
    def check_options(init_log_var: float = 0.0) -> None:
        if not isinstance(init_log_var, int | float) or not math.isfinite(init_log_var):
            raise ConfigError(
                f"weighting.init_log_var must be a finite number, got {init_log_var!r}"
            )

    def precisions(self) -> torch.Tensor:
        """The effective weights c_t * exp(-s_t)."""
        return self.scale * torch.exp(-self.log_vars)

    def forward(self, parts):
        return (self.precisions() * self._stack(parts) + self.log_vars / 2).sum()

    def task_weights(self) -> dict[str, float]:
        return dict(zip(self.task_names, self.precisions().detach().tolist(), strict=True))

    def epoch_values(self) -> dict[str, float]:
        out = super().epoch_values()
        log_vars = self.log_vars.detach().tolist()
        out.update({f"{n}/log_var": s for n, s in zip(self.task_names, log_vars, strict=True)})
        return out
