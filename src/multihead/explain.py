"""Why did each head decide that? Feature attributions per head, on a run's test samples.

    python -m multihead.explain RUN_DIR|SWEEP_DIR [--steps 50] [--top-k 20] [--method ig|gxi]

For every task, each test sample's input features get a share of the head's output: the
probability of the sample's true class (a regression head: the predicted years). `ig` is
Integrated Gradients (captum) from the all-zero baseline, which after standardisation is the
training mean; its convergence delta (how far the attributions' sum is from f(x) - f(baseline))
is reported. `gxi` is gradient x input, one backward pass: fast, but without that guarantee.
The network is rebuilt from the checkpoint, and the test samples go through the preprocessing
saved with it, exactly as `multihead.predict` does; with cross-validation each fold's job
explains its own test fold, so a sweep over the folds covers every sample once.

A run gets `attributions_<task>.csv` (mean |attribution| overall and per true class, signed
mean, rank), `attributions_<task>.png` (the top features, bars split by class) and
`explanation.json` (method, convergence, and precision@k against the planted genes when the
cohort is the built-in one). A sweep folder explains every finished job, then compares them:
`attributions_summary.csv` holds the stability across seeds/folds (Spearman correlation of the
importance vectors, top-k overlap) and the agreement between variants; `explanation_section`
turns it into a report section.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from omegaconf import DictConfig
from scipy.stats import spearmanr

from multihead.data.labels import LabelPolicy, encode_task
from multihead.data.matrix import as_matrix
from multihead.data.sources import load_raw_cohort
from multihead.errors import DataError, MultiheadError, exit_with_message, print_error
from multihead.predict import TrainedRun, build_trained_module, load_run
from multihead.reporting.runs import load_runs, ok_runs
from multihead.run_folder import (
    ATTRIBUTIONS_SUMMARY_FILE,
    BEST_CHECKPOINT,
    CONFIG_FILE,
    EXPLANATION_FILE,
    OK,
    SPLITS_FILE,
    attributions_file,
    attributions_plot_file,
    coefficients_file,
    is_job_dir,
    read_attributions,
    read_explanation,
    read_informative,
    read_splits,
    write_json,
)
from multihead.tasks import Task

METHODS = {"ig": "Integrated Gradients", "gxi": "gradient x input"}
DEFAULT_METHOD = "ig"
DEFAULT_STEPS = 50
DEFAULT_TOP_K = 20
#: precision@k against the planted genes is reported at these k
PRECISION_KS = (10, 50)
#: interpolated inputs held at once (float32): samples per batch x steps x features <= this
MAX_FLOATS = 1 << 25
COEFFICIENT_BLOCK = 1024  # unit vectors per forward pass when reading a linear model's weights
#: AnnData `.var` column whose value is shown next to a feature id
ANNOTATION_COLUMN = "gene_symbol"
#: columns of a `data.feature_annotation` (or `--annotation`) CSV
ANNOTATION_COLUMNS = ("feature", "symbol")
SYMBOL = "symbol"
IMPORTANCE = "mean_abs"
SECTION_TITLE = "## Feature attributions"
SECTION_ROWS = 10  # top features listed per task in the report section


# ------------------------------------------------------------------------------ the samples


@dataclass
class HeldOutSamples:
    ids: list[str]
    x: np.ndarray  # (n, features) model inputs, after the saved preprocessing
    labels: np.ndarray  # (n, tasks) true class index, -1 where the label is missing


def held_out_samples(run_dir: Path, run: TrainedRun) -> HeldOutSamples:
    """The run's test samples, reloaded from its data and transformed by its checkpoint's
    preprocessing; labels coded with the checkpoint's tasks (fitted bins included)."""
    if not (run_dir / SPLITS_FILE).is_file():
        raise DataError(f"{run_dir / SPLITS_FILE} not found: the run did not record its split")
    splits = read_splits(run_dir)
    ids = splits.loc[splits["split"] == "test", "sample_id"].astype(str).tolist()
    if not ids:
        raise DataError(f"{run_dir / SPLITS_FILE} has no test samples to explain")
    raw = load_raw_cohort(run.cfg.data)
    if list(raw.feature_names) != run.preprocessor.feature_names_in:
        raise DataError(
            f"{run_dir}: the data its config names no longer has the features the model "
            "was trained on"
        )
    position = pd.Index(raw.samples.index.astype(str)).get_indexer(ids)
    if (position < 0).any():
        lost = [i for i, p in zip(ids, position, strict=True) if p < 0][:5]
        raise DataError(f"{run_dir}: test samples no longer in the data, e.g. {lost}")
    block = as_matrix(raw.features).take(raw.matrix_rows()[position])
    x = run.preprocessor.transform(np.asarray(block))
    sheet = raw.samples.iloc[position]
    policy = LabelPolicy.from_config(run.cfg.data.get("labels"))
    labels = np.stack(
        [encode_task(sheet, t, raw.source, policy.out_of_range).codes for t in run.tasks], axis=1
    )
    return HeldOutSamples(ids, x, labels)


