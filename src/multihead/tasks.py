"""A task is data, not code: a named label column and its ordered list of classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

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

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_binned(self) -> bool:
        return self.edges is not None

    @property
    def midpoints(self) -> np.ndarray:
        if self.edges is None:
            raise ValueError(f"task {self.name!r} is not binned from a continuous value")
        e = np.asarray(self.edges, dtype=float)
        return (e[:-1] + e[1:]) / 2


@dataclass(frozen=True)
class TaskLayout:
    """Where each task's outputs sit in the concatenated output vector of a head."""

    tasks: tuple[Task, ...]
    sizes: tuple[int, ...]
    slices: tuple[slice, ...] = field(init=False)

    def __post_init__(self) -> None:
        starts = np.cumsum((0,) + self.sizes)
        object.__setattr__(
            self, "slices", tuple(slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
        )

    @property
    def total(self) -> int:
        return int(sum(self.sizes))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]


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
            raise ConfigError(f"{key} needs start, stop and width (got {bins!r}: {err}); "
                              f"or give data.tasks.{name}.edges as a list") from None
        if width <= 0 or stop <= start:
            raise ConfigError(f"{key}: need width > 0 and stop > start, "
                              f"got start={start:g}, stop={stop:g}, width={width:g}")
        edges = [float(e) for e in np.arange(start, stop, width)] + [stop]
        if len(edges) >= 3 and edges[-1] - edges[-2] < 1e-9:
            edges.pop(-2)
    if len(edges) < 3:
        raise ConfigError(f"{key}: need at least 3 edges (2 classes), got {edges}")
    bad = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if not b > a]
    if bad:
        raise ConfigError(f"{key}: edges must be strictly increasing; "
                          f"offending pairs {bad[:3]} in {edges}")
    return tuple(edges)


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Readable class names like '18-22' (left-closed, last bin right-closed)."""
    fmt = [f"{e:g}" for e in edges]
    return tuple(f"{a}-{b}" for a, b in zip(fmt[:-1], fmt[1:]))


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
        if spec.get("bins") is not None or spec.get("edges") is not None:
            edges = bin_edges_from_config(name, spec)
            tasks.append(Task(name, column, bin_labels(edges), edges=edges, ordered=True))
        elif spec.get("classes"):
            classes = tuple(str(c) for c in spec["classes"])
            if len(set(classes)) != len(classes) or len(classes) < 2:
                raise ConfigError(
                    f"data.tasks.{name}.classes must be at least 2 distinct values, got {classes}"
                )
            tasks.append(Task(name, column, classes, ordered=bool(spec.get("ordered", False))))
        else:
            raise ConfigError(f"data.tasks.{name}: give `edges` or `bins` (binned values) "
                              "or `classes` (categories)")
    if not tasks:
        raise ConfigError("data.tasks: every task was removed; at least one task is needed")
    return tuple(tasks)
