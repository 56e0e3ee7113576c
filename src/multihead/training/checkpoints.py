"""Checkpoints kept in memory and written to disk at most every `write_every_s` seconds.

Lightning's `ModelCheckpoint` writes `best.ckpt` whenever validation improves and `last.ckpt`
after every epoch: on a small cohort (a 5,000-gene network with Adam's state: 16 MB a file,
an epoch of 0.3 s) that is a third of the fit. `SparseWrites` takes the same decisions (same
files, same names, same state in every checkpoint) but keeps each checkpoint as an in-memory
copy and writes the pending ones - the best first, then the last, which names the best -
when `write_every_s` seconds have passed since the last writes, when training ends, and
when it fails (an exception, e.g. Ctrl-C or a launcher's stop). A job killed without
warning resumes from at most `write_every_s` seconds ago; 0 writes every checkpoint at
once, as Lightning does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from weakref import proxy

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer import call

LIVE = ("state_dict", "optimizer_states")  # a checkpoint's parts that training changes in place


def detached_copy(value: Any) -> Any:
    """`value` with every tensor copied into host memory (a GPU keeps no second model)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return type(value)((k, detached_copy(v)) for k, v in value.items())
    if isinstance(value, list | tuple) and type(value) in (list, tuple):
        return type(value)(detached_copy(v) for v in value)
    return value


class SparseWrites(ModelCheckpoint):
    def __init__(self, *args: Any, write_every_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_every_s = float(write_every_s)
        self._pending: dict[str, dict] = {}  # path -> checkpoint not yet written
        self._written_at = time.monotonic()
        self._live: tuple[int, dict] | None = None  # (global step, copies of the LIVE parts)
        self._round: tuple[int, dict] | None = None  # (global step, this round's first dump)

    def _live_copies(self, trainer: pl.Trainer, checkpoint: dict) -> dict:
        """Copies of the weights and optimizer state, made once per optimizer step: the best
        and the last checkpoint of one validation hold the same ones (they change only when
        the optimizer steps), so the second reuses the first's copies."""
        step = trainer.global_step
        if self._live is None or self._live[0] != step:
            self._live = (step, {k: detached_copy(checkpoint[k]) for k in LIVE if k in checkpoint})
        return self._live[1]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._live = None  # weights may have been loaded since: copies are never reused
        super().on_fit_start(trainer, pl_module)

    def _dump(self, trainer: pl.Trainer) -> dict:
        """What trainer.save_checkpoint saves. The last checkpoint of a round (the best one,
        then the last, same step) differs from the round's first only in the callbacks'
        states (this callback's best and last paths): those are taken anew, the rest (every
        other part is built from state that nothing changes in between) is the first's.
        Not where a callback has its own `on_save_checkpoint` (it may add anything); with
        `save_weights_only` there are no callbacks' states and the two are the same."""
        first = self._round
        if first is not None and first[0] == trainer.global_step and self._states_only(trainer):
            if self.save_weights_only:
                return dict(first[1])
            return {**first[1], "callbacks": call._call_callbacks_state_dict(trainer)}
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(self.save_weights_only)
        self._round = (trainer.global_step, checkpoint)
        return checkpoint

    @staticmethod
    def _states_only(trainer: pl.Trainer) -> bool:
        """Whether every callback's part of a checkpoint is its `state_dict` alone."""
        base = pl.Callback.on_save_checkpoint
        return all(type(c).on_save_checkpoint is base for c in trainer.callbacks)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # what trainer.save_checkpoint does, less the write; every process takes part
        checkpoint = self._dump(trainer)
        # weights and optimizer state change in place as training goes on: copied; the rest
        # of a checkpoint (counters, callbacks', data module's and random states) is built
        # anew by every dump
        live = self._live_copies(trainer, checkpoint)
        self._pending[filepath] = {k: live.get(k, v) for k, v in checkpoint.items()}
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        self._round = None  # a round of saves starts: the best checkpoint, then the last
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)  # the epoch's last one
        self._round = None
        due = time.monotonic() - self._written_at >= self.write_every_s
        if trainer.strategy.reduce_boolean_decision(due, all=False):  # rank 0's clock decides
            self.write_pending(trainer)

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        self._pending.pop(filepath, None)
        super()._remove_checkpoint(trainer, filepath)

    def write_pending(self, trainer: pl.Trainer, barrier: bool = True) -> None:
        """The best checkpoint before the last (the last names the best), on rank 0."""
        for path in sorted(self._pending, key=lambda p: p == self.last_model_path):
            trainer.strategy.save_checkpoint(self._pending.pop(path), path)
            if trainer.is_global_zero:
                for logger in trainer.loggers:
                    logger.after_save_checkpoint(proxy(self))
        self._written_at = time.monotonic()
        if barrier:
            trainer.strategy.barrier("SparseWrites.write_pending")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self.write_pending(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        self.write_pending(trainer, barrier=False)  # other processes may be gone


class DirectCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing a local checkpoint straight into a temporary file
    beside it and renaming it into place (atomic: a reader sees the old file or the whole new
    one). Lightning serialises into memory first and copies the bytes once more on the way
    to the file, a third slower for a 16 MB checkpoint. Paths with a scheme (`s3://`, ...)
    go Lightning's way."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            torch.save(checkpoint, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
