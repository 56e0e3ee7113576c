"""The report of a sweep: build it from the folders (tables, comparisons, plots) and write
report.md, summary.csv, comparisons.csv, jobs.csv and plots/.

Reads only what the jobs wrote (plus the cohort rebuilt from a job's config for the reference
models); nothing is trained and nothing touches the network. A failed or missing job, a plot
that cannot be drawn, or data that cannot be rebuilt becomes a line in the report, never a
crash: a half-finished sweep still deserves a report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from multihead.metrics.names import JOINT, LABELS, higher_is_better, label, metric_of
from multihead.reporting import tables
from multihead.reporting.plots import (
    incoherent_rates,
    plot_confusions,
    plot_incoherent_rate,
    plot_metric_by_variant,
    plot_reliability,
    plot_validation_curves,
    variant_reliability,
)
from multihead.reporting.runs import load_runs, ok_runs, pooled_curves, task_names, variants
from multihead.reporting.statistics import (
    ALPHA,
    DEFAULT_REFERENCE,
    TIE_TOLERANCE,
    choose_reference,
    compare,
    summarise,
    summary_columns,
)
from multihead.run_folder import FAILED, MISSING, OK

if TYPE_CHECKING:
    from multihead.reporting.references import ReferenceResult

log = logging.getLogger(__name__)
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.csv"
COMPARISONS_FILE = "comparisons.csv"
JOBS_FILE = "jobs.csv"
PLOTS_DIR = "plots"


def overview(runs: pd.DataFrame, sweep_dir: Path, reference: str) -> str:
    """Counts of jobs, variants and seeds: the first thing to check before any number."""
    counts = runs["status"].value_counts()
    seeds = sorted(int(s) for s in runs.loc[runs["status"] == OK, "seed"].dropna().unique())
    variants = list(dict.fromkeys(runs.loc[runs["status"] == OK, "variant"]))
    n_test = runs.loc[runs["status"] == OK, "n_test"].dropna()
    lines = [
        f"Sweep folder: `{sweep_dir}`",
        "",
        f"- jobs: {len(runs)} ({counts.get(OK, 0)} finished, {counts.get(FAILED, 0)} failed, "
        f"{counts.get(MISSING, 0)} missing)",
        f"- variants: {', '.join(variants) or 'none'}",
        f"- training seeds: {', '.join(map(str, seeds)) or 'none'}",
        f"- reference variant for the comparisons: **{reference}**",
    ]
    if len(n_test):
        lines.append(
            f"- test samples per job: {int(n_test.iloc[0])}"
            + ("" if n_test.nunique() == 1 else " (varies between jobs)")
        )
    return "\n".join(lines)


def _column_title(column: str) -> str:
    metric = metric_of(column)
    arrow = "↑" if higher_is_better(column) else "↓"
    return f"{LABELS.get(metric, metric)} {arrow}"


def summary_tables(summary: pd.DataFrame) -> str:
    """One Markdown table per task (and one for joint accuracy): rows variants, then the
    reference models in italics; cells mean [95% CI]; the best variant in bold."""
    columns = summary_columns(summary)
    groups: dict[str, list[str]] = {}
    for column in columns:
        task = column.split("/", 1)[0] if "/" in column else "all tasks"
        groups.setdefault(task, []).append(column)
    parts = []
    for task, task_columns in groups.items():
        rows = []
        for _, row in summary.iterrows():
            name = row["variant"] if row["kind"] == "variant" else f"*{row['variant']}*"
            seeds = "" if row["kind"] != "variant" else str(int(row["n_seeds"]))
            cells = [
                tables.with_interval(
                    row[f"{c}.mean"],
                    row[f"{c}.ci_low"],
                    row[f"{c}.ci_high"],
                    bool(row.get(f"{c}.best", False)),
                )
                for c in task_columns
            ]
            rows.append([name, seeds, *cells])
        frame = pd.DataFrame(
            rows, columns=["variant", "seeds", *[_column_title(c) for c in task_columns]]
        )
        parts.append(f"#### {task}\n\n{tables.table(frame)}")
    return "\n\n".join(parts)


def comparison_table(comparisons: pd.DataFrame) -> str:
    """Rows variant x metric: difference [95% CI], raw and Holm p, effect size, verdict."""
    rows = []
    for _, c in comparisons.iterrows():
        diff = (
            "0 (identical)"
            if c["identical"]
            else (f"{c['diff']:+.3f} [{tables.number(c['ci_low'])}, {tables.number(c['ci_high'])}]")
        )
        rows.append(
            [
                c["variant"],
                label(c["metric"]),
                int(c["n"]),
                diff,
                tables.p_value(c["p"]),
                tables.p_value(c["p_holm"]),
                tables.number(c["effect_size"], 2),
                c["verdict"],
            ]
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "variant",
            "metric",
            "seeds",
            "variant − reference",
            "p",
            "p (Holm)",
            "d",
            "verdict",
        ],
    )
    return tables.table(frame)


def comparisons_section(comparisons: pd.DataFrame, reference: str, alpha: float) -> str:
    if comparisons.empty:
        return (
            "No comparison: the sweep has a single variant, or the reference has no finished job."
        )
    tested = int((~comparisons["identical"] & comparisons["p"].notna()).sum())
    clear = comparisons[comparisons["verdict"].isin(["better", "worse"])]
    intro = (
        f"Each variant against **{reference}**, paired over the training seeds both have "
        f"(same initial weights and batch order per seed). Two-sided paired t-test; the "
        f"{tested} tests of this report are one family for Holm's correction; a difference "
        f"is called clear when the Holm p-value is below {alpha}. d is the mean difference "
        "over the standard deviation of the per-seed differences (Cohen's d for paired "
        f"samples). Differences within float32 rounding ({TIE_TOLERANCE:g} relative) on "
        "every seed are ties and are not tested (fused and split heads are the same "
        "network: with the same seed they give the same results). For ECE and MAE lower is "
        "better."
    )
    headline = (
        "\n".join(f"- {s}" for s in clear["sentence"])
        if len(clear)
        else (
            f"- No variant differs clearly from {reference} on any key metric after Holm's "
            "correction. More seeds narrow the intervals."
        )
    )
    every = "\n".join(f"- {s}" for s in comparisons["sentence"])
    return (
        f"{intro}\n\n**Clear differences:**\n\n{headline}\n\n{comparison_table(comparisons)}"
        f"\n\n<details><summary>Every comparison in words</summary>\n\n{every}\n\n"
        "</details>"
    )


def problems_section(runs: pd.DataFrame) -> str:
    """Failed and missing jobs with the first line of their error."""
    bad = runs[runs["status"] != OK]
    if bad.empty:
        return "None: every planned job finished."
    frame = bad[["job", "status", "variant", "seed", "error"]].copy()
    frame["seed"] = frame["seed"].map(lambda s: "–" if pd.isna(s) else str(int(s)))
    return (
        f"{len(bad)} of {len(runs)} jobs did not finish; the numbers above use the others "
        f"(each comparison pairs only seeds that both variants have).\n\n{tables.table(frame)}"
    )


def plots_section(plots: dict[str, Path], base: Path) -> str:
    lines = []
    for title, path in plots.items():
        rel = Path(path).relative_to(base) if Path(path).is_relative_to(base) else Path(path)
        lines.append(f"**{title}**\n\n![{title}]({rel.as_posix()})")
    return "\n\n".join(lines) if lines else "No plots."


def compose(
    sweep_dir: Path,
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    reference: str,
    alpha: float,
    plots: dict[str, Path],
    notes: list[str],
    out_dir: Path,
) -> str:
    """The whole report.tables."""
    joint = f" `{JOINT}` is the share of test samples with every task right."
    sections = [
        "# Comparison report",
        overview(runs, sweep_dir, reference),
        "## Summary",
        "Test metrics, mean and 95% t interval over training seeds; **bold** is the best "
        "variant in each column (↑ higher is better, ↓ lower is better). Reference models "
        "(*italics*) are fitted once on the same training split and scored on the same test "
        "split." + joint + " Full precision: `summary.csv`.",
        summary_tables(summary) if len(summary) else "No finished job.",
        "## Paired comparisons",
        comparisons_section(comparisons, reference, alpha),
        "Full precision: `comparisons.csv`.",
        "## Plots",
        plots_section(plots, out_dir),
        "## Failed or missing jobs",
        problems_section(runs),
    ]
    if notes:
        sections += ["## Notes", "\n".join(f"- {n}" for n in notes)]
    return "\n\n".join(sections) + "\n"


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
    from multihead.reporting.references import reference_metrics

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
