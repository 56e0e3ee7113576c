"""Linear references on exactly the splits and preprocessing the networks had.

A network is only worth its complexity if it beats the linear models genomics uses (the
classic age clocks are penalised linear regressions). For every data split the sweep's
networks were tested on, the cohort is rebuilt from a job's saved config with
`prepare_cohort` (same data, split and preprocessing, and the same `model.top_k` feature
selection; checked against the job's `splits.csv`), and three references are fitted on its
training part and scored on its test part by the same metric code as the runs:

- **logistic regression**: per task, a multinomial L2 logistic regression fitted on the
  training part, its strength chosen on the validation part by log loss (the same inner
  holdout the networks use for early stopping and checkpoint selection); a binned task's MAE
  uses the expected years under its class probabilities, like a network;
- **ridge regression**: per binned task (age), a ridge regression on the years themselves,
  strength chosen by efficient leave-one-out on the training part (`RidgeCV`); its class is
  the bin of the predicted years; tasks without years are left empty;
- **majority class**: the training class frequencies, as a floor.

With more features than training samples both fits run in the coordinates of the training
rows' span (see `Coordinates`): an L2 solution lies in that span (the representer theorem), so
the fit is the same and much faster.
Every reference yields one row per split and per-sample test predictions in the format of a
job's predictions.csv, so it enters the statistics exactly like a network variant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import log_loss

from multihead.data.datamodule import PreparedCohort, prepare_cohort
from multihead.data.feature_selection import model_selection, select_top_k
from multihead.data.labels import MISSING
from multihead.metrics.joint import JointAccuracy
from multihead.metrics.names import JOINT
from multihead.metrics.task_metrics import TaskMetrics
from multihead.reporting.runs import ok_runs
from multihead.run_folder import SPLITS_FILE, read_config, read_splits

MAJORITY = "majority class"
LOGISTIC = "logistic regression"
RIDGE = "ridge regression"
LINEAR_MODELS = (LOGISTIC, RIDGE)
C_GRID = tuple(np.logspace(-3, 1, 5))  # inverse L2 strengths tried, strong to weak
ALPHA_GRID = tuple(np.logspace(-3, 5, 17))  # ridge strengths tried by leave-one-out


@dataclass
class ReferenceResult:
    """Per split: one row per reference model (`variant`, `kind`, `split`, `task/metric`
    columns, sizes) and its test predictions; notes on how they were made."""

    rows: pd.DataFrame
    predictions: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def linear(self) -> list[str]:
        """The linear models among the rows (the majority class is a floor, not a model)."""
        present = list(dict.fromkeys(self.rows["variant"])) if len(self.rows) else []
        return [v for v in present if v.split(" [", 1)[0] in LINEAR_MODELS]


def _labelled(cohort: PreparedCohort, split: str, task_index: int) -> tuple[np.ndarray, np.ndarray]:
    rows = cohort.splits[split]
    labels = cohort.labels.numpy()[rows, task_index]
    keep = labels != MISSING
    return rows[keep], labels[keep]


class Coordinates:
    """The model inputs of a cohort's train/val/test rows in coordinates of the training rows'
    span, when that is smaller than the feature count.

    With the training matrix X (n x p, n < p) and X X^T = U diag(lam) U^T, the training rows
    get Z = U sqrt(lam) and any other rows Z' = X' X^T U / sqrt(lam): then Z Z'^T = X X'^T, so
    every L2-penalised linear model fits and predicts exactly as on X (an L2 solution lies in
    the span of its training rows), at the cost of one n x n eigendecomposition instead of an
    SVD of X. Directions with lam below 1e-10 of the largest carry nothing and are dropped."""

    def __init__(self, cohort: PreparedCohort) -> None:
        self.cohort = cohort
        train = cohort.feature_rows(cohort.splits["train"]).astype(np.float64)
        n, p = train.shape
        self._train = train
        self._map = None
        if p > n:
            lam, u = np.linalg.eigh(train @ train.T)
            keep = lam > lam.max(initial=0.0) * 1e-10
            root = np.sqrt(lam[keep])
            self._map = train.T @ (u[:, keep] / root)  # p x r: Z' = X' @ map
            self._rows = {"train": u[:, keep] * root}
        else:
            self._rows = {"train": train}

    def rows(self, split: str) -> np.ndarray:
        if split not in self._rows:
            x = self.cohort.feature_rows(self.cohort.splits[split]).astype(np.float64)
            self._rows[split] = x if self._map is None else x @ self._map
        return self._rows[split]

    def labelled(self, split: str, task_index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.cohort.splits[split]
        labels = self.cohort.labels.numpy()[rows, task_index]
        keep = labels != MISSING
        return self.rows(split)[keep], labels[keep]


def majority_probs(train_labels: np.ndarray, n_test: int, num_classes: int) -> np.ndarray:
    """Training class frequencies for every test sample: predicts the majority class and is
    as calibrated as a constant can be."""
    freq = np.bincount(train_labels, minlength=num_classes).astype(float)
    return np.tile(freq / freq.sum(), (n_test, 1))


def logistic_probs(coords: Coordinates, task_index: int) -> tuple[np.ndarray, str]:
    """Test probabilities of an L2 multinomial logistic regression fitted on the training
    part, its strength chosen on the validation part (the split the networks stop on) by
    log loss; fits run from strong to weak penalty, each starting where the last ended."""
    x, y = coords.labelled("train", task_index)
    x_val, y_val = coords.labelled("val", task_index)
    num_classes = coords.cohort.tasks[task_index].num_classes
    model = LogisticRegression(C=C_GRID[0], max_iter=300, tol=1e-3, warm_start=True)
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in C_GRID:
            model.set_params(C=c).fit(x, y)
            probs = np.zeros((len(y_val), num_classes))
            probs[:, model.classes_] = model.predict_proba(x_val)
            loss = log_loss(y_val, np.clip(probs, 1e-12, 1), labels=np.arange(num_classes))
            if best is None or loss < best[0]:
                best = (loss, c, model.coef_.copy(), model.intercept_.copy())
    _, c, coef, intercept = best
    model.coef_, model.intercept_ = coef, intercept
    probs = np.zeros((len(coords.cohort.splits["test"]), num_classes))
    probs[:, model.classes_] = model.predict_proba(coords.rows("test"))
    return probs, f"C={c:.3g} by validation log loss"


def ridge_years(coords: Coordinates, task_index: int) -> tuple[np.ndarray, str]:
    """Predicted years of a ridge regression on the training part's years (leave-one-out
    choice of the strength), for every test sample."""
    cohort = coords.cohort
    train = cohort.splits["train"]
    years = cohort.values.numpy()[train, task_index].astype(np.float64)
    keep = np.isfinite(years)
    model = RidgeCV(alphas=list(ALPHA_GRID), gcv_mode="svd").fit(
        coords.rows("train")[keep], years[keep]
    )
    return model.predict(coords.rows("test")), f"alpha={model.alpha_:.3g} by leave-one-out"


def _score(
    cohort: PreparedCohort,
    probs: list[np.ndarray | None],
    years: list[np.ndarray | None],
) -> dict[str, float]:
    """`task/metric` scalars on the test split, by the runs' own metric code; a task with
    neither probabilities nor years (ridge on sex) stays empty, and so does joint accuracy."""
    test = cohort.splits["test"]
    labels = cohort.labels[test]
    out: dict[str, float] = {}
    decoded = []
    for j, task in enumerate(cohort.tasks):
        if probs[j] is None and years[j] is None:
            decoded.append(None)
            continue
        metrics = TaskMetrics(task, probabilistic=probs[j] is not None)
        p = None if probs[j] is None else torch.tensor(probs[j], dtype=torch.float32)
        y = None if years[j] is None else torch.tensor(years[j], dtype=torch.float32)
        pred = torch.from_numpy(task.bin_of(years[j])) if p is None else p.argmax(dim=1)
        metrics.update(p, labels[:, j], cohort.values[test, j], preds=pred, years=y)
        out.update({f"{task.name}/{k}": v for k, v in metrics.compute_scalars().items()})
        decoded.append(pred)
    if all(d is not None for d in decoded):
        joint = JointAccuracy()
        joint.update(torch.stack(decoded, dim=1), labels)
        out[JOINT] = float(joint.compute())
    return out


def _predictions(
    cohort: PreparedCohort, probs: list[np.ndarray | None], years: list[np.ndarray | None]
) -> pd.DataFrame:
    """The test predictions in the columns of a job's predictions.csv."""
    test = cohort.splits["test"]
    labels = cohort.labels.numpy()[test]
    values = cohort.values.numpy()[test].astype(float)
    frame = pd.DataFrame({"sample_id": [cohort.sample_ids[i] for i in test]})
    for j, task in enumerate(cohort.tasks):
        if probs[j] is None and years[j] is None:
            continue
        classes = np.asarray(task.classes, dtype=object)
        true = labels[:, j]
        pred = task.bin_of(years[j]) if probs[j] is None else probs[j].argmax(axis=1)
        frame[f"{task.name}_true"] = np.where(true >= 0, classes[np.maximum(true, 0)], None)
        frame[f"{task.name}_pred"] = classes[pred]
        if task.is_binned:
            mids = task.midpoints
            frame[f"{task.name}_true_value"] = np.where(
                true >= 0,
                np.where(np.isnan(values[:, j]), mids[np.maximum(true, 0)], values[:, j]),
                np.nan,
            )
            frame[f"{task.name}_pred_value"] = years[j] if probs[j] is None else probs[j] @ mids
        for k, name in enumerate(task.classes if probs[j] is not None else ()):
            frame[f"{task.name}_p[{name}]"] = probs[j][:, k]
    return frame


