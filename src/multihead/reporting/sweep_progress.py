"""Hydra callback: "job 3 of 12: head=fused loss=ce seed=1" as each job of a sweep starts.

N comes from re-expanding the sweep's overrides the way Hydra's basic sweeper does (see
`sweep_plan`); with another sweeper the line says "job 3" without a total.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from multihead.reporting.sweep_plan import planned_overrides


def progress_line(number: int, total: int | None, overrides: list[str]) -> str:
    """`number` counts from 1."""
    of = f" of {total}" if total else ""
    return f"job {number}{of}: {' '.join(overrides)}"


class SweepProgress(Callback):
    def __init__(self) -> None:
        self.total: int | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        planned = planned_overrides(config.hydra)
        self.total = len(planned) if planned is not None else None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():
            return
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        line = progress_line(
            int(hydra_cfg.job.num) + 1, self.total, [str(o) for o in hydra_cfg.overrides.task]
        )
        Console(soft_wrap=True).print(f"[bold cyan]{escape(line)}[/bold cyan]")
