"""Read a sweep back from its folders: one row per job, finished, failed or missing.

This is the public API the report and the notebook share: `load_run(job_dir)` and
`load_runs(sweep_dir)`. Nothing is re-trained and nothing touches the network; a job is
whatever its files say. A job is a *variant* (head x loss x weighting, plus any other
override that differs between jobs) at one training *seed*: seeds are the replicates that
the comparisons pair on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from multihead.reporting.sweep_plan import planned_from_sweep_dir

METRICS_FILE = "metrics.json"
FAILED_FILE = "failed.json"
CONFIG_FILE = "config.yaml"
HYDRA_DIR = ".hydra"
OK, FAILED, MISSING = "ok", "failed", "missing"
DEFAULT_WEIGHTING = "fixed"  # runs from before weighting existed used fixed task weights
VARIANT_KEYS = ("head", "loss", "weighting")
# overrides that never define a variant: the replicate itself, and where results are logged
NOT_VARIANT_KEYS = ("seed", "logger", "hydra", "paths", "callbacks.progress")
JOB_NUMBER = re.compile(r"^(\d+)_")


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


def job_overrides(job_dir: Path) -> list[str]:
    """The overrides Hydra recorded for this job (written before the job ran)."""
    path = job_dir / HYDRA_DIR / "overrides.yaml"
    if not path.exists():
        return []
    return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path)) or []]


def _job_config(job_dir: Path) -> dict:
    """The resolved config the job saved, else Hydra's composed copy (failed before saving)."""
    for path in (job_dir / CONFIG_FILE, job_dir / HYDRA_DIR / CONFIG_FILE):
        if path.exists():
            try:
                return OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
            except Exception:  # a half-written file says nothing; fall through
                continue
    return {}


def _description(metrics: Mapping, config: Mapping, overrides: list[str]) -> dict[str, Any]:
    """head, loss, weighting, seed, data: from metrics.json, else the config, else overrides."""
    given = _pairs(o for o in overrides if not o.startswith("~"))
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
    return out


def _flat_metrics(metrics: Mapping) -> dict[str, float]:
    """`tasks.age.balanced_accuracy` -> column `age/balanced_accuracy`; joint accuracy as is."""
    out = {
        f"{task}/{name}": _number(value)
        for task, values in (metrics.get("tasks") or {}).items()
        for name, value in values.items()
        if name != "n"
    }
    if "joint_accuracy" in metrics:
        out["joint_accuracy"] = _number(metrics["joint_accuracy"])
    return out


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def load_run(job_dir: str | Path) -> dict[str, Any]:
    """One job as a flat dict: status, error (first line), head/loss/weighting/seed/data,
    every test metric as `task/metric`, run facts (epochs, seconds) and the job's path."""
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
    metrics_file, failed_file = job_dir / METRICS_FILE, job_dir / FAILED_FILE
    metrics: dict = {}
    if failed_file.exists():
        try:
            error = json.loads(failed_file.read_text()).get("error", "")
        except json.JSONDecodeError:
            error = failed_file.read_text()
        row.update(status=FAILED, error=_first_line(error) or "failed (no message)")
    elif metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        row.update(status=OK, error="")
    else:
        row.update(status=FAILED, error="no metrics.json: the job did not finish")
    row.update(_description(metrics, _job_config(job_dir), overrides))
    for key in ("epochs_trained", "seconds", "num_parameters", "n_test"):
        row[key] = metrics.get(key)
    row.update(_flat_metrics(metrics))
    return row


def _missing_rows(planned: list[list[str]], found: Iterable[int]) -> list[dict[str, Any]]:
    """Planned jobs with no folder at all (a killed sweep, a deleted folder)."""
    seen = set(found)
    rows = []
    for num, overrides in enumerate(planned):
        if num in seen:
            continue
        row = {
            "job": f"{num} (no folder)",
            "num": num,
            "path": None,
            "overrides": " ".join(overrides),
            "override_list": list(overrides),
            "status": MISSING,
            "error": "planned by the sweep but no job folder exists",
        }
        row.update(_description({}, {}, overrides))
        rows.append(row)
    return rows


def is_job_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in (METRICS_FILE, FAILED_FILE, CONFIG_FILE, HYDRA_DIR)
    )


def _pairs(overrides: Iterable[str]) -> dict[str, str]:
    return dict(o.split("=", 1) for o in overrides if "=" in o)


def _varying_keys(override_lists: list[list[str]]) -> list[str]:
    """Override keys whose value differs between jobs, other than head/loss/weighting/seed
    and logging choices."""
    values: dict[str, set[str]] = {}
    for overrides in override_lists:
        pairs = _pairs(overrides)
        for key in set(values) | set(pairs):
            values.setdefault(key, set()).add(pairs.get(key, "<default>"))
    return sorted(
        k
        for k, v in values.items()
        if len(v) > 1 and k not in VARIANT_KEYS and not k.lstrip("+~").startswith(NOT_VARIANT_KEYS)
    )


def variant_label(head: Any, loss: Any, weighting: Any, extra: str = "") -> str:
    """`fused+bce`, `split+ce+uncertainty` (weighting shown unless fixed), then any extra."""
    parts = [str(p) if isinstance(p, str) and p else "?" for p in (head, loss)]
    if weighting and weighting != DEFAULT_WEIGHTING:
        parts.append(str(weighting))
    return "+".join(parts) + (f" [{extra}]" if extra else "")


def add_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """`variant` column: the label shared by every seed of one configuration."""
    keys = _varying_keys(list(frame["override_list"]))

    def extra(overrides: list[str]) -> str:
        pairs = _pairs(overrides)
        return ",".join(f"{k}={pairs.get(k, '<default>')}" for k in keys)

    frame["variant"] = [
        variant_label(r.head, r.loss, r.weighting, extra(r.override_list))
        for r in frame.itertuples()
    ]
    return frame


def load_runs(sweep_dir: str | Path) -> pd.DataFrame:
    """Every job of a sweep folder, one row each, plus a row per planned job that never got a
    folder; ordered by job number. Columns as in `load_run`, plus `variant`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no sweep folder at {sweep_dir}")
    rows = [load_run(p) for p in sorted(sweep_dir.iterdir()) if is_job_dir(p)]
    planned = planned_from_sweep_dir(sweep_dir)
    if planned is not None:
        rows += _missing_rows(planned, (r["num"] for r in rows if r["num"] is not None))
    if not rows:
        raise FileNotFoundError(f"{sweep_dir} holds no job folders (is it a sweep folder?)")
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("num", key=lambda s: s.fillna(1e9), kind="stable")
    return add_variants(frame.reset_index(drop=True))


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Only the jobs that finished."""
    return runs[runs["status"] == OK]


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Every `task/metric` column present, plus joint accuracy."""
    return [c for c in runs.columns if "/" in c or c == "joint_accuracy"]


def task_names(runs: pd.DataFrame) -> list[str]:
    """Tasks in the order the jobs wrote them."""
    seen: dict[str, None] = {}
    for column in runs.columns:
        if "/" in column:
            seen.setdefault(column.split("/", 1)[0], None)
    return list(seen)
