"""Everything measured on one evaluation split, for every task at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torchmetrics import MeanMetric

from multihead.metrics.joint import JointAccuracy
from multihead.metrics.prediction_store import PredictionStore
from multihead.metrics.task_metrics import TaskMetrics
from multihead.tasks import TaskLayout

PAIR = ("loss", "uninformed")  # a task's loss and that of an uninformed prediction


class EvaluationMetrics(nn.Module):
    """Per-task metrics + joint accuracy + loss + loss-specific diagnostics.

    Created in the LightningModule's `setup()` (never `__init__`): under ddp_spawn, states
    built before the spawn live in shared memory and every rank would add into the same ones.

    `diagnostics`: names measured on every task, or name -> the tasks it applies to.
    `probabilistic`: per task, whether its loss gives class probabilities (default: all).
    `task_losses`: also keep each task's mean loss and the mean loss of an uninformed
    prediction (see `capped_task_losses`).
    """

    def __init__(
        self,
        layout: TaskLayout,
        diagnostics: Sequence[str] | Mapping[str, Sequence[str]],
        keep_predictions: bool,
        probabilistic: Sequence[bool] | None = None,
        task_losses: bool = False,
    ):
        super().__init__()
        self.layout = layout
        probabilistic = [True] * len(layout.tasks) if probabilistic is None else probabilistic
        self.tasks = nn.ModuleDict(
            {t.name: TaskMetrics(t, p) for t, p in zip(layout.tasks, probabilistic, strict=True)}
        )
        self.joint = JointAccuracy()
        self.loss = MeanMetric()
        if not isinstance(diagnostics, Mapping):
            diagnostics = {name: layout.names for name in diagnostics}
        self.diagnostics = nn.ModuleDict(
            {
                name: nn.ModuleDict({task: MeanMetric() for task in tasks})
                for name, tasks in diagnostics.items()
            }
        )
        self.predictions = PredictionStore() if keep_predictions else None
        self.task_losses = (
            nn.ModuleDict(
                {t.name: nn.ModuleDict({k: MeanMetric() for k in PAIR}) for t in layout.tasks}
            )
            if task_losses
            else None
        )

    def update(
        self,
        probs: list[torch.Tensor | None],
        labels: torch.Tensor,
        values: torch.Tensor,
        index: torch.Tensor,
        loss: torch.Tensor,
        flags: dict[str, torch.Tensor],
        preds: torch.Tensor | None = None,
        years: list[torch.Tensor | None] | None = None,
        parts: Mapping[str, torch.Tensor] | None = None,
        uninformed: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """`preds` (batch, tasks): decoded classes, default the argmax of each task's `probs`;
        `years`: per task a point estimate in raw units, or None; `parts` and `uninformed`:
        each task's loss on the batch, and that of an uninformed prediction (`task_losses`)."""
        if preds is None:
            preds = torch.stack([p.argmax(dim=1) for p in probs], dim=1)
        years = [None] * len(self.tasks) if years is None else years
        for j, metrics in enumerate(self.tasks.values()):
            metrics.update(probs[j], labels[:, j], values[:, j], preds[:, j], years[j])
        self.joint.update(preds, labels)
        self.loss.update(loss.detach(), weight=labels.shape[0])
        if self.task_losses is not None:
            for name, pair in self.task_losses.items():
                pair[PAIR[0]].update(parts[name].detach(), weight=labels.shape[0])
                pair[PAIR[1]].update(uninformed[name].detach(), weight=labels.shape[0])
        names = self.layout.names
        for name, per_task in self.diagnostics.items():
            for task, metric in per_task.items():
                j = names.index(task)
                labelled = labels[:, j] >= 0
                if labelled.any():
                    metric.update(flags[name][labelled, j].float())
        if self.predictions is not None:
            self.predictions.update(
                index, self._probs_matrix(probs, preds), preds, self._years_matrix(years, preds)
            )

    @staticmethod
    def _probs_matrix(probs: list[torch.Tensor | None], preds: torch.Tensor) -> torch.Tensor:
        """(batch, classes) of the tasks that have probabilities, concatenated in task order."""
        present = [p.detach() for p in probs if p is not None]
        return torch.cat(present, dim=1) if present else preds.new_zeros(len(preds), 0).float()

    @staticmethod
    def _years_matrix(years: list[torch.Tensor | None], preds: torch.Tensor) -> torch.Tensor:
        """(batch, tasks) point estimates, NaN for tasks without one."""
        nan = torch.full(preds.shape[:1], float("nan"), device=preds.device)
        return torch.stack([nan if y is None else y.detach().float() for y in years], dim=1)

    def compute_scalars(self) -> dict[str, float | None]:
        """Flat `task/metric` keys, plus `joint_accuracy` and `loss`. Collective under DDP.
        None marks a metric that does not apply (AUROC and ECE without probabilities)."""
        out: dict[str, float | None] = {}
        for name, metrics in self.tasks.items():
            out.update({f"{name}/{k}": v for k, v in metrics.compute_scalars().items()})
        for diag, per_task in self.diagnostics.items():
            out.update({f"{task}/{diag}": float(m.compute()) for task, m in per_task.items()})
        out["joint_accuracy"] = float(self.joint.compute())
        out["loss"] = float(self.loss.compute())
        return out

    def task_loss_means(self) -> dict[str, dict[str, float]]:
        """Per task: its mean loss and that of an uninformed prediction (`PAIR` keys).
        Collective under DDP."""
        assert self.task_losses is not None
        return {
            name: {k: float(pair[k].compute()) for k in PAIR}
            for name, pair in self.task_losses.items()
        }

    def capped_task_losses(self) -> dict[str, torch.Tensor]:
        """Each task's mean loss, capped at the mean loss of an uninformed prediction (the
        network's outputs all zero: the same output for every sample). Collective under DDP.

        Summed over tasks, this picks checkpoints and scores tuning trials (`val/capped_loss`):
        a task the network cannot predict (age on a small expression cohort) then counts as
        uninformed however far its head overfits, and no longer vetoes the checkpoint or the
        configuration where another task (sex) is learned. Where every task beats its
        uninformed loss, as on the built-in cohort, it equals the summed loss."""
        assert self.task_losses is not None
        return {
            name: torch.minimum(pair[PAIR[0]].compute(), pair[PAIR[1]].compute())
            for name, pair in self.task_losses.items()
        }

    def reset(self) -> None:
        leaves = [*self.tasks.values(), self.joint, self.loss]
        if self.task_losses is not None:
            leaves += [m for pair in self.task_losses.values() for m in pair.values()]
        leaves += [m for per_task in self.diagnostics.values() for m in per_task.values()]
        if self.predictions is not None:
            leaves.append(self.predictions)
        for metric in leaves:
            metric.reset()
