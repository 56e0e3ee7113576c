"""The LightningModule: one network, one multi-task loss, one task weighting, exact per-task
evaluation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from multihead.data.placement import StepChunk
from multihead.metrics.evaluation import EvaluationMetrics
from multihead.models.losses.multitask import MultiTaskLoss
from multihead.models.network import count_parameters
from multihead.models.weighting.base import TaskWeighting
from multihead.tasks import TaskLayout
from multihead.training.steps import (
    STEPS_PER_CALL,
    count_in_automatic,
    run_chunk,
    same_step_counters,
    steps_per_call,
)

WEIGHTING_COUNTERS = "weighting_counters"  # checkpoint key: e.g. PCGrad's step count
CAPPED_LOSS = "capped_loss"  # logged as val/capped_loss: see EvaluationMetrics.capped_task_losses


def as_logged(value: float | torch.Tensor) -> torch.Tensor:
    """A scalar as `self.log` keeps it: a float32 tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    return torch.tensor(value, dtype=torch.float32)


class MultiHeadModule(pl.LightningModule):
    """A gradient weighting (`weighting.manual`, e.g. pcgrad) runs with manual optimization:
    it sets the gradients itself, so Lightning's backward is not used. Where it is safe
    (`training/steps.py`), one training call takes a chunk of up to `most_steps_per_call`
    optimizer steps, with manual optimization too."""

    most_steps_per_call = STEPS_PER_CALL  # 1: one optimizer step per training call

    def __init__(
        self,
        net: nn.Module,
        loss: MultiTaskLoss,
        layout: TaskLayout,
        optimizer: Callable[..., torch.optim.Optimizer],
        weighting: TaskWeighting,
        output_dir: str | None = None,
        plots: bool = False,
        head_decay: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss
        self.weighting = weighting
        self.layout = layout
        self.optimizer_factory = optimizer
        self.output_dir = output_dir
        self.plots = plots  # `plots`: confusion PNGs in the run folder as well
        self.head_decay = dict(head_decay or {})  # task -> decay of its own head parameters
        self.automatic_optimization = not weighting.manual
        self.steps_per_call = 1  # this fit's, chosen when it starts
        self.val_metrics: EvaluationMetrics | None = None
        self.test_metrics: EvaluationMetrics | None = None
        self.test_scalars: dict[str, float | None] = {}
        # this epoch's training losses per step (detached; summed when it ends) and batch sizes
        self._train_steps: list[tuple[torch.Tensor, ...]] = []
        self._train_sizes: list[int] = []
        self._train_names: list[str] = []

    # ------------------------------------------------------------------------- structure

    def setup(self, stage: str) -> None:
        diagnostics = self.loss_fn.diagnostic_tasks()
        probabilistic = self.loss_fn.probabilistic()
        self.val_metrics = EvaluationMetrics(
            self.layout,
            diagnostics,
            keep_predictions=False,
            probabilistic=probabilistic,
            task_losses=True,
        )
        self.test_metrics = EvaluationMetrics(
            self.layout,
            diagnostics,
            keep_predictions=True,
            probabilistic=probabilistic,
            task_losses=True,
        )
        self.val_metrics.to(self.device)
        self.test_metrics.to(self.device)

    def model_parameters(self) -> list[nn.Parameter]:
        """What predicts: the network and the loss's own parameters (e.g. CORAL's biases)."""
        return [p for m in (self.net, self.loss_fn) for p in m.parameters() if p.requires_grad]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by part; `model` (trunk + head + loss) is what a design costs."""
        counts = {
            "trunk": count_parameters(self.net.trunk),
            "head": count_parameters(self.net.head),
            "loss": count_parameters(self.loss_fn),
            "weighting": count_parameters(self.weighting),
        }
        counts["model"] = counts["trunk"] + counts["head"] + counts["loss"]
        return counts

    def load_weights(self, checkpoint: str | Path) -> None:
        """Every weight of a saved checkpoint (network, loss, learned task weights) into this
        process's module: after a ddp_spawn fit the main process holds the last epoch's."""
        state = torch.load(checkpoint, map_location=self.device, weights_only=True)
        self.load_state_dict(state["state_dict"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[WEIGHTING_COUNTERS] = self.weighting.counters()
        if self.steps_per_call > 1:  # read back with one step a call too
            same_step_counters(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.weighting.load_counters(checkpoint.get(WEIGHTING_COUNTERS) or {})
        same_step_counters(checkpoint)  # written with or without chunks: the same global step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A task in `model.head_decay` gets its own decay on the parameters its head alone
        uses (one penalty per task: age and sex rarely want the same). Learned task weights
        get no weight decay: decay would pull every log-variance towards 0, i.e. towards
        equal weights, whatever the data say."""
        owned = self.net.head.task_parameters()
        own = [
            {"params": owned[task], "weight_decay": float(decay)}
            for task, decay in self.head_decay.items()
        ]
        separate = {id(p) for group in own for p in group["params"]}
        shared = [p for p in self.model_parameters() if id(p) not in separate]
        groups = ([{"params": shared}] if shared else []) + own
        weighting = [p for p in self.weighting.parameters() if p.requires_grad]
        if weighting:
            groups.append({"params": weighting, "weight_decay": 0.0})
        return self.optimizer_factory(params=groups)

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams(
                {f"parameters/{k}": v for k, v in self.parameter_counts().items()}
            )
        # before the training data is loaded: the data module chunks its batches
        self.steps_per_call = steps_per_call(self.trainer, self, self.most_steps_per_call)
        if self.steps_per_call > 1:
            self.automatic_optimization = False
            self.trainer.datamodule.steps_per_call = self.steps_per_call

    def teardown(self, stage: str) -> None:
        if stage == "fit" and self.steps_per_call > 1:  # the next fit chooses again
            count_in_automatic(self.trainer)
            self.automatic_optimization = not self.weighting.manual
            self.trainer.datamodule.steps_per_call = 1

    # -------------------------------------------------------------------------- training

    def task_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each task's loss on the batch (before weighting). With `model.ensemble`, the mean
        over the networks of each one's own loss: every network learns on its own, never
        through the averaged output (which would train one wide network, not an ensemble)."""
        outputs = self.net.member_outputs(batch["x"])
        each = [self.loss_fn(out, batch["y"], batch["value"])[1] for out in outputs]
        if len(each) == 1:
            return each[0]
        return {task: torch.stack([parts[task] for parts in each]).mean() for task in each[0]}

    def _reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="mean")

    def training_objective(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted loss a step minimises; its parts are summed for the epoch's log."""
        objective, _ = self._objective_and_parts(batch)
        return objective

    def _objective_and_parts(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = self.task_losses(batch)
        objective = self.weighting(parts)
        self._accumulate_train_losses(objective, parts, batch["y"].shape[0])
        return objective, parts

    def training_step(
        self, batch: dict[str, torch.Tensor] | StepChunk, batch_idx: int
    ) -> torch.Tensor | None:
        if isinstance(batch, StepChunk):  # several optimizer steps (training/steps.py)
            run_chunk(self, batch, self.training_objective)
            return None
        objective, parts = self._objective_and_parts(batch)
        if self.automatic_optimization:
            return objective
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.weighting.set_gradients(parts, self.model_parameters(), self._reduce_mean)
        optimizer.step()
        return None

    def _accumulate_train_losses(
        self, objective: torch.Tensor, parts: dict[str, torch.Tensor], size: int
    ) -> None:
        """The step's training losses, kept (detached, on the device) for the epoch's
        sample-weighted means: no op a step (a `self.log` per value costs far more than the
        values, and even a running sum is a few kernels a step); one stack when it ends."""
        self._train_steps.append((objective.detach(), *(p.detach() for p in parts.values())))
        self._train_sizes.append(size)
        if not self._train_names:
            self._train_names = ["loss", *(f"{name}/loss" for name in parts)]

    def _train_sums(self) -> torch.Tensor | None:
        """This epoch's losses x samples, then the samples: [sum_b l_b n_b ..., sum_b n_b]."""
        if not self._train_steps:
            return None
        width = len(self._train_steps[0])
        values = torch.stack([v for step in self._train_steps for v in step]).view(-1, width)
        sizes = torch.tensor(self._train_sizes, dtype=values.dtype, device=values.device)
        return torch.cat([(values * sizes[:, None]).sum(0), sizes.sum()[None]])

    def on_train_epoch_start(self) -> None:
        self._train_steps, self._train_sizes = [], []

    def on_train_epoch_end(self) -> None:
        values: dict[str, torch.Tensor] = {}
        sums = self._train_sums()
        if sums is not None:  # weighted means over every process's samples
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            means = sums[:-1] / sums[-1]
            values.update({f"train/{n}": v for n, v in zip(self._train_names, means, strict=True)})
        weights = self.weighting.epoch_values()  # identical on every process
        values.update({f"weighting/{k}": as_logged(v) for k, v in weights.items()})
        self._log_at_once(values, train_epoch_end=True)
        if "train/loss" in values:
            self._show_in_progress_bar("train/loss", values["train/loss"])

    # ------------------------------------------------------------------------ evaluation

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: EvaluationMetrics) -> None:
        logits = self.net(batch["x"])
        _, parts = self.loss_fn(logits, batch["y"], batch["value"])
        loss_fn = self.loss_fn
        uninformed = None
        if metrics.task_losses is not None:
            _, uninformed = loss_fn(torch.zeros_like(logits), batch["y"], batch["value"])
        metrics.update(
            loss_fn.probabilities(logits),
            batch["y"],
            batch["value"],
            batch["index"],
            self.weighting.selection_loss(parts),
            loss_fn.diagnostics(logits),
            preds=loss_fn.predict(logits),
            years=loss_fn.years(logits),
            parts=parts,
            uninformed=uninformed,
        )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        scalars = self.val_metrics.compute_scalars()  # synced across ranks by torchmetrics
        capped = self.weighting.selection_loss(self.val_metrics.capped_task_losses())
        scalars[CAPPED_LOSS] = float(capped)
        for name, pair in self.val_metrics.task_loss_means().items():  # as train/<task>/loss
            scalars[f"{name}/loss"] = pair["loss"]
        self.val_metrics.reset()
        if not self.trainer.sanity_checking:  # Lightning neither logs nor keeps a sanity check's
            values = {f"val/{k}": as_logged(v) for k, v in scalars.items() if v is not None}
            self._log_at_once(values)
            self._show_in_progress_bar("val_joint", values["val/joint_accuracy"])

    def _log_at_once(self, values: dict[str, torch.Tensor], train_epoch_end: bool = False) -> None:
        """Epoch-end scalars at once, as Lightning's epoch-end logging would write them (one
        row: same step, same `epoch`, float32 values), without a `self.log` per value: each
        costs about a millisecond of Lightning bookkeeping, a fifth of a small cohort's
        validation. The values are identical on every process (torchmetrics' compute syncs
        the metrics, the strategy reduces the training sums, task weights are shared), so they
        need no `sync_dist`. They also go into `trainer.callback_metrics`, where
        checkpointing, early stopping and tuning read any `val/...` or `train/...` key.

        `train_epoch_end`: logged at the step Lightning's fit loop logs a training epoch's
        values at (one before its batch counter, which has counted the epoch's last step)."""
        trainer = self.trainer
        trainer.callback_metrics.update(values)
        loop = trainer.fit_loop.epoch_loop
        loop._batches_that_stepped -= int(train_epoch_end)  # noqa: SLF001 - as the fit loop
        try:
            trainer._logger_connector.log_metrics(values)  # noqa: SLF001 - self.log's own path
        finally:
            loop._batches_that_stepped += int(train_epoch_end)  # noqa: SLF001

    def _show_in_progress_bar(self, name: str, value: torch.Tensor) -> None:
        """What `self.log(name, value, prog_bar=True, logger=False)` at an epoch's end does
        (the value in the progress bar and in `trainer.callback_metrics`), without its
        bookkeeping."""
        trainer = self.trainer
        trainer.callback_metrics[name] = value
        trainer._logger_connector._progress_bar_metrics[name] = value.item()  # noqa: SLF001

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        from multihead.training.results import collect_test_results, write_test_artifacts

        results = collect_test_results(self.test_metrics, self.loss_fn)  # collective: all ranks
        self.test_metrics.reset()
        self.test_scalars = results.scalars
        self.log_dict(
            {f"test/{k}": v for k, v in results.scalars.items() if v is not None}, sync_dist=True
        )
        if self.trainer.is_global_zero and self.output_dir is not None:
            write_test_artifacts(
                Path(self.output_dir), results, self.trainer.datamodule.cohort, self.plots
            )
