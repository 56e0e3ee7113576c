"""A task is data, not code: a named label column and its ordered list of classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from multihead.codings import CODINGS, normalise
from multihead.errors import ConfigError


@dataclass(frozen=True)
class Task:
    """One prediction target.

    `edges` is set for tasks binned from a continuous value (age in years); their classes are
    ordered and `midpoints` turns a class back into years for error-in-years metrics.
    """

    name: str
    column: str
    classes: tuple[str, ...]
    edges: tuple[float, ...] | None = None
    ordered: bool = False
    #: raw value (normalised: case and spaces ignored) -> class name, applied before matching
    codes: tuple[tuple[str, str], ...] = ()
    #: `bins: quantile:N`: edges are fitted to the data's values by `with_edges` before use
    quantiles: int | None = None
    #: binned tasks: the unit of the raw values (converted to years, see UNITS)
    unit: str = "years"
    #: binned tasks: plausible values in years (after conversion); None = no check
    valid_range: tuple[float, float] | None = None
    #: binned tasks: raw values that mean "missing" (e.g. -9, 999), compared before conversion
    missing_codes: tuple[float, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_binned(self) -> bool:
        return self.edges is not None

    @property
    def needs_edges(self) -> bool:
        """A quantile-binned task whose edges (and so classes) come from the data."""
        return self.quantiles is not None and self.edges is None

    def with_edges(self, edges: Sequence[float]) -> Task:
        """The same task with fitted bin edges (quantile bins, once the values are known)."""
        edges = tuple(float(e) for e in edges)
        return Task(
            self.name,
            self.column,
            bin_labels(edges),
            edges=edges,
            ordered=True,
            codes=self.codes,
            quantiles=self.quantiles,
            unit=self.unit,
            valid_range=self.valid_range,
            missing_codes=self.missing_codes,
        )

    def to_years(self, raw: np.ndarray) -> np.ndarray:
        """Raw values -> years: missing codes become NaN, then the unit is converted."""
        x = np.array(raw, dtype=float)
        if self.missing_codes:
            x[np.isin(x, self.missing_codes)] = np.nan
        return x / UNITS[self.unit] if self.unit != "years" else x

    def to_dict(self) -> dict:
        """Plain types only: saved in checkpoints that load with `weights_only=True`."""
        return {
            "name": self.name,
            "column": self.column,
            "classes": list(self.classes),
            "edges": None if self.edges is None else list(self.edges),
            "ordered": self.ordered,
            "codes": [list(c) for c in self.codes],
            "quantiles": self.quantiles,
            "unit": self.unit,
            "valid_range": None if self.valid_range is None else list(self.valid_range),
            "missing_codes": list(self.missing_codes),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Task:
        edges, valid = d.get("edges"), d.get("valid_range")
        return cls(
            d["name"],
            d["column"],
            tuple(d["classes"]),
            edges=None if edges is None else tuple(edges),
            ordered=bool(d["ordered"]),
            codes=tuple((str(a), str(b)) for a, b in d.get("codes", ())),
            quantiles=d.get("quantiles"),
            unit=d.get("unit", "years"),
            valid_range=None if valid is None else (float(valid[0]), float(valid[1])),
            missing_codes=tuple(float(v) for v in d.get("missing_codes", ())),
        )

    @property
    def midpoints(self) -> np.ndarray:
        if self.edges is None:
            raise ValueError(f"task {self.name!r} is not binned from a continuous value")
        e = np.asarray(self.edges, dtype=float)
        return (e[:-1] + e[1:]) / 2

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The class of each value (left-closed bins; below or above the range: the first or
        last bin)."""
        if self.edges is None:
            raise ValueError(f"task {self.name!r} is not binned from a continuous value")
        edges = np.asarray(self.edges, dtype=float)
        index = np.searchsorted(edges, np.asarray(values, dtype=float), side="right") - 1
        return np.clip(index, 0, len(edges) - 2)


