"""The run folder: what a job writes, under which names, and how it is read back.

This module is the one owner of that contract. Training writes through it, the report, the
notebook, W&B and the sweep table read through it; no other module spells a file name.

A job folder (`outputs/runs/DATE/` or `outputs/multirun/DATE/N_overrides/`) holds:

| file | written | what |
|---|---|---|
| `config.yaml` | before training | the resolved config |
| `requested_config.yaml` | before training | the config before `auto` values (resume key) |
| `splits.csv` | before training | sample id -> train/val/test |
| `data_report.json` | before training | what loading dropped, masked, clipped or imputed |
| `informative_features.json` | before training | the planted genes (built-in cohort only) |
| `metrics.json` | after test | every test metric and the run's facts |
| `confusion_<task>.csv/.png`, `per_class_<task>.csv`, `predictions.csv` | after test | |
| `tuning_trials.csv` | after tuning (`tune=optuna`) | one row per trial: values, score, state |
| `failed.json` | on failure (in a sweep) | the error and its traceback |
| `attributions_<task>.csv/.png`, `explanation.json` | `multihead.explain` | attributions |
| `attributions_summary.csv` (sweep folder) | `multihead.explain` | their stability |
| `csv/metrics.csv` | during training | per-epoch history (CSV logger) |
| `checkpoints/best.ckpt` | during training | the best checkpoint |
| `checkpoints/last.ckpt` | during training | the latest epoch (an interrupted job resumes) |

JSON files are written atomically (a temporary file renamed into place), so a reader never
sees half a file, even while a sweep is still running. `metrics.json` is written twice: the
test scalars after testing, then the full record with the run facts; only the full record
(`FINISHED_FACT` present) marks a finished job.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from multihead.metrics.names import JOINT

METRICS_FILE = "metrics.json"
FAILED_FILE = "failed.json"
CONFIG_FILE = "config.yaml"
REQUESTED_CONFIG_FILE = "requested_config.yaml"  # the config before `auto` values: resume key
SPLITS_FILE = "splits.csv"
DATA_REPORT_FILE = "data_report.json"
INFORMATIVE_FILE = "informative_features.json"
PREDICTIONS_FILE = "predictions.csv"
TUNING_TRIALS_FILE = "tuning_trials.csv"  # tune=optuna: one row per trial
HISTORY_FILE = "csv/metrics.csv"
CHECKPOINT_DIR = "checkpoints"  # = callbacks.checkpoint.dirpath in conf/callbacks/default.yaml
BEST_CHECKPOINT = f"{CHECKPOINT_DIR}/best.ckpt"  # filename: best
LAST_CHECKPOINT = f"{CHECKPOINT_DIR}/last.ckpt"  # save_last: true (Lightning's own name)
HYDRA_DIR = ".hydra"
OVERRIDES_FILE = f"{HYDRA_DIR}/overrides.yaml"
SWEEP_SUMMARY_FILE = "sweep_summary.csv"
MULTIRUN_FILE = "multirun.yaml"
EXPLANATION_FILE = "explanation.json"  # what `multihead.explain` measured on a run
ATTRIBUTIONS_SUMMARY_FILE = "attributions_summary.csv"  # a sweep's attributions compared
OK, FAILED, MISSING = "ok", "failed", "missing"
RUN_FACTS = (
    "epochs_trained",
    "steps_trained",
    "stop_reason",
    "seconds",
    "num_parameters",
    "n_test",
)
FINISHED_FACT = "seconds"  # written last, with the full record: its presence = finished
SPLIT_SIZES = ("train", "val", "test")
#: data keys that do not change which samples and features a split holds (the replicate's
#: own keys, and how batches are cut)
NOT_COHORT_KEYS = ("seed", "cv", "batch_size", "eval_batch_size")
JOB_NUMBER = re.compile(r"^(\d+)_")
BASIC_SWEEPER = "BasicSweeper"
#: `${job_folder:${hydra.job.override_dirname}}` names a sweep's job folders (conf/hydra)
JOB_FOLDER_RESOLVER = "job_folder"
#: most bytes of a job folder's name after the job number: file systems allow 255 a name
MAX_JOB_FOLDER_NAME = 200


def job_folder_name(overrides: str) -> str:
    """A sweep job's folder name from its overrides, shortened where it would be too long for
    a file system (`OSError: File name too long` when the job starts): the first bytes kept
    and the rest replaced by a hash of the whole, so two jobs never share a folder and a
    re-run sweep finds the same one."""
    encoded = str(overrides).encode()
    if len(encoded) <= MAX_JOB_FOLDER_NAME:
        return str(overrides)
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    kept = encoded[: MAX_JOB_FOLDER_NAME - len(digest) - 1].decode(errors="ignore")
    return f"{kept}~{digest}"


def register_job_folder_resolver() -> None:
    """Make `${job_folder:...}` known to OmegaConf: in `train.py` and, for launchers that run
    jobs in other processes, when the sweep callbacks (`training/hydra_callbacks.py`) load."""
    if not OmegaConf.has_resolver(JOB_FOLDER_RESOLVER):
        OmegaConf.register_new_resolver(JOB_FOLDER_RESOLVER, job_folder_name)


def confusion_file(task: str) -> str:
    return f"confusion_{task}.csv"


def confusion_plot_file(task: str) -> str:
    return f"confusion_{task}.png"


def per_class_file(task: str) -> str:
    return f"per_class_{task}.csv"


def attributions_file(task: str) -> str:
    return f"attributions_{task}.csv"


def coefficients_file(task: str) -> str:
    """`model=linear` only: the task's coefficients per feature."""
    return f"coefficients_{task}.csv"


