"""The multi-task loss: one task loss per task, chosen by name, each task's loss on its own
slice of the head's outputs.

`loss=corn` is a preset (CORN on age, CE elsewhere); `loss.age=coral` changes one task. Tasks
whose loss is pooled (BCE) share one mean over all their outputs; every other task's loss is
its own mean. The total is the plain sum of the task parts; task weighting happens later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from multihead.errors import ConfigError
from multihead.models.losses.base import TaskLoss, TaskTargets
from multihead.models.losses.class_weights import balanced_class_weights, check_class_weights
from multihead.models.losses.registry import available_losses, task_loss_class
from multihead.tasks import Task, TaskLayout

#: a tiny floor for the normaliser: an empty task (sum 0) then gives 0, not NaN
EMPTY = 1e-12


def allowed_losses(task: Task) -> list[str]:
    return [name for name, cls in available_losses().items() if cls.supports(task)]


def task_kind(task: Task) -> str:
    if task.is_binned or task.needs_edges:
        return "binned from values (edges or bins)"
    return "ordered classes" if task.ordered else "unordered categories"


def resolve_task_losses(
    tasks: Sequence[Task], default: str, per_task: Mapping[str, str | None]
) -> dict[str, type[TaskLoss]]:
    """Task name -> loss class, or a ConfigError that says what is allowed."""
    names = [t.name for t in tasks]
    strays = sorted(k for k, v in per_task.items() if v is not None and k not in names)
    if strays:
        raise ConfigError(
            f"loss.{strays[0]} names no task; the tasks are {names}. The loss preset sets "
            f"loss.{strays[0]}: with that task removed, add loss.{strays[0]}=null to the "
            "command line (or set loss.<task>=<loss> for one of the tasks)"
        )
    chosen: dict[str, type[TaskLoss]] = {}
    for task in tasks:
        key = f"loss.{task.name}" if per_task.get(task.name) is not None else "loss.default"
        name = per_task.get(task.name) or default
        try:
            cls = task_loss_class(name)
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}") from None
        if not cls.supports(task):
            need = {
                "binned": "a task binned from values (data.tasks.<task>.bins or .edges)",
                "ordered": "ordered classes (bins/edges, or ordered: true)",
            }[cls.requires]
            raise ConfigError(
                f"{key}={name} needs {need}, but task {task.name!r} has {task_kind(task)}; "
                f"allowed for {task.name!r}: {', '.join(allowed_losses(task))}"
            )
        chosen[task.name] = cls
    return chosen


def check_options(options: Mapping[str, Mapping] | None) -> None:
    known = available_losses()
    for name, values in (options or {}).items():
        if name not in known:
            raise ConfigError(
                f"loss.options.{name}: no loss is called {name!r}; available: {', '.join(known)}"
            )
        known[name].check_options(**(values or {}))


class MultiTaskLoss(nn.Module):
    """Labels are class indices (batch, tasks), -1 where missing; values are the raw values
    behind binned labels (years), NaN where unknown."""

    def __init__(
        self,
        tasks: Sequence[Task],
        default: str = "ce",
        class_weights: str | None = None,
        options: Mapping[str, Mapping] | None = None,
        targets: Mapping[str, TaskTargets] | None = None,
        name: str = "custom",
        **per_task: str | None,
    ) -> None:
        super().__init__()
        chosen = self.check_config(tasks, default, class_weights, options, **per_task)
        self.name = name
        options = options or {}
        self.losses = nn.ModuleDict()
        for task in tasks:
            cls = chosen[task.name]
            kwargs = dict(options.get(cls.name) or {})
            if class_weights == "balanced" or cls.needs_targets:
                if targets is None or task.name not in targets:
                    raise ValueError(f"loss for task {task.name!r} needs its training targets")
            if class_weights == "balanced":
                kwargs["class_weight"] = balanced_class_weights(
                    targets[task.name].labels, task.num_classes
                )
            if cls.needs_targets:
                kwargs["targets"] = targets[task.name]
            self.losses[task.name] = cls(task, **kwargs)
        self.layout = TaskLayout(tuple(tasks), tuple(chosen[t.name].output_size(t) for t in tasks))

    @staticmethod
    def check_config(
        tasks: Sequence[Task],
        default: str = "ce",
        class_weights: str | None = None,
        options: Mapping[str, Mapping] | None = None,
        **per_task: str | None,
    ) -> dict[str, type[TaskLoss]]:
        """Everything about the config that can be checked without data; runs before training."""
        check_class_weights(class_weights)
        check_options(options)
        return resolve_task_losses(tasks, default, per_task)

    # --------------------------------------------------------------------------- structure

    def output_size(self, task: Task) -> int:
        return self.losses[task.name].output_size(task)

    def task_loss_names(self) -> dict[str, str]:
        return {name: loss.name for name, loss in self.losses.items()}

    def likelihoods(self) -> dict[str, str]:
        return {name: loss.likelihood for name, loss in self.losses.items()}

    def probabilistic(self) -> list[bool]:
        return [loss.probabilistic for loss in self.losses.values()]

    def diagnostic_tasks(self) -> dict[str, list[str]]:
        """Diagnostic name -> the tasks whose loss reports it."""
        out: dict[str, list[str]] = {}
        for name, loss in self.losses.items():
            for diag in loss.diagnostic_names:
                out.setdefault(diag, []).append(name)
        return out

    def _slices(self, logits: torch.Tensor):
        return zip(self.losses.values(), (logits[:, s] for s in self.layout.slices), strict=True)

    # ------------------------------------------------------------------------ the loss

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, values: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total (the sum of the parts) and each task's part."""
        if values is None:
            values = torch.full(labels.shape, float("nan"), device=labels.device)
        sums, weights = {}, {}
        for j, (loss, z) in enumerate(self._slices(logits)):
            # unlabelled samples (MISSING) weigh 0 inside `terms`: no boolean mask, no sync
            sums[loss.task.name], weights[loss.task.name] = loss.terms(
                z, labels[:, j], values[:, j]
            )
        pooled = [n for n, loss in self.losses.items() if loss.pooled]
        pooled_weight = torch.stack([weights[n] for n in pooled]).sum() if pooled else None
        parts = {
            n: sums[n] / (pooled_weight if n in pooled else weights[n]).clamp_min(EMPTY)
            for n in self.losses
        }
        return torch.stack(list(parts.values())).sum(), parts

    # ------------------------------------------------------------------------ decoding

    def probabilities(self, logits: torch.Tensor) -> list[torch.Tensor | None]:
        """Per task: class probabilities summing to 1, or None (a regression task)."""
        return [loss.probabilities(z) for loss, z in self._slices(logits)]

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoded class per sample and task (batch, tasks)."""
        return torch.stack([loss.predict(z) for loss, z in self._slices(logits)], dim=1)

    def years(self, logits: torch.Tensor) -> list[torch.Tensor | None]:
        """Per task: a point estimate in raw units (years) where the loss makes one."""
        return [loss.years(z) for loss, z in self._slices(logits)]

    def diagnostics(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Name -> bool (batch, tasks); False for tasks whose loss does not report it."""
        out: dict[str, torch.Tensor] = {}
        for j, (loss, z) in enumerate(self._slices(logits)):
            for name, flags in loss.diagnostics(z).items():
                if name not in out:
                    out[name] = torch.zeros(
                        logits.shape[0], len(self.losses), dtype=torch.bool, device=logits.device
                    )
                out[name][:, j] = flags
        return out