@dataclass(frozen=True)
class TaskLayout:
    """Where each task's outputs sit in the concatenated output vector of a head."""

    tasks: tuple[Task, ...]
    sizes: tuple[int, ...]
    slices: tuple[slice, ...] = field(init=False)

    def __post_init__(self) -> None:
        starts = np.cumsum((0,) + self.sizes)
        object.__setattr__(
            self,
            "slices",
            tuple(slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)),
        )

    @property
    def total(self) -> int:
        return int(sum(self.sizes))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]


QUANTILE_PREFIX = "quantile:"
#: `data.tasks.NAME.unit` of a binned task's raw values -> how many make a year; TCGA's
#: `days_to_birth` counts days back from diagnosis, so it is negative
UNITS = {"years": 1.0, "months": 12.0, "days": 365.25, "days_to_birth": -365.25}


def value_checks_from_config(name: str, spec: Mapping) -> dict:
    """`unit`, `valid_range` and `missing_codes` of a binned task, checked."""
    unit = str(spec.get("unit") or "years")
    if unit not in UNITS:
        raise ConfigError(f"data.tasks.{name}.unit={unit!r}: choose one of {list(UNITS)}")
    valid = spec.get("valid_range")
    key = f"data.tasks.{name}.valid_range"
    if valid is not None:
        try:
            low, high = (float(v) for v in valid)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{key} must be [low, high] in years or null, got {valid!r}"
            ) from None
        if not low < high:
            raise ConfigError(f"{key}=[{low:g}, {high:g}]: need low < high")
        valid = (low, high)
    codes = spec.get("missing_codes") or ()
    try:
        codes = tuple(float(c) for c in codes)
    except (TypeError, ValueError):
        raise ConfigError(
            f"data.tasks.{name}.missing_codes must be a list of numbers, e.g. [-9, 999], "
            f"got {codes!r}"
        ) from None
    return {"unit": unit, "valid_range": valid, "missing_codes": codes}


def quantile_count(name: str, bins: object) -> int | None:
    """`bins: quantile:N` -> N (classes with about equal counts); None for other bin specs."""
    if not isinstance(bins, str):
        return None
    key = f"data.tasks.{name}.bins"
    text = bins.strip().lower()
    if not text.startswith(QUANTILE_PREFIX):
        raise ConfigError(f"{key}={bins!r}: expected quantile:N or {{start, stop, width}}")
    try:
        count = int(text[len(QUANTILE_PREFIX) :])
    except ValueError:
        raise ConfigError(f"{key}={bins!r}: N in quantile:N must be an integer") from None
    if count < 2:
        raise ConfigError(f"{key}={bins!r}: need at least 2 quantile classes")
    return count


def check_edges(edges: Sequence[float], key: str) -> tuple[float, ...]:
    """At least 2 classes and strictly increasing, or a ConfigError naming `key`."""
    edges = [float(e) for e in edges]
    if len(edges) < 3:
        raise ConfigError(f"{key}: need at least 3 edges (2 classes), got {edges}")
    bad = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if not b > a]
    if bad:
        raise ConfigError(
            f"{key}: edges must be strictly increasing; offending pairs {bad[:3]} in {edges}"
        )
    return tuple(edges)


def bin_edges_from_config(name: str, spec: Mapping) -> tuple[float, ...]:
    """Explicit `edges`, else `bins: {start, stop, width}`; refuse anything not increasing."""
    if spec.get("edges") is not None:
        edges = [float(e) for e in spec["edges"]]
        key = f"data.tasks.{name}.edges"
    else:
        bins, key = spec["bins"], f"data.tasks.{name}.bins"
        try:
            start, stop, width = float(bins["start"]), float(bins["stop"]), float(bins["width"])
        except (KeyError, TypeError) as err:
            raise ConfigError(
                f"{key} needs start, stop and width (got {bins!r}: {err}); "
                f"or give data.tasks.{name}.edges as a list"
            ) from None
        if width <= 0 or stop <= start:
            raise ConfigError(
                f"{key}: need width > 0 and stop > start, "
                f"got start={start:g}, stop={stop:g}, width={width:g}"
            )
        edges = [float(e) for e in np.arange(start, stop, width)] + [stop]
        if len(edges) >= 3 and edges[-1] - edges[-2] < 1e-9:
            edges.pop(-2)
    return check_edges(edges, key)


