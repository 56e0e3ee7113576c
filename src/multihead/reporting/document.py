"""The report of a sweep: build it from the folders (tables, comparisons, plots) and write
report.md, summary.csv, comparisons.csv, jobs.csv and plots/.

Reads only what the jobs wrote (plus the cohort rebuilt from a job's config for the reference
models); nothing is trained and nothing touches the network. A failed or missing job, a plot
that cannot be drawn, or data that cannot be rebuilt becomes a line in the report, never a
crash: a half-finished sweep still deserves a report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from multihead.metrics.names import (
    JOINT,
    LABELS,
    ROPE,
    higher_is_better,
    label,
    metric_of,
    primary_columns,
)
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
    BOOTSTRAP_RESAMPLES,
    DEFAULT_REFERENCE,
    NETWORK,
    TIE_TOLERANCE,
    Predictions,
    best_of,
    choose_reference,
    compare,
    evaluations,
    fmt,
    summarise,
    summary_columns,
)
from multihead.run_folder import FAILED, MISSING, OK, PREDICTIONS_FILE, read_predictions

if TYPE_CHECKING:
    from multihead.reporting.references import ReferenceResult

log = logging.getLogger(__name__)
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.csv"
COMPARISONS_FILE = "comparisons.csv"
JOBS_FILE = "jobs.csv"
EVALUATIONS_FILE = "evaluations.csv"
OOF_FILE = "oof_predictions.csv"
POOLED_PER_CLASS_FILE = "pooled_per_class.csv"
PLOTS_DIR = "plots"
LEANING = 0.9  # a posterior share from which the verdict says which side is ahead


def design(evals: pd.DataFrame) -> dict:
    """What replicates the networks have: splits, partitions, folds, seeds per split."""
    nets = evals[evals["kind"] == NETWORK]
    splits = list(dict.fromkeys(nets["split"]))
    folds = {s.split("fold=")[1] for s in splits if "fold=" in s}
    repeats = {s.split("repeat=")[1].split()[0] for s in splits if "repeat=" in s}
    seeds = sorted({int(n) for n in nets["n_seeds"].dropna()}) if len(nets) else []
    n_test = pd.to_numeric(nets.get("n_test"), errors="coerce").dropna()
    if folds:
        k = next(iter(folds)).split("/")[1]
        words = f"{k}-fold CV x {len(repeats)} partition" + ("s" if len(repeats) != 1 else "")
    else:
        words = f"{len(splits)} train/test split" + ("s" if len(splits) != 1 else "")
    return {
        "splits": len(splits),
        "words": words,
        "seeds": seeds,
        "n_test": int(n_test.iloc[0]) if len(n_test) else 0,
    }


def overview(runs: pd.DataFrame, evals: pd.DataFrame, sweep_dir: Path, reference: str) -> str:
    """Counts of jobs, variants, splits and seeds: the first thing to check before a number."""
    counts = runs["status"].value_counts()
    seeds = sorted(int(s) for s in runs.loc[runs["status"] == OK, "seed"].dropna().unique())
    variants = list(dict.fromkeys(runs.loc[runs["status"] == OK, "variant"]))
    d = design(evals)
    return "\n".join(
        [
            f"Sweep folder: `{sweep_dir}`",
            "",
            f"- jobs: {len(runs)} ({counts.get(OK, 0)} finished, {counts.get(FAILED, 0)} failed,"
            f" {counts.get(MISSING, 0)} missing)",
            f"- variants: {', '.join(variants) or 'none'}",
            f"- replicates: {d['words']} = {d['splits']} data split(s), the unit of the statistics;"
            f" training seeds {', '.join(map(str, seeds)) or 'none'} within each split are"
            " averaged (their spread is initialisation noise)",
            f"- test samples per split: {d['n_test']}",
            f"- reference variant for the comparisons: **{reference}**",
        ]
    )


def rerun_command(runs: pd.DataFrame) -> str:
    """The sweep's own overrides plus 5-fold cross-validation: the command that would give
    replicated evidence."""
    values: dict[str, list[str]] = {}
    for overrides in runs["override_list"]:
        for item in overrides:
            key, _, value = str(item).partition("=")
            if key.startswith(("data.cv.", "hydra.")) or not value:
                continue
            values.setdefault(key, [])
            if value not in values[key]:
                values[key].append(value)
    parts = [f"{k}={','.join(v)}" for k, v in values.items()]
    return " ".join(["python train.py -m", *parts, "data.cv.folds=5", "data.cv.fold=0,1,2,3,4"])


def _cell(row: pd.Series, column: str) -> str:
    return tables.with_interval(
        row[f"{column}.mean"], row[f"{column}.ci_low"], row[f"{column}.ci_high"]
    )


def _reference_words(reference: str) -> str:
    """`fused+bce` is the one sigmoid layer the question starts from; any other reference is
    named as what it is."""
    if reference.split(" [", 1)[0] == DEFAULT_REFERENCE:
        return f"one sigmoid layer ({reference})"
    return f"the reference variant {reference}"


def verdict_sentences(
    runs: pd.DataFrame,
    evals: pd.DataFrame,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    reference: str,
    linear: list[str],
    alpha: float,
) -> list[str]:
    """At most six plain sentences that answer the question with numbers."""
    d = design(evals)
    level = round(100 * (1 - alpha))
    out = []
    if d["splits"] < 2:
        out.append(
            f"Too few replicates to generalise: every job was tested on one split of {d['n_test']}"
            " samples, so the intervals below only resample that test set; for evidence over"
            f" data splits run `{rerun_command(runs)}`."
        )
    else:
        out.append(
            f"On {d['words']} ({d['splits']} splits, training seeds averaged within each), with"
            f" {level}% intervals from the corrected resampled t-test:"
        )
    columns = primary_columns(summary_columns(summary))
    networks = list(summary.loc[summary["kind"] == NETWORK, "variant"])
    best_lines = []
    for column in columns:
        net = best_of(summary, column, networks)
        if net is None:
            continue
        row = summary.set_index("variant").loc[net]
        text = f"{label(column)}: best network {net} {_cell(row, column)}"
        ref = best_of(summary, column, linear) if linear else None
        if ref is not None:
            text += (
                f", best linear model {ref} {_cell(summary.set_index('variant').loc[ref], column)}"
            )
        best_lines.append(text)
    if best_lines:
        out.append("; ".join(best_lines) + ".")
    if len(comparisons):
        primary = comparisons[comparisons["family"] == "primary"]
        vs_ref = primary[primary["reference"] == reference]
        clear = vs_ref[vs_ref["verdict"].isin(["better", "worse", "practically equal"])]
        if len(clear):
            words = {
                "better": "beats",
                "worse": "loses to",
                "practically equal": "is practically equal to",
            }
            parts = [
                f"{r.variant} {words[r.verdict]} it on {label(r.metric)}"
                f" ({fmt(r.diff)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}])"
                for r in clear.itertuples()
            ]
            out.append(f"Against {_reference_words(reference)}: " + "; ".join(parts[:4]) + ".")
        elif len(vs_ref):
            out.append(
                f"No variant differs clearly from {_reference_words(reference)} on the primary"
                " metrics (Holm-adjusted)."
            )
        vs_linear = primary[primary["reference"].isin(linear)]
        linear_parts = []
        for r in vs_linear.itertuples():
            if r.verdict == "better":
                words = f"{r.variant} beats {r.reference}"
            elif r.verdict == "worse":
                words = f"{r.reference} beats every network (best: {r.variant})"
            elif r.verdict == "practically equal":
                words = f"{r.variant} and {r.reference} are practically equal"
            elif np.isfinite(r.p_worse) and r.p_worse >= LEANING:
                words = f"{r.reference} is ahead of every network (best: {r.variant}), not clear"
                words += " after Holm's correction,"
            elif np.isfinite(r.p_better) and r.p_better >= LEANING:
                words = f"{r.variant} is ahead of {r.reference}, not clear after Holm's correction,"
            else:
                words = f"no clear difference between {r.variant} and {r.reference}"
            probs = f"; P(network worse)={r.p_worse:.2f}" if np.isfinite(r.p_worse) else ""
            linear_parts.append(
                f"{words} on {label(r.metric)} ({r.variant} - {r.reference} = {fmt(r.diff)}"
                f" [{fmt(r.ci_low)}, {fmt(r.ci_high)}]{probs})"
            )
        if linear_parts:
            out.append("Against the linear models: " + "; ".join(linear_parts[:3]) + ".")
    out.append(
        "P(...) are the probabilities that a difference is better than, within or worse than the"
        " region of practical equivalence (ROPE: ±0.01 for rates, ±0.25 years for MAE)."
    )
    return out[:6]


def _column_title(column: str) -> str:
    metric = metric_of(column)
    arrow = "↑" if higher_is_better(column) else "↓"
    return f"{LABELS.get(metric, metric)} {arrow}"


def summary_tables(summary: pd.DataFrame) -> str:
    """One Markdown table per task (and one for joint accuracy): networks, then reference
    models in italics; cells mean [interval]; the best network or linear model in bold."""
    columns = summary_columns(summary)
    groups: dict[str, list[str]] = {}
    for column in columns:
        task = column.split("/", 1)[0] if "/" in column else "all tasks"
        groups.setdefault(task, []).append(column)
    parts = []
    for task, task_columns in groups.items():
        rows = []
        for _, row in summary.iterrows():
            network = row["kind"] == NETWORK
            name = row["variant"] if network else f"*{row['variant']}*"
            cells = [
                tables.with_interval(
                    row[f"{c}.mean"],
                    row[f"{c}.ci_low"],
                    row[f"{c}.ci_high"],
                    bool(row.get(f"{c}.best", False)),
                )
                for c in task_columns
            ]
            noise = [tables.number(row.get(f"{c}.seed_sd", np.nan)) for c in task_columns[:1]]
            rows.append([name, int(row["n_splits"]), *noise, *cells])
        frame = pd.DataFrame(
            rows,
            columns=[
                "variant",
                "splits",
                f"seed SD ({label(task_columns[0]).removeprefix(task + ' ')})",
                *[_column_title(c) for c in task_columns],
            ],
        )
        parts.append(f"#### {task}\n\n{tables.table(frame)}")
    return "\n\n".join(parts)


def comparison_table(comparisons: pd.DataFrame) -> str:
    """Rows: variant vs reference x metric: difference [interval], p, Holm p, P(·), verdict."""
    rows = []
    for _, c in comparisons.iterrows():
        diff = (
            "0 (identical)"
            if c["status"] == "identical"
            else f"{fmt(c['diff'])} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
        )
        shares = (
            f"{c['p_better']:.2f} / {c['p_equal']:.2f} / {c['p_worse']:.2f}"
            if np.isfinite(c["p_better"])
            else "–"
        )
        rows.append(
            [
                f"{c['variant']} vs {c['reference']}",
                label(c["metric"]),
                int(c["n_splits"]),
                diff,
                tables.p_value(c["p"]),
                tables.p_value(c["p_holm"]),
                shares,
                c["verdict"],
            ]
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "comparison",
            "metric",
            "splits",
            "difference",
            "p",
            "p (Holm)",
            "P better / equal / worse",
            "verdict",
        ],
    )
    return tables.table(frame)


def comparisons_section(comparisons: pd.DataFrame, reference: str, alpha: float) -> str:
    if comparisons.empty:
        return (
            "No comparison: the sweep has a single variant, or the reference has no finished job."
        )
    level = round(100 * (1 - alpha))
    intro = (
        f"Paired over the data splits both sides have. With two or more splits: the corrected "
        f"resampled t-test (Nadeau & Bengio; variance x (1/J + n_test/n_train)) for p and the "
        f"{level}% interval, and the Bayesian correlated t-test for P(better / practically equal / "
        "worse) with a region of practical equivalence. With one split: a paired bootstrap over "
        f"the test samples ({BOOTSTRAP_RESAMPLES} resamples). A difference is *clear* when its "
        f"Holm-adjusted p is below {alpha}; Holm runs over the primary family and the secondary "
        f"family separately. Differences within float rounding ({TIE_TOLERANCE:g} relative) on "
        "every split are ties (the same predictions). For ECE and MAE lower is better; every "
        "interval is signed as `variant - reference`."
    )
    parts = [intro]
    for family in ("primary", "secondary"):
        part = comparisons[comparisons["family"] == family]
        if part.empty:
            continue
        title = (
            f"**Primary** (every variant vs {reference}, and the best network vs the best linear "
            "model, on one key metric per task and joint accuracy):"
            if family == "primary"
            else "**Secondary** (the other key metrics; exploratory):"
        )
        parts += [title, comparison_table(part)]
    every = "\n".join(f"- {s}" for s in comparisons["sentence"])
    parts.append(f"<details><summary>Every comparison in words</summary>\n\n{every}\n\n</details>")
    return "\n\n".join(parts)


def problems_section(runs: pd.DataFrame) -> str:
    """Failed and missing jobs with the first line of their error."""
    bad = runs[runs["status"] != OK]
    if bad.empty:
        return "None: every planned job finished."
    frame = bad[["job", "status", "variant", "seed", "error"]].copy()
    frame["seed"] = frame["seed"].map(lambda s: "–" if pd.isna(s) else str(int(s)))
    return (
        f"{len(bad)} of {len(runs)} jobs did not finish; the numbers above use the others "
        f"(each comparison pairs only the splits that both sides have).\n\n{tables.table(frame)}"
    )


def run_notes_section(runs: pd.DataFrame) -> str:
    """What the jobs themselves reported: collapsed heads (a head that predicts one class, or
    is within noise of chance), tuned values (`tune=optuna`), and why training stopped."""
    done = ok_runs(runs)
    parts = []
    warned = done[done.get("warnings", pd.Series("", index=done.index)).fillna("") != ""]
    if len(warned):
        rows = []
        for variant, jobs in warned.groupby("variant", sort=False):
            per_task: dict[str, list[str]] = {}
            for text in jobs["warnings"]:
                for item in str(text).split("; "):
                    task, _, warning = item.partition(": ")
                    per_task.setdefault(task, []).append(warning)
            total = int((done["variant"] == variant).sum())
            for task, warnings in per_task.items():
                rows.append([variant, task, f"{len(warnings)} of {total}", warnings[0]])
        frame = pd.DataFrame(rows, columns=["variant", "task", "jobs", "for example"])
        parts.append(
            f"**Collapsed or chance-level heads** ({len(warned)} of {len(done)} jobs): a network"
            " row whose head says nothing is no answer, whatever its mean; per job in"
            " `jobs.csv` (`warnings`).\n\n" + tables.table(frame)
        )
    tuned = done[done.get("tuned", pd.Series("", index=done.index)).fillna("") != ""]
    if len(tuned):
        frame = tuned[["variant", "split", "seed", "tuned"]]
        parts.append(
            "**Tuned values** (`tune=optuna`, chosen on each job's validation split):\n\n"
            + tables.table(frame)
        )
        edges = tuned.get("tuned_at_edge", pd.Series("", index=tuned.index)).fillna("")
        counts = pd.Series([i for text in edges if text for i in text.split(", ")]).value_counts()
        if len(counts):
            parts.append(
                "**Chosen at the edge of the search space** (jobs): "
                + ", ".join(f"{item}: {n} of {len(tuned)}" for item, n in counts.items())
                + ". The best value may lie beyond that end: widen `tune.space` there where"
                " the model allows, and tune again."
            )
    if "stop_reason" in done and done["stop_reason"].notna().any():
        counts = done.groupby("variant", sort=False)["stop_reason"].agg(
            lambda s: "; ".join(f"{v} ({n})" for v, n in s.value_counts().items())
        )
        frame = pd.DataFrame(
            {"variant": counts.index, "why training stopped (jobs)": counts.values}
        )
        parts.append(tables.table(frame))
    return "\n\n".join(parts) if parts else "Nothing to note: no head collapsed."


def plots_section(plots: dict[str, Path], base: Path) -> str:
    lines = []
    for title, path in plots.items():
        rel = Path(path).relative_to(base) if Path(path).is_relative_to(base) else Path(path)
        lines.append(f"**{title}**\n\n![{title}]({rel.as_posix()})")
    return "\n\n".join(lines) if lines else "No plots."


def compose(
    sweep_dir: Path,
    runs: pd.DataFrame,
    evals: pd.DataFrame,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    verdict: list[str],
    reference: str,
    alpha: float,
    plots: dict[str, Path],
    notes: list[str],
    out_dir: Path,
    explanations: str = "",
) -> str:
    """The whole report.md (`explanations`: a section from `multihead.explain`, if given)."""
    level = round(100 * (1 - alpha))
    joint = f" `{JOINT}` is the share of test samples with every task right."
    sections = [
        "# Comparison report",
        "## Verdict",
        " ".join(verdict) if verdict else "No finished job.",
        overview(runs, evals, sweep_dir, reference),
        "## Summary",
        f"Test metrics, mean over data splits with a {level}% interval (corrected t over splits;"
        " with one split, a bootstrap over its test samples); **bold** is the best network or"
        " linear model in each column (↑ higher is better, ↓ lower is better); `seed SD` is the"
        " mean spread between training seeds within a split. Reference models (*italics*) are"
        " fitted on each split's training part with the networks' preprocessing. MAE uses the"
        " expected years under a class distribution (regression: its predicted years);"
        " `mae_years_argmax` in `summary.csv` uses the argmax bin's midpoint."
        + joint
        + " Full precision: `summary.csv`; pooled out-of-fold results: `oof_predictions.csv`,"
        " `pooled_per_class.csv`.",
        summary_tables(summary) if len(summary) else "No finished job.",
        "## Comparisons",
        comparisons_section(comparisons, reference, alpha),
        "Full precision: `comparisons.csv`.",
        "## What the jobs reported",
        run_notes_section(runs),
        *([explanations.strip()] if explanations else []),
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
    evaluations: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    verdict: list[str]
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
    """Reference rows per split, with Rich progress; imported here: they need torch and the
    data code, the rest of the report does not."""
    from rich.progress import Progress

    from multihead.reporting.references import reference_metrics

    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("linear references, per data split", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = reference_metrics(runs, progress=advance)
    except Exception as err:
        notes.append(f"no reference rows: {type(err).__name__}: {err}")
        return None
    notes.extend(result.notes)
    return result


def prediction_lookup(runs: pd.DataFrame, references: ReferenceResult | None) -> Predictions:
    """(variant, split) -> the test predictions of each of its seeds (a reference: one)."""
    done = ok_runs(runs)
    cache: dict[tuple[str, str], list[pd.DataFrame]] = {}

    def lookup(variant: str, split: str) -> list[pd.DataFrame]:
        key = (variant, split)
        if key not in cache:
            if references is not None and key in references.predictions:
                cache[key] = [references.predictions[key]]
            else:
                jobs = done[(done["variant"] == variant) & (done["split"] == split)]
                cache[key] = [
                    read_predictions(path)
                    for path in jobs["path"]
                    if (Path(path) / PREDICTIONS_FILE).exists()
                ]
        return cache[key]

    return lookup


OOF_KEYS = ("variant", "kind", "seed", "data_seed", "partition", "fold", "split")


def out_of_fold(runs: pd.DataFrame, references: ReferenceResult | None) -> pd.DataFrame:
    """Every test prediction of every job and reference: with cross-validation each sample
    appears once per partition (and training seed) for each variant."""
    frames = []
    for job in ok_runs(runs).itertuples():
        if (Path(job.path) / PREDICTIONS_FILE).exists():
            frames.append(
                read_predictions(job.path).assign(
                    variant=job.variant,
                    kind=NETWORK,
                    seed=job.seed,
                    data_seed=job.data_seed,
                    partition=job.cv_repeat,
                    fold=job.cv_fold,
                    split=job.split,
                )
            )
    if references is not None:
        facts = ok_runs(runs).drop_duplicates("split").set_index("split")
        for (name, split), frame in references.predictions.items():
            fact = facts.loc[split] if split in facts.index else None
            frames.append(
                frame.assign(
                    variant=name,
                    kind="reference",
                    seed=np.nan,
                    data_seed=None if fact is None else fact["data_seed"],
                    partition=None if fact is None else fact["cv_repeat"],
                    fold=None if fact is None else fact["cv_fold"],
                    split=split,
                )
            )
    if not frames:
        return pd.DataFrame(columns=["sample_id", *OOF_KEYS])
    frame = pd.concat(frames, ignore_index=True)
    return frame[
        ["sample_id", *OOF_KEYS, *[c for c in frame.columns if c not in ("sample_id", *OOF_KEYS)]]
    ]


def pooled_per_class(oof: pd.DataFrame) -> pd.DataFrame:
    """Per variant, task and class: TP, FP, TN, FN and support over every out-of-fold
    prediction (each sample once per partition and seed), with precision, recall and F1."""
    rows = []
    tasks = [
        c[: -len("_true")] for c in oof.columns if c.endswith("_true") and not c.endswith("_value")
    ]
    for variant, part in oof.groupby("variant", sort=False):
        for task in tasks:
            labelled = part[part[f"{task}_true"].notna() & part[f"{task}_pred"].notna()]
            if labelled.empty:
                continue
            true, pred = labelled[f"{task}_true"].astype(str), labelled[f"{task}_pred"].astype(str)
            for cls in dict.fromkeys([*sorted(set(true)), *sorted(set(pred))]):
                tp = int(((true == cls) & (pred == cls)).sum())
                fp = int(((true != cls) & (pred == cls)).sum())
                fn = int(((true == cls) & (pred != cls)).sum())
                tn = int(len(true) - tp - fp - fn)
                precision = tp / (tp + fp) if tp + fp else 0.0
                recall = tp / (tp + fn) if tp + fn else 0.0
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                rows.append(
                    {
                        "variant": variant,
                        "task": task,
                        "class": cls,
                        "tp": tp,
                        "fp": fp,
                        "tn": tn,
                        "fn": fn,
                        "support": tp + fn,
                        "precision": precision,
                        "recall": recall,
                        "f1": f1,
                    }
                )
    return pd.DataFrame(rows)


def jobs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The per-job table as written to jobs.csv (one row per job, metrics at full precision)."""
    return runs.drop(columns=["override_list"], errors="ignore")


