"""The Hydra task function: one job of a run or a sweep, isolated from the others."""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from multihead.errors import MultiheadError, exit_with_message, full_error_wanted
from multihead.run_folder import FAILED_FILE, write_failure
from multihead.training.launchers import set_job_threads, spread_over_tasks
from multihead.training.loggers import finish_wandb
from multihead.training.run import train

log = logging.getLogger(__name__)


def quiet_lightning() -> None:
    """Keep the console to progress and result tables: Lightning's start-up chatter and a
    deprecation warning from its internals say nothing about the run."""
    for name in (
        "pytorch_lightning.utilities.rank_zero",
        "lightning_fabric.utilities.rank_zero",
        "lightning.pytorch.utilities.rank_zero",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_job(cfg: DictConfig) -> dict | None:
    """Train one job. In a sweep a failure is recorded in the job's folder and the sweep goes
    on; a single run stops: a project error (bad config or data) as one line and exit status
    2, anything else (a bug) with its traceback. A job of several submitit tasks runs here in
    every task (one rank each); only rank 0 returns the metrics."""
    quiet_lightning()
    launcher = HydraConfig.get().launcher if in_multirun() else None
    if launcher is not None:
        set_job_threads(launcher)
    try:
        if launcher is not None:
            spread_over_tasks(cfg, launcher)  # several submitit tasks: one rank each
        return train(cfg)
    except Exception as err:
        if not in_multirun():
            if isinstance(err, MultiheadError) and not full_error_wanted():
                exit_with_message(f"{type(err).__name__}: {err}")
            raise
        out = Path(HydraConfig.get().runtime.output_dir)
        write_failure(out, f"{type(err).__name__}: {err}", traceback.format_exc())
        log.error("job failed: %s: %s (details in %s)", type(err).__name__, err, out / FAILED_FILE)
        return None
    finally:
        finish_wandb()
