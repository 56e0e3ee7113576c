"""Several optimizer steps a call: one Lightning `training_step` runs a chunk of batches.

Lightning spends a fixed amount of Python on every `training_step` call (hooks, progress
counters, the optimizer closure, logging bookkeeping); on a small cohort on the CPU that is
a few percent of a step. Where it is safe, device placement hands a `StepChunk` of up to
`STEPS_PER_CALL` consecutive batches of one epoch to one call (`data/placement.py`), and the
module runs them with manual optimization, batch by batch as Lightning would: forward, the
losses summed for the epoch's log, `zero_grad`, backward, optimizer step. Same batches, same
draws of the shuffling generator and of torch's global one, same arithmetic: the weights and
metrics are bit-identical to one step a call.

What still counts optimizer steps: `trainer.global_step` (Lightning's manual-optimization
step counter), so `trainer.max_steps`, the step budget and checkpoints' `global_step` mean
what they did; a chunk stops at `max_steps` (and, as a fit stopped there mid-epoch, is
not followed by a validation). The loggers' step (`_batches_that_stepped`) is
advanced by the chunk's steps. What counts calls: the progress bar and the
`on_train_batch_*` hooks (one call per chunk, its batch is the `StepChunk`).

Where it applies (`why_one_step` says why not): device placement, one process, one
optimizer that needs no closure (not L-BFGS, `model=linear`), no learning-rate scheduler, no
gradient clipping or accumulation, 32-bit precision, a weighting that leaves gradients to
backward (not `weighting.manual`, e.g. pcgrad), validation at epoch ends only (chunks never
span an epoch, so every validation point, the budget's `check_val_every_n_epoch` included,
falls between chunks) and no checkpoint taken every n training steps. Elsewhere every call is
one step, as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from itertools import islice

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.profilers import PassThroughProfiler

from multihead.data.datamodule import CohortDataModule
from multihead.data.placement import DEVICE

STEPS_PER_CALL = 16  # most optimizer steps one Lightning training call takes

# a checkpoint's optimizer-step counters: Lightning's automatic optimization counts in the
# first, manual optimization (chunks, weighting.manual) in the second
AUTOMATIC_STEPS = "epoch_loop.automatic_optimization.optim_progress"
MANUAL_STEPS = "epoch_loop.manual_optimization.optim_step_progress"


def why_one_step(trainer: pl.Trainer, module: pl.LightningModule) -> str | None:
    """Why this fit takes one optimizer step per training call; None where chunks are safe.
    Asked when fit starts (optimizers configured, data not yet loaded)."""
    datamodule = trainer.datamodule
    if not isinstance(datamodule, CohortDataModule) or datamodule.resolved_placement() != DEVICE:
        return "batches are not drawn on the device (data.placement)"
    if trainer.world_size > 1:
        return "several processes"
    if getattr(getattr(module, "weighting", None), "manual", False):
        return "the weighting sets the gradients itself (weighting.manual)"
    optimizers = trainer.optimizers
    if len(optimizers) != 1 or needs_closure(optimizers[0]):
        return "an optimizer that re-evaluates the loss (L-BFGS) or several optimizers"
    if trainer.lr_scheduler_configs:
        return "a learning-rate scheduler"
    if trainer.gradient_clip_val:
        return "gradient clipping"
    if trainer.accumulate_grad_batches != 1:
        return "gradient accumulation"
    if str(trainer.precision) != "32-true":
        return "mixed precision"
    if not validates_at_epoch_ends(trainer):
        return "validation within an epoch"
    for callback in trainer.callbacks:
        steps = getattr(callback, "_every_n_train_steps", 0)
        if isinstance(callback, ModelCheckpoint) and (steps or callback._train_time_interval):  # noqa: SLF001
            return "checkpoints taken within an epoch"
    return None


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    return isinstance(optimizer, torch.optim.LBFGS) or getattr(optimizer, "needs_closure", False)


def validates_at_epoch_ends(trainer: pl.Trainer) -> bool:
    """Whether validation (and anything it triggers: checkpoints, early stopping) runs only
    after an epoch's last batch, and every batch of the epoch is trained."""
    interval = trainer.val_check_interval
    return (
        isinstance(interval, float)
        and interval == 1.0
        and trainer._val_check_time_interval is None  # noqa: SLF001
        and trainer.check_val_every_n_epoch is not None
        and isinstance(trainer.limit_train_batches, float)
        and trainer.limit_train_batches == 1.0
    )


