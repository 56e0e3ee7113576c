"""The Hydra task function: one job of a run or a sweep, isolated from the others."""

from __future__ import annotations

import json
import logging
import traceback
import warnings
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from multihead.training.loggers import finish_wandb
from multihead.training.run import train

log = logging.getLogger(__name__)
FAILED_FILE = "failed.json"


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
    on; a single run re-raises so the command fails loudly."""
    quiet_lightning()
    try:
        return train(cfg)
    except Exception as err:
        if not in_multirun():
            raise
        out = Path(HydraConfig.get().runtime.output_dir)
        (out / FAILED_FILE).write_text(
            json.dumps(
                {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()},
                indent=2,
            )
        )
        log.error("job failed: %s: %s (details in %s)", type(err).__name__, err, out / FAILED_FILE)
        return None
    finally:
        finish_wandb()
