"""Read a feature matrix from CSV/TSV (optionally gzipped) or Parquet, in either orientation.

The matrix goes straight into one preallocated float32 array, chunk by chunk: peak memory
is the matrix plus one chunk, not the float64 DataFrame plus its copy that
`pd.read_csv(...).to_numpy()` costs. Methylation and expression tables are often stored
features x samples (CpGs or genes as rows); `orientation` says which.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyarrow import ArrowInvalid

from multihead.data.dialect import TextDialect, detect_dialect
from multihead.data.examples import duplicated, examples
from multihead.data.file_formats import FileFormat, open_checked, read_blocks
from multihead.data.inplace import chunk_rows, map_rows_inplace
from multihead.data.matrix import FLOAT32_MAX, beyond_float32
from multihead.data.progress import advance, loading
from multihead.errors import ConfigError, DataError

ORIENTATIONS = ("samples_x_features", "features_x_samples")


@dataclass
class MatrixFile:
    """A samples x features float32 matrix with its sample ids and feature names."""

    values: np.ndarray
    sample_ids: list[str]
    feature_names: list[str]
    path: Path


@dataclass(frozen=True)
class _Layout:
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


def read_matrix(
    path: str | Path | None,
    key: str = "data.matrix",
    orientation: str = "samples_x_features",
    index_column: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> MatrixFile:
    """Read and check a matrix file; every problem is a DataError naming the file and key.

    Text files are read in the dialect `detect_dialect` finds (or `delimiter`/`decimal`)."""
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"data.orientation={orientation!r}: choose one of {list(ORIENTATIONS)}")
    resolved, fmt = open_checked(path, key, ("text", "parquet"))
    dialect = detect_dialect(resolved, fmt, key, delimiter, decimal) if fmt.kind == "text" else None
    layout = _Layout(resolved, key, orientation, dialect)
    if fmt.kind == "parquet":
        values, rows, columns = _read_parquet(layout, index_column)
    else:
        values, rows, columns = _read_text(layout, fmt, index_column)
    _check_names(layout, rows, columns)
    if layout.by_sample:
        return MatrixFile(values, rows, columns, resolved)
    return MatrixFile(values, columns, rows, resolved)


def _check_names(layout: _Layout, rows: list[str], columns: list[str]) -> None:
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


def _index_position(layout: _Layout, header: list[str], index_column: str | None) -> int:
    if index_column is None:
        return 0
    if index_column not in header:
        raise DataError(
            f"{layout.path}: column {index_column!r} (data.matrix_index) not found; "
            f"first columns: {header[:10]}"
        )
    return header.index(index_column)


def _empty(layout: _Layout, what: str) -> DataError:
    return DataError(f"{layout.path} ({layout.key}): empty matrix: {what}")


# ---------------------------------------------------------------------------- text files
def _count_lines(layout: _Layout, fmt: FileFormat) -> int:
    """Data lines (an upper bound: blank lines count), for preallocating the matrix; reading
    the whole file here also refuses a truncated .gz before any parsing."""
    end = b"\r" if layout.dialect.line_end == "\r" else b"\n"
    lines, last = 0, end
    for block in read_blocks(layout.path, fmt, layout.key):
        lines += block.count(end)
        last = block[-1:]
    return lines + (last != end) - 1 - layout.dialect.skip_lines


def _read_header(layout: _Layout, fmt: FileFormat) -> list[str]:
    """The header cells; R's write.table header gets an empty cell for the row names."""
    dialect = layout.dialect
    try:
        with fmt.open_text(layout.path) as handle:
            for _ in range(dialect.skip_lines):
                handle.readline()
            header = next(csv.reader(handle, delimiter=dialect.delimiter), [])
    except (csv.Error, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{layout.where()}: unreadable header: {err}") from None
    header = [h.strip() for h in header]
    return ["", *header] if dialect.header_lacks_id and header else header


def _non_numeric(layout: _Layout, chunk: pd.DataFrame, columns: list[str]) -> DataError | None:
    """A DataError with examples when some column did not parse as numbers."""
    positions = [j for j, t in enumerate(chunk.dtypes) if not pd.api.types.is_numeric_dtype(t)]
    if not positions:
        return None
    text, cells = [columns[j] for j in positions], []
    for j in positions:
        values = chunk.iloc[:, j]
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        cells += [layout.cell(str(r), columns[j], v) for r, v in bad.head(3).items()]
    return DataError(
        f"{layout.path} ({layout.key}): non-numeric values in {len(text)} "
        f"{'feature' if layout.by_sample else 'sample'} columns {examples(text)}: "
        f"{examples(cells)}"
    )


def _read_text(
    layout: _Layout, fmt: FileFormat, index_column: str | None
) -> tuple[np.ndarray, list[str], list[str]]:
    header = _read_header(layout, fmt)
    if not header:
        raise _empty(layout, "no header line")
    position = _index_position(layout, header, index_column)
    columns = header[:position] + header[position + 1 :]
    if not columns:
        raise _empty(layout, f"no {layout.column_kind} besides the id column {header[position]!r}")
    _check_names(layout, [], columns)
    n_rows = _count_lines(layout, fmt)
    if n_rows <= 0:
        raise _empty(layout, "a header but no data rows")
    shape = (n_rows, len(columns)) if layout.by_sample else (len(columns), n_rows)
    values = np.empty(shape, dtype=np.float32)
    with loading(f"reading {layout.path.name}", n_rows, layout.path.stat().st_size) as bar:
        try:
            ids = _fill_with_arrow(layout, fmt, len(header), position, columns, values, bar)
        except ArrowInvalid:  # a cell that is not a number, a ragged row, ...: pandas says where
            ids = _fill_with_pandas(layout, fmt, len(header), position, columns, values, bar)
    if not ids:
        raise _empty(layout, "a header but no data rows")
    return _trim(values, len(ids), layout.by_sample), ids, columns


def _put(
    values: np.ndarray, start: int, block_rows: int, j: int, column: np.ndarray, by_sample: bool
) -> None:
    if by_sample:
        values[start : start + block_rows, j] = column
    else:
        values[j, start : start + block_rows] = column


def _fill_with_arrow(
    layout: _Layout,
    fmt: FileFormat,
    width: int,
    position: int,
    columns: list[str],
    values: np.ndarray,
    bar,
) -> list[str]:
    """pyarrow's streaming, multi-threaded parser: about 2x faster than pandas.read_csv on
    wide files and without a DataFrame per chunk. Raises ArrowInvalid on any bad cell."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(width)]  # ours: header cells may be empty or repeated
    types = {name: pa.float64() for name in names}  # float64 first: overflow is seen, not inf
    types[names[position]] = pa.string()
    ragged: list = []

    def on_invalid(row) -> str:
        ragged.append(row)
        return "skip"

    dialect = layout.dialect
    stream = pa.input_stream(str(layout.path), compression="gzip" if fmt.gzipped else None)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=dialect.skip_lines + 1, block_size=32 << 20
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=dialect.delimiter, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(column_types=types, decimal_point=dialect.decimal),
    )
    ids: list[str] = []
    for batch in reader:
        start, k = len(ids), batch.num_rows
        _check_capacity(layout, values, start + k)
        batch_ids = ["" if i is None else i.strip() for i in batch.column(position).to_pylist()]
        j = 0
        for i in range(width):
            if i != position:
                column = batch.column(i).to_numpy(zero_copy_only=False)
                layout.check_range(column[:, None], batch_ids, [columns[j]])
                _put(values, start, k, j, column, layout.by_sample)
                j += 1
        ids += batch_ids
        advance(bar, k)
    if ragged:
        raise _ragged(layout, width, ragged)
    return ids


def _ragged(layout: _Layout, width: int, rows: list) -> DataError:
    first = rows[0]
    return DataError(
        f"{layout.where()}: {len(rows)} row(s) with another number of fields than the "
        f"header's {width}, e.g. {first.actual_columns} fields in {first.text[:80]!r}: a "
        "row cut short (an interrupted export or download) or a stray delimiter; repair or "
        "re-export the file"
    )


def _check_capacity(layout: _Layout, values: np.ndarray, rows: int) -> None:
    if rows > (values.shape[0] if layout.by_sample else values.shape[1]):
        raise DataError(
            f"{layout.path} ({layout.key}): more rows than lines counted; "
            "does it use lone carriage returns as line ends?"
        )


def _fill_with_pandas(
    layout: _Layout,
    fmt: FileFormat,
    width: int,
    position: int,
    columns: list[str],
    values: np.ndarray,
    bar,
) -> list[str]:
    """pandas, chunk by chunk: slower, but it finds the offending cells for the message."""
    names = [f"c{i}" for i in range(width)]
    dialect = layout.dialect
    reader = pd.read_csv(
        layout.path,
        sep=dialect.delimiter,
        decimal=dialect.decimal,
        index_col=position,
        header=None,
        skiprows=dialect.skip_lines + 1,
        names=names,
        dtype={names[position]: str},
        chunksize=chunk_rows(len(columns), 16 << 20),
        skip_blank_lines=True,
        encoding="utf-8-sig",
        lineterminator="\r" if dialect.line_end == "\r" else None,
        compression="gzip" if fmt.gzipped else None,
    )
    ids: list[str] = []
    try:
        for chunk in reader:
            error = _non_numeric(layout, chunk, columns)
            if error is not None:
                raise error
            block = chunk.to_numpy(dtype=np.float64)
            layout.check_range(block, [str(i) for i in chunk.index], columns)
            _check_capacity(layout, values, len(ids) + len(block))
            if layout.by_sample:
                values[len(ids) : len(ids) + len(block)] = block
            else:
                values[:, len(ids) : len(ids) + len(block)] = block.T
            ids += ["" if pd.isna(i) else str(i).strip() for i in chunk.index]
            advance(bar, len(block))
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise DataError(
            f"{layout.where()}: cannot parse: {err}; if the dialect is wrong, set "
            "data.delimiter / data.decimal"
        ) from None
    return ids


def _trim(values: np.ndarray, n_read: int, by_sample: bool) -> np.ndarray:
    """Drop the rows (or columns) preallocated for blank lines that held no data."""
    if by_sample:
        return values[:n_read]
    if values.shape[1] == n_read:
        return values
    return map_rows_inplace(values, lambda block: block[:, :n_read].copy(), n_read)


# ---------------------------------------------------------------------------- parquet
def _parquet_index(layout: _Layout, names: list[str], schema, index_column: str | None) -> int:
    """The id column: as configured, else a pandas-written index, else the first column."""
    if index_column is None:
        stored = [
            c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
        ]
        index_column = stored[0] if stored else None
    return _index_position(layout, names, index_column)


def _check_parquet_types(layout: _Layout, parquet, names: list[str], position: int) -> None:
    import pyarrow as pa

    def numeric(t) -> bool:
        return (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_decimal(t)
            or pa.types.is_null(t)
        )

    schema = parquet.schema_arrow
    text = [n for i, n in enumerate(names) if i != position and not numeric(schema.field(i).type)]
    if not text:
        return
    # ignore_metadata: a pandas-written index (`__index_level_0__`) stays a column here
    first = parquet.read_row_group(0, columns=[names[position], *text[:5]]).to_pandas(
        ignore_metadata=True
    )
    cells = [
        layout.cell(str(r), c, v)
        for c in text[:5]
        for r, v in zip(first[names[position]], first[c], strict=True)
        if v is not None
    ][:5]
    raise DataError(
        f"{layout.path} ({layout.key}): non-numeric columns "
        f"{examples(text)} (types {[str(schema.field(n).type) for n in text[:3]]}), "
        f"e.g. {examples(cells)}"
    )


def _read_row_group(
    layout: _Layout,
    parquet,
    group: int,
    columns: list[str],
    values: np.ndarray,
    ids: list[str],
    start: int,
) -> None:
    """One row group, a block of columns at a time: decoding all 20,000 columns of a wide
    row group at once (as iter_batches does) costs several times the matrix in memory."""
    rows = len(ids)
    width = max(1, (64 << 20) // max(1, 8 * rows))
    for first in range(0, len(columns), width):
        block = parquet.read_row_group(
            group, columns=columns[first : first + width], use_threads=False
        )
        for j, column in enumerate(block.columns, start=first):
            column = column.to_numpy()
            layout.check_range(column[:, None], ids, [columns[j]])
            _put(values, start, rows, j, column, layout.by_sample)


def _read_parquet(
    layout: _Layout, index_column: str | None
) -> tuple[np.ndarray, list[str], list[str]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(layout.path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"{layout.path} ({layout.key}): unreadable parquet file: {err}") from None
    names = [str(n) for n in parquet.schema_arrow.names]
    position = _parquet_index(layout, names, parquet.schema_arrow, index_column)
    columns = names[:position] + names[position + 1 :]
    if not columns:
        raise _empty(layout, f"no {layout.column_kind} besides the id column {names[position]!r}")
    _check_names(layout, [], columns)
    _check_parquet_types(layout, parquet, names, position)
    n_rows = parquet.metadata.num_rows
    if n_rows == 0:
        raise _empty(layout, "no data rows")
    shape = (n_rows, len(columns)) if layout.by_sample else (len(columns), n_rows)
    values = np.empty(shape, dtype=np.float32)
    ids: list[str] = []
    with loading(f"reading {layout.path.name}", n_rows, layout.path.stat().st_size) as bar:
        for group in range(parquet.metadata.num_row_groups):
            group_ids = [
                "" if i is None else str(i).strip()
                for i in parquet.read_row_group(group, columns=[names[position]])
                .column(0)
                .to_pylist()
            ]
            _read_row_group(layout, parquet, group, columns, values, group_ids, len(ids))
            ids += group_ids
            advance(bar, len(group_ids))
    return values, ids, columns