def feature_symbols(cfg: DictConfig, annotation: str | Path | None = None) -> dict[str, str]:
    """Feature id -> symbol from an annotation CSV (`--annotation`, else
    `data.feature_annotation`), else from an AnnData file's `var["gene_symbol"]`; {} if none."""
    data = cfg.get("data", {})
    path = annotation or data.get("feature_annotation")
    if path:
        if not Path(path).is_file():
            raise DataError(f"{path} (feature annotation) not found")
        table = pd.read_csv(path, dtype=str)
        if not set(ANNOTATION_COLUMNS) <= set(table.columns):
            raise DataError(
                f"{path} (feature annotation) needs the columns {list(ANNOTATION_COLUMNS)}, "
                f"found {list(table.columns)}"
            )
        ids, symbols = ANNOTATION_COLUMNS
        return dict(zip(table[ids], table[symbols].fillna(""), strict=True))
    if data.get("source") == "anndata" and data.get("path"):
        import anndata

        adata = anndata.read_h5ad(data.path, backed="r")
        try:
            var = adata.var
            if ANNOTATION_COLUMN not in var:
                return {}
            column = data.get("feature_column")
            ids = var[column] if column else var.index
            return dict(zip(ids.astype(str), var[ANNOTATION_COLUMN].astype(str), strict=True))
        finally:
            adata.file.close()
    return {}


# --------------------------------------------------------------------------- attributions


