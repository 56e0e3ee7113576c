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

    `orders[i]` lists the other tasks in the order task i is projected against them. The
    test `dot < 0` stays on the device (`torch.where`), so no step waits for the host: a
    gradient that does not conflict is moved by exactly 0.
    """
    squared_norms = [grads[j].square().sum() for j in range(grads.shape[0])]
    rows = []
    for i, order in enumerate(orders):
        row = grads[i].clone()
        for j in order:
            dot = row @ grads[j]
            scale = torch.where(dot < 0, dot / squared_norms[j], torch.zeros_like(dot))
            row = row - scale * grads[j]
        rows.append(row)
    return torch.stack(rows).sum(dim=0)


def conflict_count(grads: torch.Tensor) -> torch.Tensor:
    """Number of task pairs whose gradients conflict, before any projection (on the device)."""
    gram = grads @ grads.T
    return (torch.triu(gram, diagonal=1) < 0).sum()


def pair_count(tasks: int) -> int:
    return tasks * (tasks - 1) // 2


def conflicting_pairs(grads: torch.Tensor) -> tuple[int, int]:
    """(pairs of tasks whose gradients conflict, all pairs) before any projection."""
    return int(conflict_count(grads)), pair_count(grads.shape[0])


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
        self.conflicts: torch.Tensor | int = 0  # a device tensor while an epoch runs
        self.pairs = 0

    def orders(self) -> list[list[int]]:
        """Random order of the other tasks for each task, the same on every process: seeded
        by the training seed and the step count."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.steps)
        n = len(self.task_names)
        out = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            ranks = torch.randperm(len(others), generator=generator).tolist()
            out.append([others[k] for k in ranks])
        return out

    def set_gradients(
        self,
        parts: Mapping[str, torch.Tensor],
        params: Sequence[nn.Parameter],
        reduce: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        grads = reduce(task_gradients([parts[n] for n in self.task_names], params))
        self.conflicts = self.conflicts + conflict_count(grads)  # summed on the device
        self.pairs += pair_count(grads.shape[0])
        assign_gradients(project_conflicting(grads, self.orders()), params)
        self.steps += 1

    def counters(self) -> dict[str, int]:
        return {"steps": self.steps}  # seeds the projection order: resumed runs continue it

    def epoch_values(self) -> dict[str, float]:
        out = super().epoch_values()
        if self.pairs:
            out["conflict_rate"] = float(self.conflicts) / self.pairs  # one sync per epoch
        self.conflicts = self.pairs = 0
        return out