def attributions_plot_file(task: str) -> str:
    return f"attributions_{task}.png"


# ---------------------------------------------------------------------------------- writing


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(data, indent=indent))


def write_metrics(job_dir: Path, metrics: Mapping) -> None:
    write_json(Path(job_dir) / METRICS_FILE, dict(metrics))


def write_failure(job_dir: Path, error: str, traceback: str | None = None) -> None:
    """Record why a job failed: the sweep goes on and the report lists the error."""
    payload = {"error": error} if traceback is None else {"error": error, "traceback": traceback}
    write_json(Path(job_dir) / FAILED_FILE, payload)


def clear_results(job_dir: Path, checkpoints: bool = False) -> None:
    """A job that (re)starts drops the result files of an earlier attempt, so a kill later
    never leaves an old result that looks like this attempt's; one that starts afresh
    (`checkpoints`) drops the earlier attempt's checkpoints too, so nothing can resume
    from them."""
    for name in (METRICS_FILE, FAILED_FILE):
        (Path(job_dir) / name).unlink(missing_ok=True)
    if checkpoints:
        for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
            (Path(job_dir) / name).unlink(missing_ok=True)


def write_requested_config(job_dir: Path, requested: Mapping) -> None:
    write_text(
        Path(job_dir) / REQUESTED_CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(dict(requested)))
    )


def write_inputs(
    job_dir: Path,
    cfg: DictConfig,
    splits: pd.DataFrame,
    data_report: Mapping,
    informative: Mapping,
) -> None:
    """What a job saves before training: config, split assignment, data report, planted genes."""
    OmegaConf.save(cfg, job_dir / CONFIG_FILE, resolve=True)
    splits.to_csv(job_dir / SPLITS_FILE, index=False)
    if data_report:
        write_json(job_dir / DATA_REPORT_FILE, dict(data_report), indent=1)
    if informative:
        write_json(job_dir / INFORMATIVE_FILE, dict(informative), indent=1)


# ---------------------------------------------------------------------------------- reading


