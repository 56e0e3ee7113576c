"""`model=linear`: no hidden layer, every head reads the (standardised, top-k) features.

With this trunk `head=fused loss=bce` is multi-label logistic regression, `head=split
loss=ce` a multinomial logistic regression per task and `loss=regression` (kind=mse) ridge
regression on years. The penalty is explicit, so the fit is the penalised optimum that
scikit-learn computes, not an approximation shaped by an optimizer's decay rule:

    objective = sum of task losses (means over samples) + weight_decay / 2 * ||W||^2
                + l1 * sum |W|                      (W: weight matrices; biases unpenalised)

(`model.head_decay.TASK` replaces weight_decay for that task's own head: with `head=split`
every task is then its own penalised regression, as scikit-learn fits it)

which is scikit-learn's `Ridge(alpha = n_train * weight_decay / 2)` for a regression task
with `kind=mse`, and `LogisticRegression(C = 1 / (n_train * weight_decay))` for a
classification task with `loss=ce` and three or more classes (two classes: `C = 2 / (n_train *
weight_decay)`, as two softmax rows penalised alike are one binary weight vector with half
the penalty). It is minimised by full-batch L-BFGS (`model.batch_size:
full`), which converges in one optimizer step on these convex problems.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from multihead.models.trunk import TrunkSpec

#: smoothing of |w| in the L1 penalty (sqrt(w^2 + eps^2) - eps), so L-BFGS sees a gradient
L1_SMOOTHING = 1e-4


@dataclass(frozen=True)
class LinearTrunk(TrunkSpec):
    """The identity: the heads' latent vector is the input features themselves."""

    learned = False

    @classmethod
    def from_config(cls, trunk_cfg: DictConfig, in_features: int) -> LinearTrunk:
        return cls(int(in_features), (), int(in_features), 0.0)

    @classmethod
    def check_config(cls, trunk_cfg: DictConfig) -> None:
        """Nothing to choose: no widths, no dropout."""

    def build(self) -> nn.Module:
        return nn.Identity()


class PenalizedLBFGS(torch.optim.LBFGS):
    """L-BFGS on the loss plus an explicit L2 (`weight_decay`) and smoothed L1 (`l1`) penalty
    on every weight matrix. Parameter groups are merged (L-BFGS takes one); a group's own
    `weight_decay` (a task's head, or 0 for learned task weights) replaces the default for
    its matrices. Biases and vectors stay unpenalised."""

    needs_closure = True  # cannot run under manual optimization (weighting=pcgrad)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        weight_decay: float = 0.0,
        l1: float = 0.0,
        max_iter: int = 500,
        history_size: int = 20,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-10,
        line_search_fn: str | None = "strong_wolfe",
    ) -> None:
        groups = list(params)
        if not groups or not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        decays = [
            (p, float(g.get("weight_decay", weight_decay))) for g in groups for p in g["params"]
        ]
        flat = [p for p, _ in decays]
        super().__init__(
            flat,
            lr=lr,
            max_iter=max_iter,
            history_size=history_size,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            line_search_fn=line_search_fn,
        )
        self.penalized = [(p, decay) for p, decay in decays if p.dim() >= 2]
        self.l1 = float(l1)

    @torch.no_grad()
    def add_penalty(self) -> torch.Tensor:
        """Adds the penalty's gradient to every penalised `.grad`; returns its value."""
        total = torch.zeros(())
        for p, decay in self.penalized:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            if decay:
                p.grad.add_(p, alpha=decay)
                total += decay / 2 * p.square().sum()
            if self.l1:
                smooth = torch.sqrt(p.square() + L1_SMOOTHING**2)
                p.grad.add_(p / smooth, alpha=self.l1)
                total += self.l1 * (smooth - L1_SMOOTHING).sum()
        return total

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        def penalized() -> torch.Tensor:
            loss = closure()
            return loss + self.add_penalty().to(loss)

        return super().step(penalized)
