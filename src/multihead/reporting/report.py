"""Build a sweep's comparison report from its folders: tables, comparisons, plots, report.md.

Reads only what the jobs wrote (plus the cohort rebuilt from a job's config for the reference
models); nothing is trained and nothing touches the network. A failed or missing job, a
plot that cannot be drawn, or data that cannot be rebuilt becomes a line in the report,
never a crash: a half-finished sweep still deserves a report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from multihead.reporting.calibration import plot_reliability, variant_reliability
from multihead.reporting.comparisons import ALPHA, DEFAULT_REFERENCE, choose_reference, compare
from multihead.reporting.confusion_panels import plot_confusions
from multihead.reporting.curves import plot_validation_curves
from multihead.reporting.job_files import pooled_curves, variants
from multihead.reporting.report_text import compose
from multihead.reporting.runs import load_runs, ok_runs, task_names
from multihead.reporting.summary import summarise
from multihead.reporting.variant_plots import (
    incoherent_rates,
    plot_incoherent_rate,
    plot_metric_by_variant,
)

if TYPE_CHECKING:
    from multihead.reporting.baselines import ReferenceResult

log = logging.getLogger(__name__)
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.csv"
COMPARISONS_FILE = "comparisons.csv"
JOBS_FILE = "jobs.csv"
PLOTS_DIR = "plots"


@dataclass
class Report:
    """Everything the report computed, and where it was written."""

    sweep_dir: Path
    out_dir: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    reference: str
    references: ReferenceResult | None
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def markdown_path(self) -> Path:
        return self.out_dir / REPORT_FILE


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _plot_jobs(
    runs: pd.DataFrame, summary: pd.DataFrame
) -> list[tuple[str, str, Callable[[], Figure]]]:
    """(title, file name, function drawing the Figure) for every plot the files allow."""
    jobs: list[tuple[str, str, Callable[[], Figure]]] = [
        (
            "Key metrics by variant",
            "metrics_by_variant.png",
            lambda: plot_metric_by_variant(summary),
        ),
    ]
    for task in task_names(ok_runs(runs)):
        jobs.append(
            (
                f"Confusion matrices: {task}",
                f"confusion_{task}.png",
                lambda t=task: plot_confusions(runs, t),
            )
        )
    for task in task_names(ok_runs(runs)):
        jobs.append(
            (
                f"Reliability: {task}",
                f"reliability_{task}.png",
                lambda t=task: plot_reliability(variant_reliability(runs, t), t),
            )
        )
    rates = incoherent_rates(runs)
    if len(rates):
        jobs.append(
            (
                "Incoherent BCE predictions",
                "incoherent_rate.png",
                lambda: plot_incoherent_rate(rates),
            )
        )
    curves = pooled_curves(runs)
    if len(curves):
        jobs.append(
            ("Validation curves", "validation_curves.png", lambda: plot_validation_curves(curves))
        )
    return jobs


def write_plots(
    runs: pd.DataFrame, summary: pd.DataFrame, plots_dir: Path, notes: list[str]
) -> dict[str, Path]:
    """Draw every plot that the jobs' files allow; a plot that fails becomes a note."""
    written: dict[str, Path] = {}
    for title, name, make in _plot_jobs(runs, summary):
        try:
            written[title] = save_figure(make(), plots_dir / name)
        except Exception as err:  # one broken file must not sink the whole report
            log.warning("plot %s failed: %s", name, err)
            notes.append(f"plot `{name}` could not be drawn: {type(err).__name__}: {err}")
    return written


def _references(runs: pd.DataFrame, notes: list[str]) -> ReferenceResult | None:
    """Reference rows, imported here: they need torch and the data code, the rest does not."""
    from multihead.reporting.baselines import reference_metrics

    try:
        result = reference_metrics(runs)
    except Exception as err:
        notes.append(f"no reference rows: {type(err).__name__}: {err}")
        return None
    notes.extend(result.notes)
    return result


def jobs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The per-job table as written to jobs.csv (one row per job, metrics at full precision)."""
    return runs.drop(columns=["override_list"], errors="ignore")


def build_report(
    sweep_dir: str | Path,
    reference: str = DEFAULT_REFERENCE,
    out_dir: str | Path | None = None,
    baselines: bool = True,
    alpha: float = ALPHA,
) -> Report:
    """Read the sweep in `sweep_dir`, write report.md, summary.csv (one row per variant and
    reference model), comparisons.csv, jobs.csv and plots/*.png into `out_dir` (default: the
    sweep folder), and return what was computed."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(sweep_dir)
    notes: list[str] = []
    names = variants(runs)
    if names:
        reference, note = choose_reference(names, reference)
        notes += [note] if note else []
    references = _references(runs, notes) if baselines and names else None
    summary = summarise(runs, references.rows if references is not None else None)
    comparisons = compare(runs, reference, alpha) if names else pd.DataFrame()
    plots = write_plots(runs, summary, out_dir / PLOTS_DIR, notes) if names else {}
    summary.to_csv(out_dir / SUMMARY_FILE, index=False)
    comparisons.to_csv(out_dir / COMPARISONS_FILE, index=False)
    jobs_table(runs).to_csv(out_dir / JOBS_FILE, index=False)
    text = compose(sweep_dir, runs, summary, comparisons, reference, alpha, plots, notes, out_dir)
    (out_dir / REPORT_FILE).write_text(text)
    return Report(
        sweep_dir, out_dir, runs, summary, comparisons, reference, references, plots, notes
    )
