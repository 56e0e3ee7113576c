"""Hydra callbacks of a sweep (`python train.py -m ...`): "job i of N" as each job starts, and
one table of every job at the end, failed jobs included.

N comes from re-expanding the sweep's overrides the way Hydra's basic sweeper does (see
`run_folder.planned_overrides`); with another sweeper the line says "job 3" without a total.
Each job is read back from its folder with `run_folder.load_run`, the reader the report uses.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from multihead.metrics.names import JOINT, KEY_METRICS
from multihead.reporting.tables import sweep_table, wide_console
from multihead.run_folder import (
    FAILED_FILE,
    JOB_NUMBER,
    OK,
    SWEEP_SUMMARY_FILE,
    is_job_dir,
    job_overrides,
    load_run,
    planned_overrides,
    register_job_folder_resolver,
    write_failure,
)

# a launcher that runs jobs in other processes (joblib, submitit) unpickles these callbacks
# there before it names the job's folder (conf/hydra/default.yaml's `sweep.subdir`)
register_job_folder_resolver()


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


def job_row(job_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """One row of sweep_summary.csv: the job's overrides, status ("ok"/"FAILED"), its key
    metrics, or the first line of its error."""
    run = load_run(job_dir)
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides)}
    row.update(dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith("+")))
    if run["status"] == OK:
        row["status"] = "ok"
        tasks = dict.fromkeys(c.split("/", 1)[0] for c in run if "/" in c)
        row.update(
            {f"{t}/{k}": run[f"{t}/{k}"] for t in tasks for k in KEY_METRICS if f"{t}/{k}" in run}
        )
        row[JOINT] = run.get(JOINT)
    else:
        row.update(status="FAILED", error=run["error"])
    return row


def sweep_jobs(sweep_dir: Path, planned: int | None) -> list[tuple[Path, list[str]]]:
    """The sweep's job folders on disk, in job-number order, with the overrides Hydra saved
    in each. Read from disk, not collected as jobs end: under joblib or submitit each job
    ends in another process, and only the folders are shared. With a known plan, folders
    numbered beyond it (left by an earlier sweep in the same folder) are not this sweep's.
    A `hydra.sweep.subdir` without the job number puts unnumbered folders last, by name."""
    jobs = []
    for path in sorted(sweep_dir.iterdir()) if sweep_dir.is_dir() else []:
        if not is_job_dir(path):
            continue
        match = JOB_NUMBER.match(path.name)
        number = int(match.group(1)) if match else None
        if planned is not None and number is not None and number >= planned:
            continue
        jobs.append((number is None, number or 0, path.name, path))
    return [(path, job_overrides(path)) for *_, path in sorted(jobs)]


class SweepSummary(Callback):
    """Records a failed job in its folder as it ends (in the job's process), then reads every
    job folder back and prints and saves the comparison table (in the launching process)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        job_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not (job_dir / FAILED_FILE).exists():
            error = job_return._return_value
            write_failure(job_dir, f"{type(error).__name__}: {error}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        planned = planned_overrides(config.hydra)
        jobs = sweep_jobs(sweep_dir, None if planned is None else len(planned))
        if not jobs:
            return
        frame = pd.DataFrame([job_row(d, o) for d, o in jobs])
        frame.to_csv(sweep_dir / SWEEP_SUMMARY_FILE, index=False)
        wide_console(160).print(
            sweep_table(frame, f"sweep summary: {len(frame)} jobs ({sweep_dir})")
        )
        failed = int((frame["status"] != "ok").sum())
        command = escape(f"python -m multihead.report {sweep_dir}")
        Console(soft_wrap=True).print(
            f"means, intervals and paired tests over seeds: [bold]{command}[/bold]"
        )
        if failed:
            Console().print(
                f"[red]{failed} of {len(frame)} jobs failed; see {FAILED_FILE} "
                "in their folders.[/red]"
            )
            sys.exit(1)