def build_report(
    sweep_dir: str | Path,
    reference: str = DEFAULT_REFERENCE,
    out_dir: str | Path | None = None,
    baselines: bool = True,
    alpha: float = ALPHA,
    rope: Mapping[str, float] | None = None,
    explanations: Callable[[Path], str] | None = None,
) -> Report:
    """Read the sweep in `sweep_dir`; write report.md (verdict first), summary.csv (one row
    per variant and reference model), comparisons.csv, evaluations.csv (one row per variant
    and split), oof_predictions.csv, pooled_per_class.csv, jobs.csv and plots/*.png into
    `out_dir` (default: the sweep folder); return what was computed. `explanations(sweep_dir)`
    returns the feature-attribution section (the entry point passes `multihead.explain`'s)."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rope = {**ROPE, **(rope or {})}
    runs = load_runs(sweep_dir)
    notes: list[str] = []
    names = variants(runs)
    if names:
        reference, note = choose_reference(names, reference)
        notes += [note] if note else []
    references = _references(runs, notes) if baselines and names else None
    linear = references.linear if references is not None else []
    evals = evaluations(runs, references.rows if references is not None else None)
    lookup = prediction_lookup(runs, references)
    summary = summarise(evals, lookup, alpha, linear) if names else pd.DataFrame()
    comparisons = (
        compare(evals, reference, alpha, rope, lookup, linear, summary) if names else pd.DataFrame()
    )
    verdict = (
        verdict_sentences(runs, evals, summary, comparisons, reference, linear, alpha)
        if names
        else []
    )
    oof = out_of_fold(runs, references)
    plots = write_plots(runs, summary, out_dir / PLOTS_DIR, notes) if names else {}
    summary.to_csv(out_dir / SUMMARY_FILE, index=False)
    comparisons.to_csv(out_dir / COMPARISONS_FILE, index=False)
    evals.to_csv(out_dir / EVALUATIONS_FILE, index=False)
    oof.to_csv(out_dir / OOF_FILE, index=False)
    pooled_per_class(oof).to_csv(out_dir / POOLED_PER_CLASS_FILE, index=False)
    jobs_table(runs).to_csv(out_dir / JOBS_FILE, index=False)
    text = compose(
        sweep_dir,
        runs,
        evals,
        summary,
        comparisons,
        verdict,
        reference,
        alpha,
        plots,
        notes,
        out_dir,
        explanations(sweep_dir) if explanations is not None and names else "",
    )
    (out_dir / REPORT_FILE).write_text(text)
    return Report(
        sweep_dir,
        out_dir,
        runs,
        evals,
        summary,
        comparisons,
        verdict,
        reference,
        references,
        plots,
        notes,
    )
