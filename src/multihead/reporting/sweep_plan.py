"""Which jobs a Hydra sweep planned: the count for "job i of N" and the list the report checks
for jobs that never left a folder.

Hydra's basic sweeper expands `hydra.sweeper.params` plus the command-line overrides into a
cartesian product in a fixed order; job `i` gets the `i`-th combination. Re-running that same
expansion (Hydra's own `split_arguments`) gives the plan without launching anything.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "BasicSweeper"
MULTIRUN_FILE = "multirun.yaml"


def sweep_arguments(hydra_cfg: DictConfig) -> list[str]:
    """Sweeper params (e.g. from `experiment=`) first, then the command line, as Hydra does."""
    params = hydra_cfg.get("sweeper", {}).get("params") or {}
    task = list(hydra_cfg.get("overrides", {}).get("task") or [])
    return [f"{key}={value}" for key, value in params.items()] + [str(o) for o in task]


def planned_overrides(hydra_cfg: DictConfig) -> list[list[str]] | None:
    """The overrides of every planned job, in job-number order; None for sweepers other than
    Hydra's basic one, or sweeps it cannot expand without the config loader (glob choices)."""
    target = str(hydra_cfg.get("sweeper", {}).get("_target_", ""))
    if not target.endswith(BASIC_SWEEPER):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides(sweep_arguments(hydra_cfg))
        batches = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # any parse problem only means "plan unknown"
        return None
    return [list(job) for batch in batches for job in batch]


def planned_from_sweep_dir(sweep_dir: str | Path) -> list[list[str]] | None:
    """The plan recorded in a sweep folder's `multirun.yaml`, or None when there is none."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    if not path.exists():
        return None
    cfg = OmegaConf.load(path)
    return planned_overrides(cfg.hydra) if "hydra" in cfg else None