def fit_references(
    cohort: PreparedCohort,
) -> tuple[dict[str, tuple[dict, pd.DataFrame]], list[str]]:
    """Every reference model on one prepared cohort: name -> (scores, test predictions)."""
    coords = Coordinates(cohort)
    n_test = len(cohort.splits["test"])
    tasks = cohort.tasks
    majority = [
        majority_probs(_labelled(cohort, "train", j)[1], n_test, t.num_classes)
        for j, t in enumerate(tasks)
    ]
    logistic, how = [], []
    for j, task in enumerate(tasks):
        probs, chosen = logistic_probs(coords, j)
        logistic.append(probs)
        how.append(f"{task.name}: {chosen}")
    ridge: list[np.ndarray | None] = []
    for j, task in enumerate(tasks):
        if task.is_binned:
            years, chosen = ridge_years(coords, j)
            how.append(f"{task.name} ({RIDGE}): {chosen}")
            ridge.append(years)
        else:
            ridge.append(None)
    none = [None] * len(tasks)
    models = {
        MAJORITY: (majority, none),
        LOGISTIC: (logistic, none),
    }
    if any(r is not None for r in ridge):
        models[RIDGE] = (none, ridge)
    out = {
        name: (_score(cohort, p, y), _predictions(cohort, p, y)) for name, (p, y) in models.items()
    }
    return out, how