def read_metrics(job_dir: str | Path) -> dict | None:
    path = Path(job_dir) / METRICS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def read_requested_config(job_dir: str | Path) -> dict | None:
    """The config the job was asked to run (None: no such file, e.g. an older job)."""
    path = Path(job_dir) / REQUESTED_CONFIG_FILE
    if not path.exists():
        return None
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def is_finished(job_dir: str | Path) -> bool:
    """metrics.json holds the full record (not only the test scalars written before it)."""
    path = Path(job_dir) / METRICS_FILE
    if not path.exists():
        return False
    try:
        return FINISHED_FACT in json.loads(path.read_text())
    except json.JSONDecodeError:
        return False


def last_checkpoint(job_dir: str | Path) -> Path | None:
    path = Path(job_dir) / LAST_CHECKPOINT
    return path if path.exists() else None


def read_informative(job_dir: str | Path) -> dict[str, list[str]]:
    """The planted genes per task (built-in cohort); {} when the job has none."""
    path = Path(job_dir) / INFORMATIVE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def read_explanation(job_dir: str | Path) -> dict | None:
    """What `multihead.explain` measured on this job (None: not explained yet)."""
    path = Path(job_dir) / EXPLANATION_FILE
    return json.loads(path.read_text()) if path.exists() else None


def read_attributions(job_dir: str | Path, task: str) -> pd.DataFrame | None:
    """One task's attribution table, rank order (None: not explained yet)."""
    path = Path(job_dir) / attributions_file(task)
    return pd.read_csv(path, dtype={"feature": str}) if path.exists() else None


def read_failure(job_dir: str | Path) -> str | None:
    """The error a failed job recorded (None: no failed.json)."""
    path = Path(job_dir) / FAILED_FILE
    if not path.exists():
        return None
    try:
        return str(json.loads(path.read_text()).get("error", ""))
    except json.JSONDecodeError:
        return path.read_text()


def read_config(job_dir: str | Path) -> DictConfig:
    return OmegaConf.load(Path(job_dir) / CONFIG_FILE)


def read_splits(job_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(job_dir) / SPLITS_FILE, dtype={"sample_id": str})


def read_confusion(job_dir: str | Path, task: str) -> pd.DataFrame:
    """Rows true class, columns predicted class, as the job wrote it."""
    return pd.read_csv(Path(job_dir) / confusion_file(task), index_col=0)


def read_per_class(job_dir: str | Path, task: str) -> pd.DataFrame:
    return pd.read_csv(Path(job_dir) / per_class_file(task), dtype={"class": str})


def confusion_tasks(job_dir: str | Path) -> list[str]:
    """Tasks that have a confusion matrix in this folder, in name order."""
    return [
        p.stem.removeprefix("confusion_") for p in sorted(Path(job_dir).glob("confusion_*.csv"))
    ]


def read_predictions(job_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(job_dir) / PREDICTIONS_FILE, dtype={"sample_id": str})


def task_probabilities(predictions: pd.DataFrame, task: str) -> tuple[Any, list[str]]:
    """The `task_p[class]` columns as an (n, k) array, with the class names in order."""
    prefix = f"{task}_p["
    columns = [c for c in predictions.columns if c.startswith(prefix)]
    return predictions[columns].to_numpy(float), [c[len(prefix) : -1] for c in columns]


def read_history(job_dir: str | Path) -> pd.DataFrame | None:
    """Per-epoch validation values from the CSV logger's file, one row per epoch; None when
    the job ran without the CSV logger."""
    path = Path(job_dir) / HISTORY_FILE
    if not path.exists():
        return None
    frame = pd.read_csv(path)
    val = [c for c in frame.columns if c.startswith("val/")]
    if "epoch" not in frame or not val:
        return None
    return frame.dropna(subset=val, how="all").groupby("epoch", as_index=False)[val].last()


def job_overrides(job_dir: str | Path) -> list[str]:
    """The overrides Hydra recorded for this job (written before the job ran)."""
    path = Path(job_dir) / OVERRIDES_FILE
    if not path.exists():
        return []
    return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path)) or []]


