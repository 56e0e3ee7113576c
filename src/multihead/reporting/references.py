"""Reference rows on the very same split: majority class and a logistic regression per task.

A network is only worth its complexity if it beats these. The cohort is rebuilt from a job's
saved `config.yaml` with `prepare_cohort` (data and split are fixed by `data.seed`), checked
against the job's `splits.csv`, and every score comes from the same `TaskMetrics` the runs
use, so reference numbers and run numbers mean exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from multihead.data.datamodule import PreparedCohort, prepare_cohort
from multihead.data.labels import MISSING
from multihead.metrics.joint import JointAccuracy
from multihead.metrics.names import JOINT
from multihead.metrics.task_metrics import TaskMetrics
from multihead.reporting.runs import ok_runs
from multihead.run_folder import CONFIG_FILE, SPLITS_FILE, read_config, read_splits

MAJORITY = "majority class"
LOGISTIC = "logistic regression"
C_GRID = (0.01, 0.1, 1.0)  # inverse L2 strength, chosen per task on the validation split


@dataclass
class ReferenceResult:
    """Scores of the reference models on one data configuration, and how they were made."""

    rows: pd.DataFrame  # one row per reference model: variant + `task/metric` columns
    notes: list[str]


def _labelled(cohort: PreparedCohort, split: str, task_index: int) -> tuple[np.ndarray, np.ndarray]:
    rows = cohort.splits[split]
    labels = cohort.labels.numpy()[rows, task_index]
    keep = labels != MISSING
    return rows[keep], labels[keep]


def majority_probs(train_labels: np.ndarray, n_test: int, num_classes: int) -> np.ndarray:
    """Training class frequencies for every test sample: predicts the majority class and is
    as calibrated as a constant can be."""
    freq = np.bincount(train_labels, minlength=num_classes).astype(float)
    return np.tile(freq / freq.sum(), (n_test, 1))


def logistic_probs(cohort: PreparedCohort, task_index: int) -> tuple[np.ndarray, float]:
    """Test probabilities of an L2 logistic regression whose strength was picked on val."""
    train, y_train = _labelled(cohort, "train", task_index)
    val, y_val = _labelled(cohort, "val", task_index)
    x_train, x_val = cohort.feature_rows(train), cohort.feature_rows(val)  # dense/sparse/backed
    best: tuple[float, float, LogisticRegression] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        score = balanced_accuracy_score(y_val, model.predict(x_val))
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    num_classes = cohort.tasks[task_index].num_classes
    probs = np.zeros((len(cohort.splits["test"]), num_classes))
    probs[:, model.classes_] = model.predict_proba(cohort.feature_rows(cohort.splits["test"]))
    return probs, c


def score(cohort: PreparedCohort, probs: list[np.ndarray]) -> dict[str, float]:
    """`task/metric` scalars and joint accuracy for test-split probabilities, per task."""
    test = cohort.splits["test"]
    labels = cohort.labels[test]
    out: dict[str, float] = {}
    for j, task in enumerate(cohort.tasks):
        metrics = TaskMetrics(task)
        metrics.update(
            torch.tensor(probs[j], dtype=torch.float32), labels[:, j], cohort.values[test, j]
        )
        out.update({f"{task.name}/{k}": v for k, v in metrics.compute_scalars().items()})
    joint = JointAccuracy()
    joint.update(torch.stack([torch.from_numpy(p.argmax(axis=1)) for p in probs], dim=1), labels)
    out[JOINT] = float(joint.compute())
    return out


def _check_split(cohort: PreparedCohort, job_dir: Path) -> str:
    """A note if the rebuilt test split is not the one the job saved (it should never be)."""
    path = job_dir / SPLITS_FILE
    if not path.exists():
        return ""
    saved = read_splits(job_dir)
    saved_test = set(saved.loc[saved["split"] == "test", "sample_id"])
    rebuilt = {cohort.sample_ids[i] for i in cohort.splits["test"]}
    if saved_test != rebuilt:
        return (
            f"the rebuilt test split differs from {path} ({len(saved_test ^ rebuilt)} "
            "samples); reference rows may not be comparable"
        )
    return ""


def reference_scores(cohort: PreparedCohort) -> tuple[pd.DataFrame, list[str]]:
    """Both reference models on one prepared cohort."""
    n_test = len(cohort.splits["test"])
    majority, logistic, chosen = [], [], []
    for j, task in enumerate(cohort.tasks):
        _, y_train = _labelled(cohort, "train", j)
        majority.append(majority_probs(y_train, n_test, task.num_classes))
        probs, c = logistic_probs(cohort, j)
        logistic.append(probs)
        chosen.append(f"{task.name}: C={c:g}")
    rows = pd.DataFrame(
        [
            {"variant": MAJORITY, **score(cohort, majority)},
            {"variant": LOGISTIC, **score(cohort, logistic)},
        ]
    )
    note = (
        f"{LOGISTIC}: L2, C picked from {list(C_GRID)} by validation balanced accuracy "
        f"({'; '.join(chosen)}); fitted on the training split, scored on test"
    )
    return rows, [note]


def _data_key(job_dir: Path) -> str:
    return OmegaConf.to_yaml(read_config(job_dir).data)


def reference_metrics(runs: pd.DataFrame) -> ReferenceResult:
    """Reference rows for the data configurations of the finished jobs (usually one).

    With several data configurations in one sweep, each gets its own pair of rows, labelled
    by the first job that used it. Problems (a data file that moved) become notes, not
    errors: the report still builds without reference rows."""
    groups: dict[str, Path] = {}
    for path in ok_runs(runs)["path"]:
        job_dir = Path(path)
        if (job_dir / CONFIG_FILE).exists():
            groups.setdefault(_data_key(job_dir), job_dir)
    frames, notes = [], []
    for key, job_dir in groups.items():
        try:
            cohort = prepare_cohort(OmegaConf.create(key))
        except Exception as err:
            notes.append(
                f"no reference rows for the data of {job_dir.name}: {type(err).__name__}: {err}"
            )
            continue
        rows, made = reference_scores(cohort)
        if len(groups) > 1:
            rows["variant"] = rows["variant"] + f" (data of {job_dir.name})"
        notes += made + [n for n in [_check_split(cohort, job_dir)] if n]
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["variant"])
    return ReferenceResult(rows, notes)
