"""The sample sheet (one row per sample, labels as columns) and its join with the matrix.

Everything is read as text: sample ids such as '01005' keep their leading zeros, and each
label column is converted by its task, which can then name the offending rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multihead.data.examples import duplicated, examples
from multihead.data.file_formats import open_checked
from multihead.errors import ConfigError, DataError

UNMATCHED_POLICIES = ("error", "intersect")


def read_sample_sheet(
    path: str | Path | None, id_column: str | None, key: str = "data.samples"
) -> tuple[pd.DataFrame, Path]:
    """The sheet indexed by sample id (text), checked for a present, unique id column."""
    resolved, fmt = open_checked(path, key, ("text",))
    try:
        sheet = pd.read_csv(
            resolved, sep=fmt.separator, dtype=str, compression="gzip" if fmt.gzipped else None
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{resolved} ({key}): cannot parse as a sample sheet: {err}") from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    if sheet.empty:
        raise DataError(f"{resolved} ({key}): the sample sheet has no rows")
    column = id_column or sheet.columns[0]
    if column not in sheet.columns:
        raise DataError(
            f"{resolved}: sample-id column {column!r} (data.id_column) not found; "
            f"available columns: {list(sheet.columns)}"
        )
    ids = sheet[column].str.strip()
    if ids.isna().any() or (ids == "").any():
        rows = [int(i) + 2 for i in np.flatnonzero((ids.isna() | (ids == "")).to_numpy())]
        raise DataError(
            f"{resolved}: empty sample ids in column {column!r} at lines {examples(rows)}"
        )
    dups = duplicated(ids.tolist())
    if dups:
        lines = {
            d: [int(i) + 2 for i in np.flatnonzero((ids == d).to_numpy())][:3] for d in dups[:5]
        }
        raise DataError(
            f"{resolved}: {len(dups)} duplicated sample ids in column {column!r}: "
            f"{examples(dups)} (at lines {lines}); each sample needs one row"
        )
    sheet = sheet.drop(columns=[column]).set_axis(pd.Index(ids.tolist(), name=column), axis=0)
    return sheet, resolved


@dataclass
class Alignment:
    """Matrix rows of the samples found in both files, the sheet in that order, and counts."""

    rows: np.ndarray
    samples: pd.DataFrame
    report: dict


def align_samples(
    matrix_ids: list[str], sheet: pd.DataFrame, policy: str, matrix_path: Path, sheet_path: Path
) -> Alignment:
    """Join on the sample id, in matrix order; ids in one file only are an error by default."""
    if policy not in UNMATCHED_POLICIES:
        raise ConfigError(
            f"data.unmatched_samples={policy!r}: choose one of {list(UNMATCHED_POLICIES)}"
        )
    in_sheet = set(sheet.index)
    in_matrix = set(matrix_ids)
    only_sheet = [i for i in sheet.index if i not in in_matrix]
    only_matrix = [i for i in matrix_ids if i not in in_sheet]
    report = {
        "matrix": len(matrix_ids),
        "sheet": len(sheet),
        "only_in_sheet": len(only_sheet),
        "only_in_matrix": len(only_matrix),
    }
    if (only_sheet or only_matrix) and (policy == "error" or len(only_matrix) == len(matrix_ids)):
        parts = []
        if only_sheet:
            parts.append(
                f"{len(only_sheet)} sample ids of {sheet_path} are not in {matrix_path}"
                f": {examples(only_sheet)}"
            )
        if only_matrix:
            parts.append(
                f"{len(only_matrix)} sample ids of {matrix_path} are not in "
                f"{sheet_path}: {examples(only_matrix)}"
            )
        hint = (
            "no id is in both: check data.id_column / data.matrix_index and the orientation"
            if len(only_matrix) == len(matrix_ids)
            else "set data.unmatched_samples=intersect to keep the samples in both"
        )
        raise DataError("; ".join(parts) + f" ({hint})")
    rows = np.array([i for i, s in enumerate(matrix_ids) if s in in_sheet], dtype=np.int64)
    samples = sheet.loc[[matrix_ids[i] for i in rows]]
    report["matched"] = len(rows)
    return Alignment(rows, samples, report)
