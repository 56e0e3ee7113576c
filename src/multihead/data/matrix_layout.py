"""How a matrix file is laid out (orientation, dialect) and how its rows and columns are
named in messages; the checks on those names shared by the text and Parquet readers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multihead.data.dialect import TextDialect
from multihead.data.examples import duplicated, examples
from multihead.data.matrix import FLOAT32_MAX, beyond_float32
from multihead.errors import DataError


@dataclass(frozen=True)
class Layout:
    """Which way the file is written, and how its rows and columns are named in messages."""

    path: Path
    key: str
    orientation: str
    dialect: TextDialect | None = None

    @property
    def by_sample(self) -> bool:
        return self.orientation == "samples_x_features"

    @property
    def row_kind(self) -> str:
        return "sample ids" if self.by_sample else "feature names"

    @property
    def column_kind(self) -> str:
        return "feature names" if self.by_sample else "sample ids"

    def cell(self, row: str, column: str, value: object) -> str:
        sample, feature = (row, column) if self.by_sample else (column, row)
        return f"sample {sample!r} / feature {feature!r} = {value!r}"

    def where(self) -> str:
        """The file and key, with the dialect it was read in (for parse errors)."""
        read_as = f"; read as {self.dialect.describe()}" if self.dialect else ""
        return f"{self.path} ({self.key}{read_as})"

    def check_stored(
        self,
        values: np.ndarray,
        start: int,
        ids: list[str],
        columns: list[str],
        column64: Callable[[int], np.ndarray],
    ) -> None:
        """After a block of rows is stored as float32, one pass for inf: a column holding one
        is read again as float64 (`column64`) to tell a literal inf (the missing-value
        policy's business) from a finite value beyond float32 (refused here)."""
        stored = (
            values[start : start + len(ids)]
            if self.by_sample
            else values[:, start : start + len(ids)].T
        )
        for j in np.flatnonzero(np.isinf(stored).any(axis=0)):
            self.check_range(column64(int(j))[:, None], ids, [columns[j]])

    def check_range(self, block: np.ndarray, rows: list[str], columns: list[str]) -> None:
        """Finite values beyond float32 would silently become inf: refuse them, named."""
        bad = beyond_float32(block)
        if not bad.any():
            return
        cells = [
            self.cell(rows[r], columns[c], float(block[r, c])) for r, c in np.argwhere(bad)[:5]
        ]
        raise DataError(
            f"{self.path} ({self.key}): {int(bad.sum())} values beyond the float32 range "
            f"(+-{FLOAT32_MAX:.3g}) the model computes in: {examples(cells)}; rescale them "
            "(e.g. log-transform or change the unit) before training"
        )


def check_names(layout: Layout, rows: list[str], columns: list[str]) -> None:
    for kind, names, where in (
        (layout.row_kind, rows, "rows"),
        (layout.column_kind, columns, "header"),
    ):
        empty = [i for i, n in enumerate(names) if n == ""]
        if empty:
            raise DataError(
                f"{layout.path} ({layout.key}): empty {kind[:-1]} in the {where} at "
                f"positions {examples(empty)}"
            )
        dups = duplicated(names)
        if dups:
            positions = {d: [i for i, n in enumerate(names) if n == d][:3] for d in dups[:5]}
            raise DataError(
                f"{layout.path} ({layout.key}): {len(dups)} duplicated {kind} in the {where}: "
                f"{examples(dups)} (positions {positions}); make them unique"
            )


def index_position(layout: Layout, header: list[str], index_column: str | None) -> int:
    if index_column is None:
        return 0
    if index_column not in header:
        raise DataError(
            f"{layout.path}: column {index_column!r} (data.matrix_index) not found; "
            f"first columns: {header[:10]}"
        )
    return header.index(index_column)


def empty_matrix(layout: Layout, what: str) -> DataError:
    return DataError(f"{layout.path} ({layout.key}): empty matrix: {what}")


def put(
    values: np.ndarray, start: int, block_rows: int, j: int, column: np.ndarray, by_sample: bool
) -> None:
    """One column of a block into the float32 matrix; a value beyond float32 becomes inf
    here and is named by `Layout.check_stored`."""
    with np.errstate(over="ignore"):
        if by_sample:
            values[start : start + block_rows, j] = column
        else:
            values[j, start : start + block_rows] = column
