"""Networks against linear models on small cohorts, on the same splits (a script, not a test).

    python scripts/benchmark_small.py                    # every cohort found, defaults below
    python scripts/benchmark_small.py --splits 5 --trials 20 --cohorts all_leukemia
    python scripts/benchmark_small.py --cohorts synthetic --synthetic-trials 20 \
        --extra model.select=association
    python scripts/benchmark_small.py --cohorts all_leukemia --models linear
    python scripts/benchmark_small.py --cohorts synthetic --synthetic-trials 20 \
        --extra model.select=association --network-extra model.trunk.skip=true

Per cohort and task it prints the tuned network (`head=split loss=regression`: age as
regression, sex as cross-entropy), `model=linear` (ridge + logistic regression, its penalty and
top-k tuned with the same number of trials) and a scikit-learn reference (Ridge /
LogisticRegression, penalty, top-k and selection by 5-fold CV inside the training split) side
by side, with the ratio of each to the reference. Splits are the tool's own (`data.seed` = 0,
1, ...), so the three models see the same training, validation and test samples; the scikit-
learn models read the same standardised features. Cohorts: the built-in synthetic one, and the
shared ALL expression and GSE51057 methylation cohorts when `../shared/data` holds them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "callbacks.progress=null"]
#: top-k candidates of the scikit-learn reference: those of the tuning space
TOP_K = tuple(OmegaConf.load(ROOT / "conf" / "tune" / "optuna.yaml").space.top_k.choices)
#: the two tuned models the script can train besides the reference
MODELS = ("network", "linear")
#: cohort -> (overrides, the network's model, the folder that must exist or None)
COHORTS = {
    "synthetic": ([], "mlp", None),
    "all_leukemia": (
        [
            "data=table",
            "data.matrix={d}/expression.csv.gz",
            "data.samples={d}/samples.csv",
            "data.labels.missing=mask",
            "data.tasks.age.bins=quantile:3",
        ],
        "auto",
        "all_leukemia",
    ),
    "gse51057_methylation": (
        [
            "data=table",
            "data.matrix={d}/betas.csv.gz",
            "data.samples={d}/samples.csv",
            "data.preprocess.missing_values=impute",
            "~data.tasks.sex",
        ],
        "auto",
        "gse51057_methylation",
    ),
}
NETWORK = ["head=split", "loss=regression"]
LINEAR = ["model=linear", "head=split", "loss=regression", "loss.options.regression.kind=mse"]


def compose_cfg(overrides: list[str], out: Path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*overrides, *QUIET, f"paths.output_dir={out}"])


def run_quietly(cfg) -> dict:
    from multihead.training.run import train

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg)


class TopVariance(BaseEstimator, TransformerMixin):
    """The k columns of largest variance in the data it is fitted on (the training fold),
    variance measured before standardisation (`weights`: each column's squared scale)."""

    def __init__(self, k: int | None = None, weights: np.ndarray | None = None) -> None:
        self.k = k
        self.weights = weights

    def fit(self, x, y=None):
        var = x.var(axis=0) * (1 if self.weights is None else self.weights)
        order = np.argsort(-var, kind="stable")
        self.idx_ = np.sort(order[: self.k]) if self.k else np.arange(x.shape[1])
        return self

    def transform(self, x):
        return x[:, self.idx_]


def selections(weights: np.ndarray, grid_k: list, score) -> list[dict]:
    """The tuning space's feature selections as grid entries: top-k by variance, or (with a
    k) by the task's univariate F statistic (`model.select=association`; here the task's own
    F alone, where the network interleaves both tasks' rankings)."""
    ks = [k for k in grid_k if k is not None]
    by_score = [{"top": [SelectKBest(score)], "top__k": ks}] if ks else []
    return [{"top": [TopVariance(weights=weights)], "top__k": grid_k}, *by_score]


def sklearn_reference(cfg) -> dict[str, float]:
    """Ridge / logistic regression on the job's own split, the penalty, the top-k and the
    selection (the same candidates as the tuning space) chosen by 5-fold CV inside the
    training split."""
    from multihead.data.datamodule import prepare_cohort

    cohort = prepare_cohort(cfg.data)
    x = cohort.features.numpy().astype(np.float64)
    weights = cohort.preprocessor.standardizer.scale.astype(np.float64) ** 2
    grid_k = [k for k in TOP_K if k is None or k < x.shape[1]]
    train, test = cohort.splits["train"], cohort.splits["test"]
    out = {}
    for j, task in enumerate(cohort.tasks):
        labels = cohort.labels[:, j].numpy()
        tr, te = train[labels[train] >= 0], test[labels[test] >= 0]
        pipe = Pipeline([("top", TopVariance(weights=weights)), ("model", None)])
        if task.name == "age":
            years = cohort.values[:, j].numpy()
            model = {"model": [Ridge()], "model__alpha": np.logspace(-1, 5, 13)}
            grid = [{**g, **model} for g in selections(weights, grid_k, f_regression)]
            search = GridSearchCV(pipe, grid, cv=5, scoring="neg_mean_absolute_error")
            search.fit(x[tr], years[tr])
            out["age MAE (y)"] = float(np.abs(search.predict(x[te]) - years[te]).mean())
        else:
            model = {
                "model": [LogisticRegression(max_iter=3000)],
                "model__C": np.logspace(-4, 2, 7),
            }
            grid = [{**g, **model} for g in selections(weights, grid_k, f_classif)]
            search = GridSearchCV(pipe, grid, cv=5, scoring="neg_log_loss")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                search.fit(x[tr], labels[tr])
            out[f"{task.name} bal. acc."] = float(
                balanced_accuracy_score(labels[te], search.predict(x[te]))
            )
    return out


def task_scores(metrics: dict) -> dict[str, float]:
    out = {}
    for task, values in metrics["tasks"].items():
        if task == "age" and values.get("mae_years") is not None:
            out["age MAE (y)"] = values["mae_years"]
        elif task != "age":
            out[f"{task} bal. acc."] = values["balanced_accuracy"]
    return out


def tuned(trials: int) -> list[str]:
    return ["tune=optuna", f"tune.trials={trials}"] if trials > 0 else []


def benchmark(
    name: str,
    splits: int,
    trials: int,
    root: Path,
    extra: list[str] = (),
    network_extra: list[str] = (),
    models: tuple[str, ...] = MODELS,
) -> pd.DataFrame:
    """`extra`: overrides for the network and model=linear (e.g. model.select=association);
    `network_extra`: for the network alone (e.g. model.trunk.skip=true); `models`: which of
    the two to train (the reference always runs; a model left out shows as nan)."""
    overrides, network_model, folder = COHORTS[name]
    data = [o.format(d=SHARED / folder) if folder else o for o in overrides]
    rows = []
    for split in range(splits):
        started = time.perf_counter()
        base = [*data, f"data.seed={split}"]
        jobs = {
            "network": [
                *base,
                f"model={network_model}",
                *NETWORK,
                *tuned(trials),
                *extra,
                *network_extra,
            ],
            "linear": [*base, *LINEAR, *tuned(trials), *extra],
        }
        runs = {
            model: run_quietly(compose_cfg(jobs[model], root / name / f"split{split}" / model))
            for model in models
        }
        reference = sklearn_reference(compose_cfg(base, root / "unused"))
        scores = {k: task_scores(runs[k]) if k in runs else {} for k in MODELS}
        for metric, value in reference.items():
            rows.append(
                {
                    "cohort": name,
                    "metric": metric,
                    "split": split,
                    "network": scores["network"].get(metric, np.nan),
                    "linear": scores["linear"].get(metric, np.nan),
                    "sklearn": value,
                    **{
                        f"{model} warnings": sum(
                            len(t.get("warnings", [])) for t in runs[model]["tasks"].values()
                        )
                        for model in runs
                    },
                }
            )
        print(
            f"{name} split {split}: "
            + "; ".join(
                f"{r['metric']}: network {r['network']:.3f} linear {r['linear']:.3f} "
                f"sklearn {r['sklearn']:.3f}"
                for r in rows
                if r["split"] == split
            )
            + f" ({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    return pd.DataFrame(rows)


def summary_table(frame: pd.DataFrame) -> str:
    lines = [
        "| cohort | metric | splits | network | model=linear | scikit-learn | network / sklearn "
        "| linear / sklearn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (cohort, metric), group in frame.groupby(["cohort", "metric"], sort=False):
        cells = {
            c: f"{group[c].astype(float).mean():.3f} ± {group[c].astype(float).std(ddof=0):.3f}"
            for c in ("network", "linear", "sklearn")
        }
        net, lin, ref = (group[c].astype(float).mean() for c in ("network", "linear", "sklearn"))
        lines.append(
            f"| {cohort} | {metric} | {len(group)} | {cells['network']} | {cells['linear']} "
            f"| {cells['sklearn']} | {net / ref:.2f} | {lin / ref:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohorts", nargs="*", default=list(COHORTS))
    parser.add_argument("--splits", type=int, default=5, help="splits per shared cohort")
    parser.add_argument("--synthetic-splits", type=int, default=1, help="splits, built-in")
    parser.add_argument("--trials", type=int, default=20, help="tuning trials per model")
    parser.add_argument(
        "--synthetic-trials", type=int, default=0, help="tuning trials on the built-in cohort"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the job folders here")
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="overrides for the network and model=linear, e.g. model.select=association",
    )
    parser.add_argument(
        "--network-extra",
        nargs="*",
        default=[],
        help="overrides for the network alone, e.g. model.trunk.skip=true",
    )
    parser.add_argument(
        "--models", nargs="*", choices=MODELS, default=list(MODELS), help="which to train"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    root = args.out or Path(tempfile.mkdtemp(prefix="benchmark_small_"))
    frames = []
    for name in args.cohorts:
        folder = COHORTS[name][2]
        if folder and not (SHARED / folder).is_dir():
            print(f"{name}: {SHARED / folder} not found, skipped")
            continue
        synthetic = folder is None
        frames.append(
            benchmark(
                name,
                args.synthetic_splits if synthetic else args.splits,
                args.synthetic_trials if synthetic else args.trials,
                root,
                args.extra,
                args.network_extra,
                tuple(args.models),
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.to_csv(root / "benchmark_small.csv", index=False)
    print(f"\nper split: {root / 'benchmark_small.csv'}\n")
    print(summary_table(frame))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
