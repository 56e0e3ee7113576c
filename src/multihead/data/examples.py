"""A few offending items for an error message: enough to find them, never the whole list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


def examples(values: Iterable, limit: int = 5) -> str:
    """'a', 'b', 'c', ... (12 in all)."""
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def duplicated(names: Sequence) -> list:
    """Values that occur more than once, in order of first appearance."""
    counts = Counter(names)
    seen: dict = {}
    for name in names:
        if counts[name] > 1:
            seen.setdefault(name, None)
    return list(seen)