def _builtin_for(name: str, classes: Sequence[str]) -> dict[str, str | None]:
    """The built-in coding that user codes extend: the one named like the task, else one
    whose classes are exactly the task's (e.g. a `gender` task with female/male)."""
    if name in CODINGS:
        table = CODINGS[name]
    else:
        table = next(
            (
                t
                for t in CODINGS.values()
                if {v for v in t.values() if v is not None} == set(classes)
            ),
            {},
        )
    return {normalise(k): v for k, v in table.items() if v is None or v in classes}


def codes_from_config(
    name: str, spec: Mapping, classes: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """`codes`: a built-in table's name (e.g. `sex`) or a {raw: class} mapping, checked."""
    raw = spec.get("codes")
    key = f"data.tasks.{name}.codes"
    if raw is None:
        return ()
    if isinstance(raw, str):
        if raw not in CODINGS:
            raise ConfigError(
                f"{key}={raw!r} is unknown; built-in codings: {sorted(CODINGS)}, "
                "or give a mapping {raw value: class}"
            )
        pairs = CODINGS[raw]
    elif isinstance(raw, Mapping):
        own = {
            normalise(k): (None if v is None or str(v) == "" else str(v)) for k, v in raw.items()
        }
        pairs = {**_builtin_for(name, classes), **own}  # the user's codes win; None: missing
    else:
        raise ConfigError(f"{key} must be a coding name or a mapping, got {raw!r}")
    targets = {v for v in pairs.values() if v is not None}
    if isinstance(raw, Mapping):
        targets = {v for v in own.values() if v is not None}
    unknown = sorted(targets - set(classes))
    if unknown and isinstance(raw, str):
        # a built-in table maps onto its own class names; only those the task uses are kept
        pairs = {k: v for k, v in pairs.items() if v is None or v in classes}
    elif unknown:
        raise ConfigError(
            f"{key} maps to {unknown}, which are not among the classes "
            f"{list(classes)} of data.tasks.{name}.classes"
        )
    return tuple((normalise(k), "" if v is None else v) for k, v in pairs.items())


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Readable class names like '18-22' (left-closed, last bin right-closed)."""
    fmt = [f"{e:g}" for e in edges]
    return tuple(f"{a}-{b}" for a, b in zip(fmt[:-1], fmt[1:], strict=True))


def tasks_from_config(specs: Mapping[str, Mapping]) -> tuple[Task, ...]:
    """Build tasks from `data.tasks` (name -> {column, bins | classes}), in config order.

    A mapping rather than a list so one more task is a single command-line override:
    `+data.tasks.batch={column: batch, classes: [batch1, batch2, batch3]}`.
    """
    if not specs:
        raise ConfigError("data.tasks is empty: at least one task is needed")
    tasks: list[Task] = []
    for name, spec in specs.items():
        if spec is None:
            continue  # `~data.tasks.sex` or `data.tasks.sex=null` removes a task
        column = spec.get("column") or name
        quantiles = quantile_count(name, spec.get("bins")) if spec.get("edges") is None else None
        if quantiles is not None:
            checks = value_checks_from_config(name, spec)
            tasks.append(Task(name, column, (), ordered=True, quantiles=quantiles, **checks))
        elif spec.get("bins") is not None or spec.get("edges") is not None:
            edges = bin_edges_from_config(name, spec)
            checks = value_checks_from_config(name, spec)
            tasks.append(Task(name, column, bin_labels(edges), edges=edges, ordered=True, **checks))
        elif spec.get("classes"):
            classes = tuple(str(c) for c in spec["classes"])
            if len(set(classes)) != len(classes) or len(classes) < 2:
                raise ConfigError(
                    f"data.tasks.{name}.classes must be at least 2 distinct values, got {classes}"
                )
            tasks.append(
                Task(
                    name,
                    column,
                    classes,
                    ordered=bool(spec.get("ordered", False)),
                    codes=codes_from_config(name, spec, classes),
                )
            )
        else:
            raise ConfigError(
                f"data.tasks.{name}: give `edges` or `bins` (binned values) "
                "or `classes` (categories)"
            )
    if not tasks:
        raise ConfigError("data.tasks: every task was removed; at least one task is needed")
    return tuple(tasks)
