"""`weighting=pcgrad`: gradient surgery (Yu, Kumar, Gupta, Levine, Hausman & Finn 2020).

Each task's gradient g_i over all trainable parameters is computed separately. For each task
i, in turn against every other task j (in random order), if g_i conflicts with g_j
(g_i . g_j < 0), g_i loses its component along g_j: g_i <- g_i - (g_i . g_j / |g_j|^2) g_j,
always against the original g_j (Algorithm 1 of the paper, as in the authors' code). The
update is the sum of the projected gradients.

On several processes the per-task gradients are averaged across processes BEFORE the
projection (one all-reduce of the (tasks, parameters) matrix), so every process projects the
gradients of the global batch and takes the same step; averaging only the final sum would
project each process's local gradients instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from multihead.models.weighting.base import TaskWeighting


def task_gradients(losses: Sequence[torch.Tensor], params: Sequence[nn.Parameter]) -> torch.Tensor:
    """(tasks, parameters) matrix of flattened gradients; zeros where a task does not reach."""
    rows = []
    for k, loss in enumerate(losses):
        grads = torch.autograd.grad(
            loss, params, retain_graph=k < len(losses) - 1, allow_unused=True
        )
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for p, g in zip(params, grads, strict=True)
                ]
            )
        )
    return torch.stack(rows)


def project_conflicting(grads: torch.Tensor, orders: Sequence[Sequence[int]]) -> torch.Tensor:
    """Sum over tasks of each task's gradient projected off the ones it conflicts with.

    `orders[i]` lists the other tasks in the order task i is projected against them.
    """
    projected = grads.clone()
    for i, order in enumerate(orders):
        for j in order:
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / grads[j].square().sum() * grads[j]
    return projected.sum(dim=0)


def conflicting_pairs(grads: torch.Tensor) -> tuple[int, int]:
    """(pairs of tasks whose gradients conflict, all pairs) before any projection."""
    gram = grads @ grads.T
    upper = torch.triu(torch.ones_like(gram, dtype=torch.bool), diagonal=1)
    return int((gram[upper] < 0).sum()), int(upper.sum())


def assign_gradients(flat: torch.Tensor, params: Sequence[nn.Parameter]) -> None:
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
        offset += p.numel()


class PCGradWeighting(TaskWeighting):
    name = "pcgrad"
    manual = True

    def __init__(self, likelihoods: Mapping[str, str], seed: int = 0) -> None:
        super().__init__(likelihoods)
        self.seed = int(seed)
        self.steps = 0
        self.conflicts = 0
        self.pairs = 0

    def orders(self) -> list[list[int]]:
        """Random order of the other tasks for each task, the same on every process: seeded
        by the training seed and the step count."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.steps)
        n = len(self.task_names)
        out = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            out.append([others[k] for k in torch.randperm(len(others), generator=generator)])
        return out

    def set_gradients(
        self,
        parts: Mapping[str, torch.Tensor],
        params: Sequence[nn.Parameter],
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        grads = reduce(task_gradients([parts[n] for n in self.task_names], params))
        conflicts, pairs = conflicting_pairs(grads)
        self.conflicts += conflicts
        self.pairs += pairs
        assign_gradients(project_conflicting(grads, self.orders()), params)
        self.steps += 1

    def epoch_values(self) -> dict[str, float]:
        out = super().epoch_values()
        if self.pairs:
            out["conflict_rate"] = self.conflicts / self.pairs
        self.conflicts = self.pairs = 0
        return out
