"""Experiment loggers from `logger=`; W&B never prompts: offline when it has no credentials."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger
from rich.console import Console

WANDB_HOST = "api.wandb.ai"


def wandb_has_credentials() -> bool:
    """An API key in the environment or a netrc entry: the two places wandb looks."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.exists() and netrc.netrc(path).authenticators(WANDB_HOST) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_logger(save_dir: str, project: str, mode: str | None = None, **kwargs):
    """A WandbLogger whose mode is decided here, so a run without a key never blocks."""
    from pytorch_lightning.loggers import WandbLogger

    mode = mode or ("online" if wandb_has_credentials() else "offline")
    if mode == "offline":
        Console().print(f"[yellow]W&B: no credentials found, logging offline under {save_dir}/"
                        "wandb; upload later with `wandb sync <run dir>`.[/yellow]")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=save_dir, project=project, mode=mode, **kwargs)


def build_loggers(cfg: DictConfig | None) -> list[Logger]:
    """One logger per entry of the `logger` group (several with `logger=many`)."""
    if not cfg:
        return []
    return [instantiate(entry) for entry in cfg.values() if entry is not None]


def finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
