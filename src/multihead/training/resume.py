"""Sweeps that resume: re-running an interrupted sweep with the same `hydra.sweep.dir` skips
the jobs that finished and resumes the others from their `checkpoints/last.ckpt`.

A job is the same job when the config it is asked to run (resolved, before `auto` values are
chosen) equals the one its folder recorded (`requested_config.yaml`). Then:
  * finished (`metrics.json` with the full record): skipped, its metrics returned as they are;
  * `last.ckpt` present: training resumes from it. Lightning restores the weights, the
    optimizer, the epoch and step counters and the callbacks (best checkpoint, early
    stopping); `RandomState` restores torch's random generator (dropout) and the data module
    restores its shuffling generator, so the resumed job draws the same batches and dropout
    masks as an uninterrupted one and ends with the same metrics (CPU, deterministic mode);
  * otherwise it starts afresh, dropping the results of any earlier attempt.
A folder with another config is never resumed from: the job starts afresh and drops the
earlier checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from multihead.run_folder import (
    clear_results,
    is_finished,
    last_checkpoint,
    read_metrics,
    read_requested_config,
    write_requested_config,
)


class RandomState(pl.Callback):
    """Saves torch's global random state (CPU and CUDA) in every checkpoint and restores it
    when training resumes from one."""

    def state_dict(self) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def requested_config(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


class JobStart:
    """What a job does with its folder: skip (finished), resume (checkpoint) or start."""

    def __init__(self, out: Path, cfg: DictConfig) -> None:
        self.out = out
        self.requested = requested_config(cfg)
        same = read_requested_config(out) == self.requested
        self.finished = read_metrics(out) if same and is_finished(out) else None
        checkpoint = last_checkpoint(out) if same and self.finished is None else None
        self.checkpoint = str(checkpoint) if checkpoint is not None else None

    def begin(self) -> None:
        """Drop an earlier attempt's results (and, starting afresh, its checkpoints), then
        record the requested config. In that order: a job's other ranks decide with their
        own `JobStart`, perhaps after this, and must decide the same (a rank that read the
        new requested config next to an old checkpoint would resume from it)."""
        self.out.mkdir(parents=True, exist_ok=True)
        clear_results(self.out, checkpoints=self.checkpoint is None)
        write_requested_config(self.out, self.requested)
        if self.checkpoint is not None:
            print(f"resuming from {self.checkpoint}", flush=True)