def same_inputs(cohort: PreparedCohort, config) -> PreparedCohort:
    """The features the job's network read: `model.top_k` (resolved by `model=auto` or tuning
    and saved in its config.yaml) keeps the k first training features of the `model.select`
    ranking (variance, or association with the training labels)."""
    model = config.get("model") or {}
    top_k = model.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        return select_top_k(cohort, top_k, model_selection(model))
    return cohort


def _check_split(cohort: PreparedCohort, job_dir: Path) -> str:
    """A note if the rebuilt test split is not the one the job saved (it should never be)."""
    if not (job_dir / SPLITS_FILE).exists():
        return ""
    saved = read_splits(job_dir)
    saved_test = set(saved.loc[saved["split"] == "test", "sample_id"])
    rebuilt = {cohort.sample_ids[i] for i in cohort.splits["test"]}
    if saved_test != rebuilt:
        return (
            f"the rebuilt test split differs from {job_dir / SPLITS_FILE} "
            f"({len(saved_test ^ rebuilt)} samples); reference rows may not be comparable"
        )
    return ""


def reference_metrics(runs: pd.DataFrame, progress=None) -> ReferenceResult:
    """Reference rows and predictions for every (data configuration, split) the finished
    jobs were tested on. Problems (a data file that moved) become notes, not errors: the
    report still builds without reference rows. `progress(i, n)` is called per split."""
    done = ok_runs(runs)
    firsts = done.drop_duplicates(subset=["data_key", "split"], keep="first")
    # several data configurations in one sweep: each gets its own reference rows, labelled
    # by the first variant that used it
    data_keys = {
        key: f"data of {variant}"
        for key, variant in done.drop_duplicates("data_key")[["data_key", "variant"]].itertuples(
            index=False
        )
    }
    rows, predictions, notes = [], {}, []
    methods: dict[str, None] = {}
    for i, job in enumerate(firsts.itertuples()):
        job_dir = Path(job.path)
        if progress is not None:
            progress(i, len(firsts))
        try:
            config = read_config(job_dir)
            cohort = same_inputs(prepare_cohort(OmegaConf.create(config.data)), config)
        except Exception as err:
            notes.append(
                f"no reference rows for split {job.split} (data of {job_dir.name}): "
                f"{type(err).__name__}: {err}"
            )
            continue
        fitted, how = fit_references(cohort)
        methods.update(dict.fromkeys(how))
        note = _check_split(cohort, job_dir)
        notes += [note] if note else []
        sizes = {k: int(len(v)) for k, v in cohort.splits.items()}
        for model, (scores, frame) in fitted.items():
            name = model if len(data_keys) == 1 else f"{model} [{data_keys[job.data_key]}]"
            rows.append(
                {
                    "variant": name,
                    "kind": "reference",
                    "split": job.split,
                    "data_key": job.data_key,
                    "n_train": sizes["train"],
                    "n_val": sizes["val"],
                    "n_test": sizes["test"],
                    **scores,
                }
            )
            predictions[(name, job.split)] = frame
    if methods:
        notes.append(
            "reference penalties per split: "
            + "; ".join(list(methods)[:6])
            + (" ..." if len(methods) > 6 else "")
        )
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["variant", "kind", "split"])
    return ReferenceResult(frame, predictions, notes)
