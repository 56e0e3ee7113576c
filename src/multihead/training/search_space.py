"""The tuning search space (`tune.space` in conf/tune/*.yaml), checked before any data is read.

Each entry names a config key and a distribution:

    lr: {key: model.optimizer.lr, type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    top_k: {key: model.top_k, type: categorical, choices: [128, 512, null]}
    lr_mlp_only: {..., models: [mlp, auto]}   # only for these model names
    fused_only: {..., heads: [fused]}          # only for these head names
    head_decay: {key: model.head_decay, per_task: true, type: float, low: 1.0e-4, high: 1.0}

`tune.metric: auto` scores trials by `val/capped_loss`, or by the plain sum `val/loss` where
nothing is fitted jointly (see `resolve_metric`).

`per_task: true` tunes one value per task, `KEY.TASK` (named `NAME.TASK`), for a key that maps
tasks to values (`model.head_decay`); it is skipped for a head that keeps all tasks in one
matrix (`fused`).

A key under `model.` that the chosen model does not have (`model.trunk.width` for
`model=linear`) is skipped for that model, so every variant of a sweep can share one space;
any other unknown key, a bad range, or a value the model would refuse is a ConfigError.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from multihead.components import component_class
from multihead.errors import ConfigError
from multihead.models.trunk import AUTO, trunk_class
from multihead.tasks import tasks_from_config
from multihead.training.module import CAPPED_LOSS

TYPES = ("float", "int", "categorical")
DIRECTIONS = ("minimize", "maximize")
# what `tune.metric: auto` picks: the summed task losses, plain or capped (as logged)
PLAIN_LOSS, CAPPED_SUM = "val/loss", f"val/{CAPPED_LOSS}"
PARAM_KEYS = ("key", "type", "low", "high", "log", "step", "choices", "models", "heads", "per_task")
#: a chosen number this close to an end of its range (a fraction of the range, on the log
#: scale where sampled so) is reported as at the edge: the best may lie beyond it
EDGE_FRACTION = 0.05
LOW_EDGE, HIGH_EDGE = "low", "high"
_ABSENT = object()


@dataclass(frozen=True)
class Param:
    name: str
    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None
    models: tuple[str, ...] | None = None
    heads: tuple[str, ...] | None = None
    per_task: bool = False  # one value per task: `key` maps tasks to values

    def boundary_values(self) -> list:
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def edge(self, value: Any) -> str | None:
        """`low` or `high` when `value` lies at that end of the range (within `EDGE_FRACTION`),
        else None. Categorical choices count when they are numbers: the smallest is the low
        end, the largest the high end unless null (all) is a choice too."""
        if self.type == "categorical":
            numbers = [
                c for c in self.choices if isinstance(c, int | float) and not isinstance(c, bool)
            ]
            if len(numbers) < 2 or value not in numbers:
                return None
            if value == min(numbers):
                return LOW_EDGE
            return HIGH_EDGE if value == max(numbers) and None not in self.choices else None
        scale = math.log if self.log else float
        position = (scale(value) - scale(self.low)) / (scale(self.high) - scale(self.low))
        if position <= EDGE_FRACTION:
            return LOW_EDGE
        return HIGH_EDGE if position >= 1 - EDGE_FRACTION else None

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial draws for this parameter."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def parse_param(name: str, spec: Any) -> Param:
    where = f"tune.space.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping with key, type and a range, got {spec!r}")
    unknown = sorted(set(spec) - set(PARAM_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {list(PARAM_KEYS)}")
    key, kind = spec.get("key"), spec.get("type", "float")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}.key must name a config key, e.g. model.optimizer.lr")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type must be one of {list(TYPES)}, got {kind!r}")
    models, heads = (spec.get(k) for k in ("models", "heads"))
    models = None if models is None else tuple(str(m) for m in models)
    heads = None if heads is None else tuple(str(h) for h in heads)
    per_task = spec.get("per_task", False)
    if not isinstance(per_task, bool):
        raise ConfigError(f"{where}.per_task must be true or false, got {per_task!r}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ConfigError(f"{where}: type categorical needs a non-empty list `choices`")
        return Param(
            name, key, kind, choices=tuple(choices), models=models, heads=heads, per_task=per_task
        )
    low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not math.isfinite(low) or not math.isfinite(high) or low >= high:
        raise ConfigError(f"{where}: needs numbers low < high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: log: true needs low > 0, got {low!r}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: type int needs integer bounds, got {low!r}..{high!r}")
    step = spec.get("step")
    if step is not None and (log or not isinstance(step, int | float) or step <= 0):
        raise ConfigError(f"{where}.step must be a number > 0 and cannot be used with log")
    return Param(
        name,
        key,
        kind,
        float(low),
        float(high),
        log,
        step,
        models=models,
        heads=heads,
        per_task=per_task,
    )


def tasks_fitted_apart(cfg: DictConfig) -> bool:
    """Whether every task is its own model: a trunk without weights (`model=linear`) under a
    head with parameters per task (`split`, `towers`, `separate`)."""
    head = component_class("head", cfg.head)
    return not trunk_class(cfg.model.trunk).learned and head.owns_task_parameters


def resolve_metric(cfg: DictConfig) -> str:
    """`tune.metric`, with `auto` resolved. The capped sum (`val/capped_loss`) keeps a task
    the model cannot predict from vetoing the values that let another task learn, when the
    tasks share what is tuned (a trunk, its width, its decay). Where every task is its own
    model with its own penalty (`tasks_fitted_apart`), no task can veto another, and the cap
    would hide how far an unpredictable head overfits: all its penalties look alike above the
    cap, so tuning drew the age penalty at random (ALL, split 2: age MAE 22.99 y against the
    reference's 10.98 y); the plain sum ranks each task's penalty by its own loss."""
    metric = str(cfg.tune.metric)
    if metric != AUTO:
        return metric
    return PLAIN_LOSS if tasks_fitted_apart(cfg) else CAPPED_SUM


def applies(param: Param, cfg: DictConfig) -> bool:
    """Whether the chosen model and head take this parameter (see the module docstring)."""
    if param.models is not None and str(cfg.model.get("name")) not in param.models:
        return False
    if param.heads is not None and str(cfg.head.get("name")) not in param.heads:
        return False
    if param.per_task and not component_class("head", cfg.head).owns_task_parameters:
        return False
    return OmegaConf.select(cfg, param.key, default=_ABSENT) is not _ABSENT


def per_task_params(param: Param, cfg: DictConfig) -> list[Param]:
    """A `per_task` parameter as one parameter per task of this config (itself otherwise)."""
    if not param.per_task:
        return [param]
    return [
        replace(param, name=f"{param.name}.{task.name}", key=f"{param.key}.{task.name}")
        for task in tasks_from_config(cfg.data.tasks)
    ]


def parse_space(cfg: DictConfig) -> tuple[list[Param], list[Param]]:
    """(parameters tuned for this config's model, parameters skipped for it)."""
    space = OmegaConf.to_container(cfg.tune.get("space") or {}, resolve=True)
    if not isinstance(space, dict) or not space:
        raise ConfigError("tune.space is empty: name at least one parameter to tune")
    params = [parse_param(name, spec) for name, spec in space.items()]
    used, skipped = [], []
    for param in params:
        if applies(param, cfg):
            used.extend(per_task_params(param, cfg))
        elif param.key.startswith("model.") or param.models or param.heads or param.per_task:
            skipped.append(param)
        else:
            raise ConfigError(
                f"tune.space.{param.name}.key={param.key!r} is not a key of this config"
            )
    if not used:
        raise ConfigError(
            f"tune.space: no parameter applies to model={cfg.model.get('name')} "
            f"(skipped: {[p.name for p in skipped]})"
        )
    return used, skipped


def with_values(cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """A copy of `cfg` with config key -> value set."""
    out = copy.deepcopy(cfg)
    with open_dict(out):
        for key, value in values.items():
            OmegaConf.update(out, key, value, merge=False)
    return out


def _is_integer_from(value: Any, lowest: int) -> bool:
    """An int (not a bool) >= lowest."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def check_tuning(cfg: DictConfig, check: Callable[[DictConfig], None]) -> None:
    """ConfigError for a bad `tune` section or a range the model would refuse: `check` (the
    model's own validation) runs on the config with every boundary value of every parameter."""
    tune = cfg.get("tune") or {}
    if tune.get("name", "none") == "none":
        return
    trials = tune.get("trials")
    if not _is_integer_from(trials, 1):
        raise ConfigError(f"tune.trials must be an integer >= 1, got {trials!r}")
    seed = tune.get("seed")
    if not _is_integer_from(seed, 0):
        raise ConfigError(f"tune.seed must be an integer >= 0, got {seed!r}")
    folds = tune.get("folds", 1)
    if folds != AUTO and not _is_integer_from(folds, 1):
        raise ConfigError(
            f"tune.folds must be auto or an integer >= 1 (1: the job's validation split), "
            f"got {folds!r}"
        )
    if tune.get("direction") not in DIRECTIONS:
        raise ConfigError(
            f"tune.direction must be one of {list(DIRECTIONS)}, got {tune.get('direction')!r}"
        )
    metric = tune.get("metric")
    if not isinstance(metric, str) or not (metric == AUTO or metric.startswith("val/")):
        raise ConfigError(
            f"tune.metric must be auto or a validation value such as val/loss, got {metric!r} "
            "(tuning never looks at the test split)"
        )
    if metric == AUTO and tune.get("direction") != "minimize":
        raise ConfigError("tune.metric=auto picks a loss: it needs tune.direction=minimize")
    used, _ = parse_space(cfg)
    for param in used:
        for value in param.boundary_values():
            try:
                check(with_values(cfg, {param.key: value}))
            except ConfigError as err:
                raise ConfigError(
                    f"tune.space.{param.name}: the value {value!r} for {param.key} is "
                    f"invalid: {err}"
                ) from None