def job_config(job_dir: str | Path) -> dict:
    """The resolved config the job saved, else Hydra's composed copy (failed before saving)."""
    job_dir = Path(job_dir)
    for path in (job_dir / CONFIG_FILE, job_dir / HYDRA_DIR / CONFIG_FILE):
        if path.exists():
            try:
                return OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
            except Exception:  # a half-written file says nothing; fall through
                continue
    return {}


def is_job_dir(path: Path) -> bool:
    """A folder a job wrote (Hydra's own `.hydra` folder is part of a job, not one)."""
    return (
        path.is_dir()
        and path.name != HYDRA_DIR
        and any(
            (path / name).exists() for name in (METRICS_FILE, FAILED_FILE, CONFIG_FILE, HYDRA_DIR)
        )
    )


def override_pairs(overrides: Iterable[str]) -> dict[str, str]:
    return dict(o.split("=", 1) for o in overrides if "=" in o)


def _number(value: Any) -> float:
    """JSON null (a metric a loss does not define, e.g. AUROC for regression) becomes NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _name(value: Any) -> str | None:
    """`head` may be written as a name or as a config node with a `name`; anything else (the
    test loss *value* under `loss` in a metrics.json the job never finished) is no name."""
    if isinstance(value, Mapping):
        value = value.get("name")
    return value if isinstance(value, str) else None


VARIANT_KEYS = ("head", "loss", "weighting")
DEFAULT_WEIGHTING = "fixed"  # runs from before weighting existed used fixed task weights


def describe(metrics: Mapping, config: Mapping, overrides: list[str]) -> dict[str, Any]:
    """head, loss, weighting, seed, data: from metrics.json, else the config, else overrides."""
    given = override_pairs(o for o in overrides if not o.startswith("~"))
    out: dict[str, Any] = {}
    for key in VARIANT_KEYS:
        out[key] = (
            _name(metrics.get(key))
            or _name(config.get(key))
            or given.get(key)
            or (DEFAULT_WEIGHTING if key == "weighting" else None)
        )
    seed = metrics.get("seed", config.get("seed", given.get("seed")))
    out["seed"] = int(seed) if seed is not None and str(seed).lstrip("-").isdigit() else None
    data = config.get("data") or {}
    out["data"] = metrics.get("data") or data.get("name") or data.get("source")
    out.update(replicate(metrics, data, given))
    return out


def replicate(metrics: Mapping, data: Mapping, given: Mapping[str, str]) -> dict[str, Any]:
    """Which data split a job was tested on: `data_seed`, and with cross-validation the
    partition (`cv_repeat`) and test fold (`cv_fold`) of `cv_folds`; `split` names it, and
    `data_key` is the data configuration apart from the split (the same cohort)."""
    cv = data.get("cv") or {}

    def pick(key: str, cv_key: str | None, override: str, default: Any) -> Any:
        value = metrics.get(key)
        if value is None:
            value = cv.get(cv_key) if cv_key else data.get("seed")
        if value is None:
            value = given.get(override, default)
        try:
            return None if value is None or value == "null" else int(value)
        except (TypeError, ValueError):
            return None

    out = {
        "data_seed": pick("data_seed", None, "data.seed", None),
        "cv_folds": pick("cv_folds", "folds", "data.cv.folds", None),
        "cv_repeat": pick("cv_repeat", "repeat", "data.cv.repeat", 0),
        "cv_fold": pick("cv_fold", "fold", "data.cv.fold", 0),
    }
    parts = [f"data.seed={out['data_seed']}"]
    if out["cv_folds"]:
        parts += [f"repeat={out['cv_repeat']}", f"fold={out['cv_fold']}/{out['cv_folds']}"]
    out["split"] = " ".join(parts)
    same_cohort = {k: v for k, v in data.items() if k not in NOT_COHORT_KEYS}
    folds = {"folds": out["cv_folds"]}
    out["data_key"] = repr(sorted({**same_cohort, "cv": folds}.items(), key=lambda kv: kv[0]))
    return out


def flat_metrics(metrics: Mapping) -> dict[str, float]:
    """`tasks.age.balanced_accuracy` -> column `age/balanced_accuracy`; joint accuracy as is."""
    out = {
        f"{task}/{name}": _number(value)
        for task, values in (metrics.get("tasks") or {}).items()
        for name, value in values.items()
        if name != "n" and not isinstance(value, (list, dict, str))
    }
    if JOINT in metrics:
        out[JOINT] = _number(metrics[JOINT])
    return out


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def load_run(job_dir: str | Path) -> dict[str, Any]:
    """One job as a flat dict: status (ok/failed), error (first line), head/loss/weighting/
    seed/data, every test metric as `task/metric`, run facts (epochs, seconds) and its path."""
    job_dir = Path(job_dir)
    match = JOB_NUMBER.match(job_dir.name)
    overrides = job_overrides(job_dir)
    row: dict[str, Any] = {
        "job": job_dir.name,
        "num": int(match.group(1)) if match else None,
        "path": str(job_dir),
        "overrides": " ".join(overrides),
        "override_list": overrides,
    }
    error = read_failure(job_dir)
    metrics: dict = {}
    if error is not None:
        row.update(status=FAILED, error=_first_line(error) or "failed (no message)")
    elif (job_dir / METRICS_FILE).exists():
        metrics = read_metrics(job_dir) or {}
        row.update(status=OK, error="")
    else:
        row.update(status=FAILED, error=f"no {METRICS_FILE}: the job did not finish")
    row.update(describe(metrics, job_config(job_dir), overrides))
    for key in RUN_FACTS:
        row[key] = metrics.get(key)
    sizes = metrics.get("split_sizes") or {}
    row.update({f"n_{k}": sizes.get(k) for k in SPLIT_SIZES if k != "test"})
    row["warnings"] = "; ".join(
        f"{task}: {warning}"
        for task, values in (metrics.get("tasks") or {}).items()
        for warning in (values.get("warnings") or [])
    )
    tuning = metrics.get("tuning") or {}
    chosen = tuning.get("chosen") or {}
    row["tuned"] = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in chosen.items()
    )
    row["tuned_at_edge"] = ", ".join(f"{k} ({v})" for k, v in (tuning.get("at_edge") or {}).items())
    row.update(flat_metrics(metrics))
    return row


# ------------------------------------------------------------------------------- sweep plan
# Hydra's basic sweeper expands `hydra.sweeper.params` plus the command-line overrides into a
# cartesian product in a fixed order; job `i` gets the `i`-th combination. Re-running that
# expansion (Hydra's own `split_arguments`) gives the plan without launching anything: the
# count for "job i of N", and the jobs that never left a folder.


def sweep_arguments(hydra_cfg: DictConfig) -> list[str]:
    """Sweeper params (e.g. from `experiment=`) first, then the command line, as Hydra does."""
    params = hydra_cfg.get("sweeper", {}).get("params") or {}
    task = list(hydra_cfg.get("overrides", {}).get("task") or [])
    return [f"{key}={value}" for key, value in params.items()] + [str(o) for o in task]


def planned_overrides(hydra_cfg: DictConfig) -> list[list[str]] | None:
    """The overrides of every planned job, in job-number order; None for sweepers other than
    Hydra's basic one, or sweeps it cannot expand without the config loader (glob choices)."""
    target = str(hydra_cfg.get("sweeper", {}).get("_target_", ""))
    if not target.endswith(BASIC_SWEEPER):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides(sweep_arguments(hydra_cfg))
        batches = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # any parse problem only means "plan unknown"
        return None
    return [list(job) for batch in batches for job in batch]


def planned_from_sweep_dir(sweep_dir: str | Path) -> list[list[str]] | None:
    """The plan recorded in a sweep folder's `multirun.yaml`, or None when there is none."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    if not path.exists():
        return None
    cfg = OmegaConf.load(path)
    return planned_overrides(cfg.hydra) if "hydra" in cfg else None
