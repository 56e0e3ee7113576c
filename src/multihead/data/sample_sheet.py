"""The sample sheet (one row per sample, labels as columns) and its join with the matrix.

Everything is read as text: sample ids such as '01005' keep their leading zeros, and each
label column is converted by its task, which can then name the offending rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multihead.data.dialect import TextDialect, detect_dialect
from multihead.data.examples import duplicated, examples
from multihead.data.file_formats import FileFormat, open_checked, read_blocks
from multihead.errors import ConfigError, DataError

UNMATCHED_POLICIES = ("error", "intersect")


#: the id column's name when R's write.table left the header without a row-name cell
ROW_NAMES = "(row names)"
_WHOLE_NUMBER = re.compile(r"\s*[+-]?\d+([eE][+-]?\d+)?\s*")
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*$")


def _parse(
    resolved: Path, fmt: FileFormat, key: str, dialect: TextDialect, width: int
) -> pd.DataFrame:
    """Every cell as text, columns by position (names may repeat; the caller sets them)."""
    for _ in read_blocks(resolved, fmt, key):  # a truncated .gz, named, before pandas sees it
        pass
    try:
        sheet = pd.read_csv(
            resolved,
            sep=dialect.delimiter,
            dtype=str,
            header=None,
            names=[f"c{i}" for i in range(width)],
            skiprows=dialect.skip_lines + 1,
            encoding="utf-8-sig",
            lineterminator="\r" if dialect.line_end == "\r" else None,
            index_col=False,
            compression="gzip" if fmt.gzipped else None,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(
            f"{resolved} ({key}; read as {dialect.describe()}): cannot parse as a sample "
            f"sheet: {err}; if the dialect is wrong, set data.delimiter"
        ) from None
    return sheet


def _header(resolved: Path, fmt: FileFormat, dialect: TextDialect) -> list[str]:
    with fmt.open_text(resolved) as handle:
        for _ in range(dialect.skip_lines):
            handle.readline()
        header = [h.strip() for h in next(csv.reader(handle, delimiter=dialect.delimiter), [])]
    return [ROW_NAMES, *header] if dialect.header_lacks_id else header


def _check_duplicated(sheet: pd.DataFrame, header: list[str], used: set[str], where: str) -> None:
    """Two columns with one name (pandas would silently rename the second): an error when a
    task or the id reads that name, naming both positions and how often they disagree."""
    for name in duplicated(header):
        if name not in used:
            continue
        positions = [i for i, h in enumerate(header) if h == name]
        first, second = (sheet.iloc[:, p] for p in positions[:2])
        differ = (first.fillna("") != second.fillna("")).to_numpy()
        raise DataError(
            f"{where}: {len(positions)} columns are named {name!r} (columns "
            f"{', '.join(str(p + 1) for p in positions)}); they disagree in {int(differ.sum())} "
            f"of {len(sheet)} rows; delete or rename all but one"
        )


def _decimal_commas(sheet: pd.DataFrame) -> pd.DataFrame:
    """`34,5` -> `34.5` in columns whose numbers are all written with a decimal comma."""
    for column in sheet.columns:
        values = sheet[column].dropna()
        if len(values) and values.str.match(_DECIMAL_COMMA).any():
            numeric = values.str.match(_DECIMAL_COMMA) | values.str.fullmatch(_WHOLE_NUMBER)
            if numeric.all():
                sheet[column] = sheet[column].str.replace(",", ".", regex=False)
    return sheet


def read_sample_sheet(
    path: str | Path | None,
    id_column: str | None,
    key: str = "data.samples",
    label_columns: Iterable[str] = (),
    delimiter: str | None = None,
    decimal: str | None = None,
) -> tuple[pd.DataFrame, Path]:
    """The sheet indexed by sample id (text), checked for a present, unique id column.

    The dialect is detected (or `delimiter`/`decimal`); `label_columns` (the tasks' columns)
    and the id column may not appear twice in the header."""
    resolved, fmt = open_checked(path, key, ("text",))
    dialect = detect_dialect(resolved, fmt, key, delimiter, decimal)
    header = _header(resolved, fmt, dialect)
    if not header:
        raise DataError(f"{resolved} ({key}): the sample sheet has no header line")
    sheet = _parse(resolved, fmt, key, dialect, len(header))
    sheet.columns = header
    if sheet.empty:
        raise DataError(f"{resolved} ({key}): the sample sheet has no rows")
    used = {*label_columns, id_column or header[0]}
    _check_duplicated(sheet, header, used, f"{resolved} ({key})")
    sheet = sheet.loc[:, ~pd.Index(sheet.columns).duplicated()]
    if dialect.decimal == ",":
        sheet = _decimal_commas(sheet)
    column = id_column or sheet.columns[0]
    if column not in sheet.columns:
        raise DataError(
            f"{resolved}: sample-id column {column!r} (data.id_column) not found; "
            f"available columns: {list(sheet.columns)}"
        )
    ids = sheet[column].str.strip()
    if ids.isna().any() or (ids == "").any():
        rows = [
            int(i) + 2 + dialect.skip_lines
            for i in np.flatnonzero((ids.isna() | (ids == "")).to_numpy())
        ]
        raise DataError(
            f"{resolved}: empty sample ids in column {column!r} at lines {examples(rows)}"
        )
    dups = duplicated(ids.tolist())
    if dups:
        lines = {
            d: [int(i) + 2 + dialect.skip_lines for i in np.flatnonzero((ids == d).to_numpy())][:3]
            for d in dups[:5]
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