def task_output(module: torch.nn.Module, j: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Inputs -> task j's class probabilities (batch, classes), or its predicted years
    (batch,) for a loss without probabilities (regression)."""
    loss = list(module.loss_fn.losses.values())[j]
    columns = module.loss_fn.layout.slices[j]

    def forward(x: torch.Tensor) -> torch.Tensor:
        z = module(x)[:, columns]
        p = loss.probabilities(z)
        return p if p is not None else loss.years(z)

    return forward


def is_linear(module: torch.nn.Module) -> bool:
    """`model=linear`: the heads read the features directly (an identity trunk)."""
    return isinstance(getattr(module.net, "trunk", None), torch.nn.Identity)


def linear_coefficients(module: torch.nn.Module, j: int, n_features: int) -> np.ndarray:
    """Task j's coefficients (features x outputs) of a linear model, read off the map itself:
    outputs(e_i) - outputs(0) for every unit vector e_i, in blocks. For a classifier these are
    the weights of its logits (CE: per class; CORN/CORAL: per threshold); for a regression
    head, of the predicted years. IG attributions of a linear output are exactly
    coefficient x (x - baseline)."""
    loss = list(module.loss_fn.losses.values())[j]
    columns = module.loss_fn.layout.slices[j]
    device = next(module.parameters()).device

    def outputs(x: torch.Tensor) -> torch.Tensor:
        z = module(x)[:, columns]
        return loss.years(z)[:, None] if predicts_years(module, j) else z

    with torch.no_grad():
        zero = outputs(torch.zeros(1, n_features, device=device))
        blocks = []
        for start in range(0, n_features, COEFFICIENT_BLOCK):
            eye = torch.eye(n_features, device=device)[start : start + COEFFICIENT_BLOCK]
            blocks.append((outputs(eye) - zero).cpu().numpy())
    return np.concatenate(blocks, axis=0)


def coefficient_table(
    coef: np.ndarray, task, names: Sequence[str], regression: bool
) -> pd.DataFrame:
    """One row per feature: a column per output (`years`, or `logit[class]`), ranked by the
    largest absolute coefficient."""
    columns = ["years"] if regression else [f"logit[{c}]" for c in task.classes][: coef.shape[1]]
    if len(columns) < coef.shape[1]:  # ordinal heads: one output per threshold
        columns = [f"threshold[{k}]" for k in range(coef.shape[1])]
    frame = pd.DataFrame(coef, columns=columns)
    frame.insert(0, "feature", list(names))
    frame["max_abs"] = np.abs(coef).max(axis=1)
    frame = frame.sort_values("max_abs", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(1, "rank", np.arange(1, len(frame) + 1))
    return frame


def run_device(cfg: DictConfig) -> torch.device:
    """The GPU when the run trained on one (or chose `auto`) and one is here, else the CPU."""
    accelerator = str(cfg.get("trainer", {}).get("accelerator", "cpu"))
    wants_gpu = accelerator in ("gpu", "cuda", "auto")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def predicts_years(module: torch.nn.Module, j: int) -> bool:
    """Task j's loss gives no class probabilities (regression): its years are attributed."""
    return module.loss_fn.probabilistic()[j] is False


def head_attributions(
    module: torch.nn.Module,
    j: int,
    x: np.ndarray,
    codes: np.ndarray,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Task j's head on labelled samples: attributions of the true class's probability (of
    the predicted years for a regression head), and IG's convergence deltas."""
    target = None if predicts_years(module, j) else codes
    device = next(module.parameters()).device
    return attribute(task_output(module, j), x, target, method, steps, device)


def batch_rows(features: int, steps: int) -> int:
    """Samples per batch so that batch x steps x features floats stay under MAX_FLOATS."""
    return max(1, MAX_FLOATS // (max(steps, 1) * max(features, 1)))


def attribute(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray,
    target: np.ndarray | None,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Attributions (n, features) of `forward`'s output `target[i]` (None: a (batch,) output)
    for each sample against the zero baseline, in batches; IG also returns each sample's
    convergence delta (sum of attributions - (f(x) - f(0)))."""
    from captum.attr import InputXGradient, IntegratedGradients

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    ig = method == "ig"
    n, p = x.shape
    rows = batch_rows(p, steps if ig else 1)
    explainer = IntegratedGradients(forward) if ig else InputXGradient(forward)
    attrs, deltas = [], []
    for start in range(0, n, rows):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + rows], dtype=np.float32))
        xb = xb.to(device)
        tb = (
            None if target is None else torch.as_tensor(target[start : start + rows], device=device)
        )
        if ig:
            a, d = explainer.attribute(
                xb,
                baselines=torch.zeros_like(xb),
                target=tb,
                n_steps=steps,
                internal_batch_size=len(xb) * steps,
                return_convergence_delta=True,
            )
            deltas.append(d.detach().cpu().numpy())
        else:
            a = explainer.attribute(xb.requires_grad_(), target=tb)
        attrs.append(a.detach().cpu().numpy())
    return np.concatenate(attrs), (np.concatenate(deltas) if ig else None)


def importance_table(
    attr: np.ndarray,
    codes: np.ndarray,
    task: Task,
    feature_names: Sequence[str],
    symbols: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per feature, most important first: rank, mean |attribution| overall and per
    true class, signed mean (positive: the feature pushes towards the true class)."""
    absolute = np.abs(attr)
    frame = pd.DataFrame({"feature": list(feature_names)})
    if symbols:
        frame[SYMBOL] = [symbols.get(name, "") for name in feature_names]
    frame[IMPORTANCE] = absolute.mean(axis=0)
    frame["signed_mean"] = attr.mean(axis=0)
    for k, name in enumerate(task.classes):
        mine = codes == k
        frame[f"{IMPORTANCE}[{name}]"] = absolute[mine].mean(axis=0) if mine.any() else np.nan
    order = np.argsort(-frame[IMPORTANCE].to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def precision_at_k(ranked: Sequence[str], planted: Collection[str], k: int) -> float:
    """Share of the top k that are planted genes."""
    return len(set(ranked[:k]) & set(planted)) / k


def truth_check(ranked: Sequence[str], task: str, informative: dict[str, list[str]]) -> dict:
    """precision@k against the task's own planted genes, and the share of the top k taken by
    other tasks' planted genes (e.g. sex genes in the age head's top 50)."""
    if task not in informative:
        return {}
    others = set().union(*(set(v) for t, v in informative.items() if t != task))
    return {
        "precision_at": {
            str(k): precision_at_k(ranked, informative[task], k) for k in PRECISION_KS
        },
        "other_planted_at": {
            str(k): len(set(ranked[:k]) & (others - set(informative[task]))) / k
            for k in PRECISION_KS
        },
    }


def label(feature: str, symbols: dict[str, str] | None) -> str:
    symbol = (symbols or {}).get(feature, "")
    return f"{feature} ({symbol})" if symbol and symbol != feature else feature


def plot_importance(
    frame: pd.DataFrame, task: Task, counts: Sequence[int], top_k: int, title: str
) -> Figure:
    """Top-k features, each bar split by true class: class c's segment is its share of the
    samples times its mean |attribution|, so a bar's length is the overall mean."""
    top = frame.head(top_k).iloc[::-1]
    total = max(sum(counts), 1)
    fig = Figure(figsize=(7.5, 1.2 + 0.28 * len(top)), layout="constrained")
    ax = fig.add_subplot()
    symbols = (
        dict(zip(top["feature"], top[SYMBOL].fillna(""), strict=True)) if SYMBOL in top else {}
    )
    names = [label(f, symbols) for f in top["feature"]]
    colors = colormaps["viridis" if task.is_binned else "tab10"](
        np.linspace(0, 1, max(task.num_classes, 2)) if task.is_binned else np.arange(10)
    )
    left = np.zeros(len(top))
    for k, name in enumerate(task.classes):
        part = (counts[k] / total) * top[f"{IMPORTANCE}[{name}]"].fillna(0).to_numpy()
        ax.barh(names, part, left=left, color=colors[k % len(colors)], label=name)
        left += part
    ax.set_xlabel("mean |attribution| (bar split by true class)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, title="true class", title_fontsize=7, loc="lower right")
    return fig


# -------------------------------------------------------------------------------- a run


def explain_run(
    run_dir: str | Path,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    top_k: int = DEFAULT_TOP_K,
    annotation: str | Path | None = None,
) -> dict:
    """Explain every head of one run on its test samples; writes the per-task tables and
    charts and `explanation.json`, and returns what that file holds."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    started = time.perf_counter()
    module = build_trained_module(run).to(run_device(run.cfg))
    samples = held_out_samples(run_dir, run)
    symbols = feature_symbols(run.cfg, annotation)
    informative = read_informative(run_dir)
    names = run.preprocessor.feature_names
    out: dict = {"method": method, "steps": steps if method == "ig" else None, "tasks": {}}
    for j, task in enumerate(run.tasks):
        codes = samples.labels[:, j]
        known = codes >= 0
        if not known.any():
            continue
        regression = predicts_years(module, j)
        attr, delta = head_attributions(module, j, samples.x[known], codes[known], method, steps)
        frame = importance_table(attr, codes[known], task, names, symbols)
        frame.to_csv(run_dir / attributions_file(task.name), index=False)
        counts = [int((codes[known] == k).sum()) for k in range(task.num_classes)]
        target_name = "predicted years" if regression else "true class probability"
        fig = plot_importance(
            frame, task, counts, top_k, f"{task.name}: {METHODS[method]} of the {target_name}"
        )
        fig.savefig(run_dir / attributions_plot_file(task.name), dpi=110)
        facts = {
            "n": int(known.sum()),
            "target": target_name,
            "class_counts": dict(zip(task.classes, counts, strict=True)),
            "top": frame["feature"].head(top_k).tolist(),
            **truth_check(frame["feature"].tolist(), task.name, informative),
        }
        if delta is not None:
            facts["delta_mean_abs"] = float(np.abs(delta).mean())
            facts["delta_max_abs"] = float(np.abs(delta).max())
        if is_linear(module):
            coef = linear_coefficients(module, j, len(names))
            table = coefficient_table(coef, task, names, regression)
            table.to_csv(run_dir / coefficients_file(task.name), index=False)
            facts["top_coefficients"] = table["feature"].head(top_k).tolist()
        out["tasks"][task.name] = facts
    out["seconds"] = round(time.perf_counter() - started, 3)
    write_json(run_dir / EXPLANATION_FILE, out)
    return out


def describe_run(run_dir: Path, facts: dict) -> str:
    parts = []
    for task, t in facts["tasks"].items():
        bits = [f"n={t['n']}"]
        if "delta_mean_abs" in t:
            bits.append(f"mean |delta|={t['delta_mean_abs']:.2g}")
        bits += [f"precision@{k}={v:.2f}" for k, v in t.get("precision_at", {}).items()]
        parts.append(f"{task} ({', '.join(bits)})")
    return f"{run_dir}: {'; '.join(parts)} in {facts['seconds']:.1f} s"


# ------------------------------------------------------------------------------ a sweep


def _explained(sweep_dir: Path) -> pd.DataFrame:
    runs = ok_runs(load_runs(sweep_dir))
    return runs[[read_explanation(p) is not None for p in runs["path"]]]


def _tasks(runs: pd.DataFrame) -> list[str]:
    seen: dict[str, None] = {}
    for path in runs["path"]:
        for task in (read_explanation(path) or {}).get("tasks", {}):
            seen.setdefault(task, None)
    return list(seen)


def _importance(path: str, task: str) -> pd.Series | None:
    """A job's importance vector (mean |attribution| by feature), scaled to sum to 1 so jobs
    with differently scaled outputs can be averaged."""
    frame = read_attributions(path, task)
    if frame is None:
        return None
    values = frame.set_index("feature")[IMPORTANCE]
    return values / values.sum() if values.sum() > 0 else values


def compare_vectors(a: pd.Series, b: pd.Series, top_k: int) -> tuple[float, float]:
    """Spearman correlation over the shared features, and the share of a's top k in b's."""
    common = a.index.intersection(b.index)
    rho = spearmanr(a[common], b[common]).statistic if len(common) > 1 else np.nan
    top_a, top_b = a[common].nlargest(top_k).index, b[common].nlargest(top_k).index
    return float(rho), len(set(top_a) & set(top_b)) / max(min(top_k, len(common)), 1)


def attributions_summary(sweep_dir: str | Path, top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """Per task: each variant's stability over its seeds/folds (`replicates` rows: mean over
    job pairs) with its mean precision@k, and every pair of variants (`variants` rows:
    their seed-averaged importance vectors compared)."""
    runs = _explained(Path(sweep_dir))
    rows = []
    for task in _tasks(runs):
        averaged = {}
        for variant, jobs in runs.groupby("variant", sort=False):
            vectors = [v for v in (_importance(p, task) for p in jobs["path"]) if v is not None]
            if not vectors:
                continue
            pairs = [compare_vectors(a, b, top_k) for a, b in itertools.combinations(vectors, 2)]
            row = {
                "task": task,
                "comparison": "replicates",
                "variant": variant,
                "other": "",
                "jobs": len(vectors),
                "pairs": len(pairs),
                "spearman": np.mean([p[0] for p in pairs]) if pairs else np.nan,
                "top_k_overlap": np.mean([p[1] for p in pairs]) if pairs else np.nan,
            }
            facts = [
                (read_explanation(p) or {}).get("tasks", {}).get(task, {}) for p in jobs["path"]
            ]
            # with cross-validation: every sample once when the folds are all there
            row["samples"] = sum(f.get("n", 0) for f in facts)
            for k in PRECISION_KS:
                found = [f["precision_at"][str(k)] for f in facts if "precision_at" in f]
                row[f"precision@{k}"] = np.mean(found) if found else np.nan
            rows.append(row)
            averaged[variant] = pd.concat(vectors, axis=1).mean(axis=1)
        for a, b in itertools.combinations(averaged, 2):
            rho, overlap = compare_vectors(averaged[a], averaged[b], top_k)
            rows.append(
                {
                    "task": task,
                    "comparison": "variants",
                    "variant": a,
                    "other": b,
                    "spearman": rho,
                    "top_k_overlap": overlap,
                }
            )
    frame = pd.DataFrame(rows)
    for column in ("jobs", "pairs", "samples"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def explain_sweep(
    sweep_dir: str | Path,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    top_k: int = DEFAULT_TOP_K,
    annotation: str | Path | None = None,
) -> pd.DataFrame:
    """Explain every finished job (a failed or unreadable one is named and skipped), then
    write and return `attributions_summary.csv`."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir)
    for row in runs[runs["status"] != OK].itertuples():
        print(f"skipped {row.job}: {row.error}")
    explained = 0
    for path in ok_runs(runs)["path"]:
        try:
            facts = explain_run(path, method, steps, top_k, annotation)
        except MultiheadError as err:
            print_error(f"{path}: not explained: {err}")
            continue
        explained += 1
        print(describe_run(Path(path), facts))
    if not explained:
        raise DataError(f"{sweep_dir}: no finished job could be explained")
    summary = attributions_summary(sweep_dir, top_k)
    summary.to_csv(sweep_dir / ATTRIBUTIONS_SUMMARY_FILE, index=False)
    return summary


# ------------------------------------------------------------------------ report section


def _fmt(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _top_features(runs: pd.DataFrame, task: str, rows: int) -> list[str]:
    vectors = [v for v in (_importance(p, task) for p in runs["path"]) if v is not None]
    mean = pd.concat(vectors, axis=1).mean(axis=1).sort_values(ascending=False)
    symbols: dict[str, str] = {}
    first = read_attributions(runs["path"].iloc[0], task)
    if first is not None and SYMBOL in first:
        symbols = dict(zip(first["feature"], first[SYMBOL].fillna(""), strict=True))
    lines = ["| rank | feature | share of importance | in the top 10 of |", "|---|---|---|---|"]
    for rank, (feature, share) in enumerate(mean.head(rows).items(), 1):
        inside = sum(feature in v.nlargest(SECTION_ROWS).index for v in vectors)
        lines.append(
            f"| {rank} | {label(feature, symbols)} | {share:.3f} | {inside}/{len(vectors)} jobs |"
        )
    return lines


def explanation_section(sweep_dir: str | Path, top_k: int = DEFAULT_TOP_K) -> str:
    """Markdown: per task the top features over all explained jobs, each variant's stability
    across seeds/folds and precision@k against planted genes, and how much variants agree."""
    sweep_dir = Path(sweep_dir)
    runs = _explained(sweep_dir)
    if runs.empty:
        return (
            f"{SECTION_TITLE}\n\nNo job has been explained yet: run "
            f"`python -m multihead.explain {sweep_dir}`.\n"
        )
    first = read_explanation(runs["path"].iloc[0]) or {}
    method = METHODS.get(first.get("method"), first.get("method"))
    summary = attributions_summary(sweep_dir, top_k)
    lines = [
        SECTION_TITLE,
        "",
        f"{method} on each job's test samples ({len(runs)} jobs), attributing the true class's "
        "probability (regression: the predicted years) to the inputs. Importance = mean "
        "|attribution|, scaled to sum to 1 per job. Stability: mean Spearman correlation of "
        f"the importance vectors over pairs of seeds/folds, and the share of the top {top_k} "
        "they share. Correlated features share credit, and attributions explain the model, "
        "not the biology.",
    ]
    for task in _tasks(runs):
        lines += ["", f"### {task}", "", *_top_features(runs, task, SECTION_ROWS), ""]
        mine = summary[summary["task"] == task]
        reps = mine[mine["comparison"] == "replicates"]
        truth = [f"precision@{k}" for k in PRECISION_KS if reps[f"precision@{k}"].notna().any()]
        columns = ["variant", "jobs", "Spearman", "top-k overlap", *truth]
        lines += ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
        for _, r in reps.iterrows():
            cells = [r["variant"], str(int(r["jobs"])), _fmt(r["spearman"])]
            cells += [_fmt(r["top_k_overlap"]), *(_fmt(r[t]) for t in truth)]
            lines.append("| " + " | ".join(cells) + " |")
        pairs = mine[mine["comparison"] == "variants"]
        if not pairs.empty:
            lines += ["", "| variant | other | Spearman | top-k overlap |", "|---|---|---|---|"]
            lines += [
                f"| {r.variant} | {r.other} | {_fmt(r.spearman)} | {_fmt(r.top_k_overlap)} |"
                for r in pairs.itertuples(index=False)
            ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m multihead.explain", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("folder", type=Path, help="a training run's folder or a sweep folder")
    parser.add_argument("--method", choices=sorted(METHODS), default=DEFAULT_METHOD)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="IG integration steps")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="features charted")
    parser.add_argument(
        "--annotation", type=Path, default=None, help="CSV with columns feature,symbol"
    )
    args = parser.parse_args(argv)
    folder = args.folder
    if args.steps < 1 or args.top_k < 1:
        exit_with_message("--steps and --top-k must be at least 1")
    if not folder.is_dir():
        exit_with_message(f"{folder} is not a folder: give a run folder or a sweep folder")
    try:
        if is_run_dir(folder):
            facts = explain_run(folder, args.method, args.steps, args.top_k, args.annotation)
            print(describe_run(folder, facts))
            return 0
        if not any(is_job_dir(p) for p in folder.iterdir()):
            exit_with_message(
                f"{folder} is neither a run folder ({CONFIG_FILE} + {BEST_CHECKPOINT}) nor a "
                "sweep folder holding job folders"
            )
        summary = explain_sweep(folder, args.method, args.steps, args.top_k, args.annotation)
    except MultiheadError as err:
        exit_with_message(str(err))
    print(f"{len(summary)} comparisons -> {folder / ATTRIBUTIONS_SUMMARY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