def steps_per_call(trainer: pl.Trainer, module: pl.LightningModule, most: int) -> int:
    """`most` (at least 1) where chunks are safe, 1 elsewhere."""
    return max(1, int(most)) if why_one_step(trainer, module) is None else 1


STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def hooks_left_out(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether Lightning's wrappers around backward and the optimizer step would do nothing
    but count: no callback or module hook around them, `backward` as Lightning's, no
    profiler. Then a chunk calls torch's backward and step itself and counts the step (a
    fraction of a millisecond less a step)."""
    plain = all(
        getattr(type(c), hook) is getattr(pl.Callback, hook)
        for c in trainer.callbacks
        for hook in STEP_HOOKS
    )
    plain = plain and all(
        getattr(type(module), hook) is getattr(pl.LightningModule, hook)
        for hook in (*STEP_HOOKS, "backward")
    )
    return plain and isinstance(trainer.profiler, PassThroughProfiler)


def run_chunk(
    module: pl.LightningModule,
    chunk: Iterable[dict[str, torch.Tensor]],
    objective: Callable[[dict[str, torch.Tensor]], torch.Tensor],
) -> int:
    """One optimizer step per batch of `chunk`, as Lightning's automatic optimization takes
    it (`objective` is the training step's loss; then zero_grad, backward, step), stopping at
    `trainer.max_steps`. Returns the steps taken; the loggers' step counter has counted them
    all but the one Lightning counts after the call."""
    trainer = module.trainer
    optimizer = module.optimizers()
    loop = trainer.fit_loop.epoch_loop
    counted = loop.manual_optimization.optim_step_progress  # trainer.global_step
    direct = hooks_left_out(trainer, module)
    size = len(chunk)  # type: ignore[arg-type]
    if trainer.max_steps not in (None, -1):
        size = min(size, trainer.max_steps - trainer.global_step)
    taken = 0
    for batch in islice(chunk, size):  # the batches after a cut are never drawn
        loss = objective(batch)
        optimizer.zero_grad()
        if direct:  # what Lightning's manual backward and step come to here
            loss.backward()
            counted.increment_ready()
            optimizer.optimizer.step()
            counted.increment_completed()
        else:
            module.manual_backward(loss)
            optimizer.step()
        taken += 1
    loop._batches_that_stepped += max(taken - 1, 0)  # noqa: SLF001
    if taken < len(chunk):  # type: ignore[arg-type]
        # stopped by max_steps before the epoch's last batch: no validation follows, as none
        # follows such a batch with one step a call (Lightning sees the chunk end the epoch)
        loop._skip_next_val = True  # noqa: SLF001
    return taken


def count_in_automatic(trainer: pl.Trainer) -> None:
    """Lightning's automatic-optimization step counter set to the steps the chunks took (a
    fit with chunks counts them in the manual one): `trainer.global_step` still reads them
    once the module is back to automatic optimization after fit."""
    loop = trainer.fit_loop.epoch_loop
    counted = loop.manual_optimization.optim_step_progress.state_dict()
    loop.automatic_optimization.optim_progress.optimizer.step.load_state_dict(counted)


def same_step_counters(checkpoint: dict) -> None:
    """Both optimizer-step counters of a checkpoint's fit loop set to the one that counted:
    a checkpoint written with one step per call (before chunks existed, or with host
    placement) resumes with chunks at its global step, and the other way round."""
    loop = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    if AUTOMATIC_STEPS not in loop or MANUAL_STEPS not in loop:
        return
    automatic = loop[AUTOMATIC_STEPS]["optimizer"]["step"]
    manual = loop[MANUAL_STEPS]
    if automatic["total"]["completed"] > manual["total"]["completed"]:
        loop[MANUAL_STEPS] = copy.deepcopy(automatic)
    else:
        loop[AUTOMATIC_STEPS]["optimizer"]["step"] = copy.deepcopy(manual)
