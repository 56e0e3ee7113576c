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


def _hydra_runtime():
    """Hydra's runtime config in a Hydra run or sweep, else None (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def run_name(hydra_cfg=None) -> str | None:
    """The job's command-line overrides, e.g. `head=split loss=ce seed=1`: the same words
    as the job folder (without the keys it leaves out) and without the choice of logger;
    None (W&B picks a name) when there are none."""
    hydra_cfg = hydra_cfg if hydra_cfg is not None else _hydra_runtime()
    if hydra_cfg is None:
        return None
    excluded = set(hydra_cfg.job.config.override_dirname.exclude_keys)

    def shown(override: str) -> bool:
        key = override.lstrip("+~").split("=", 1)[0]
        return key not in excluded and key.split(".", 1)[0] not in ("logger", "hydra")

    return " ".join(str(o) for o in hydra_cfg.overrides.task if shown(str(o))) or None


def sweep_group(hydra_cfg=None) -> str | None:
    """Jobs of one `-m` sweep share a W&B group named after the sweep folder."""
    from hydra.types import RunMode

    hydra_cfg = hydra_cfg if hydra_cfg is not None else _hydra_runtime()
    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hydra_cfg.sweep.dir)).name


def wandb_logger(
    save_dir: str,
    project: str,
    mode: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    **kwargs,
):
    """A WandbLogger whose mode is decided here, so a run without a key never blocks; named
    after the job's overrides and grouped by sweep unless `name`/`group` are given."""
    from pytorch_lightning.loggers import WandbLogger

    mode = mode or ("online" if wandb_has_credentials() else "offline")
    if mode == "offline":
        Console().print(
            f"[yellow]W&B: no credentials found, logging offline under {save_dir}/"
            "wandb; upload later with `wandb sync <run dir>`.[/yellow]"
        )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        mode=mode,
        name=name or run_name(),
        group=group or sweep_group(),
        tags=[str(t) for t in tags] if tags else None,
        **kwargs,
    )


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
