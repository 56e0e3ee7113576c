"""The text of report.md: what was run, the summary, the comparisons, plots and problems."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from multihead.reporting import markdown as md
from multihead.reporting.key_metrics import JOINT, LABELS, higher_is_better, label, metric_of
from multihead.reporting.runs import FAILED, MISSING, OK
from multihead.reporting.stats import TIE_TOLERANCE
from multihead.reporting.summary import summary_columns


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
                md.with_interval(
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
        parts.append(f"#### {task}\n\n{md.table(frame)}")
    return "\n\n".join(parts)


def comparison_table(comparisons: pd.DataFrame) -> str:
    """Rows variant x metric: difference [95% CI], raw and Holm p, effect size, verdict."""
    rows = []
    for _, c in comparisons.iterrows():
        diff = (
            "0 (identical)"
            if c["identical"]
            else (f"{c['diff']:+.3f} [{md.number(c['ci_low'])}, {md.number(c['ci_high'])}]")
        )
        rows.append(
            [
                c["variant"],
                label(c["metric"]),
                int(c["n"]),
                diff,
                md.p_value(c["p"]),
                md.p_value(c["p_holm"]),
                md.number(c["effect_size"], 2),
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
    return md.table(frame)


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
        f"(each comparison pairs only seeds that both variants have).\n\n{md.table(frame)}"
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
    """The whole report.md."""
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
