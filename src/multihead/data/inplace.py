"""Select rows or rewrite columns of a large dense matrix inside its own buffer.

`array[rows]` or `array[:, keep]` would allocate a second matrix; for a cohort of several GB
that doubles peak memory. Writing each chunk's result at or before the place it was read
from never overwrites data still to be read, so one buffer suffices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def chunk_rows(n_columns: int, budget_bytes: int = 32 << 20, itemsize: int = 4) -> int:
    """Rows per chunk so one chunk stays around `budget_bytes`."""
    return max(1, budget_bytes // max(1, n_columns * itemsize))


def keep_rows_inplace(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`array[rows]` for increasing `rows`, as a view of the first len(rows) rows of `array`."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be strictly increasing")
    if len(rows) == len(array):
        return array
    step = chunk_rows(array.shape[1], itemsize=array.itemsize)
    for start in range(0, len(rows), step):
        block = array[rows[start : start + step]]  # a copy: safe to write back over the source
        array[start : start + len(block)] = block
    return array[: len(rows)]


def map_rows_inplace(
    array: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], width: int
) -> np.ndarray:
    """Replace each row chunk by `fn(chunk)` (`width` <= columns), packed in the same buffer.

    `fn` may work in place on the chunk and return it (same width) or return a new array.
    """
    if not array.flags.c_contiguous:
        raise ValueError("map_rows_inplace needs a C-contiguous array")
    n, p = array.shape
    if width > p:
        raise ValueError(f"width {width} exceeds the {p} columns")
    flat = array.reshape(-1)
    step = chunk_rows(p, itemsize=array.itemsize)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = array[start:stop]
        out = fn(block)
        if out is not block:
            flat[start * width : stop * width] = out.reshape(-1)
    return flat[: n * width].reshape(n, width)
