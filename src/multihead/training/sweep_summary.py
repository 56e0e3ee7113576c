"""At the end of `-m`, one table: a row per job (head x loss x ...), failed jobs included."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from multihead.reporting.console import TASK_COLUMNS, wide_console

KEY_METRICS = ("balanced_accuracy", "f1_macro", "auroc_macro", "ece", "mae_years")


def job_row(job_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Read one job back from its folder: its metrics, or the first line of its error."""
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides)}
    row.update(dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith("+")))
    metrics_file, failed_file = job_dir / "metrics.json", job_dir / "failed.json"
    if metrics_file.exists() and not failed_file.exists():
        metrics = json.loads(metrics_file.read_text())
        row["status"] = "ok"
        for task, values in metrics["tasks"].items():
            row.update({f"{task}/{k}": values[k] for k in KEY_METRICS if k in values})
        row["joint_accuracy"] = metrics.get("joint_accuracy")
    else:
        error = (
            json.loads(failed_file.read_text())["error"]
            if failed_file.exists()
            else "no metrics.json (job did not finish)"
        )
        row.update(status="FAILED", error=error.splitlines()[0] if error else "")
    return row


def summary_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    group_cols = [
        c
        for c in frame.columns
        if c not in ("job", "overrides", "status", "error")
        and "/" not in c
        and c != "joint_accuracy"
    ]
    metric_cols = [c for c in frame.columns if "/" in c or c == "joint_accuracy"]
    for col in [*group_cols, "status"]:
        table.add_column(col)
    for col in metric_cols:
        task, _, metric = col.rpartition("/")
        label = TASK_COLUMNS.get(metric, metric.replace("_", " "))
        table.add_column(f"{task}\n{label}" if task else label, justify="right", no_wrap=True)
    for _, row in frame.iterrows():
        cells = [escape(str(row[c])) for c in group_cols]
        status = (
            "ok"
            if row["status"] == "ok"
            else f"[red]FAILED[/red] {escape(str(row.get('error', '')))}"
        )
        values = [("–" if pd.isna(row.get(c)) else f"{row[c]:.3f}") for c in metric_cols]
        table.add_row(*cells, status, *values)
    return table


class SweepSummary(Callback):
    """Hydra callback: collects each job's folder as it ends, prints and saves the comparison."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Path, list[str]]] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        job_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not (job_dir / "failed.json").exists():
            (job_dir / "failed.json").write_text(
                json.dumps(
                    {
                        "error": f"{type(job_return._return_value).__name__}: "
                        f"{job_return._return_value}"
                    }
                )
            )
        self.jobs.append((job_dir, list(job_return.overrides)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.jobs:
            return
        frame = pd.DataFrame([job_row(d, o) for d, o in self.jobs])
        sweep_dir = Path(config.hydra.sweep.dir)
        frame.to_csv(sweep_dir / "sweep_summary.csv", index=False)
        wide_console(160).print(
            summary_table(frame, f"sweep summary: {len(frame)} jobs ({sweep_dir})")
        )
        failed = int((frame["status"] != "ok").sum())
        self.jobs = []
        command = escape(f"python -m multihead.report {sweep_dir}")
        Console(soft_wrap=True).print(
            f"means, intervals and paired tests over seeds: [bold]{command}[/bold]"
        )
        if failed:
            Console().print(
                f"[red]{failed} of {len(frame)} jobs failed; see failed.json "
                "in their folders.[/red]"
            )
            sys.exit(1)
