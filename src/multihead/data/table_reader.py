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

from multihead.data.dialect import detect_dialect
from multihead.data.examples import examples
from multihead.data.file_formats import FileFormat, open_checked, read_blocks
from multihead.data.inplace import chunk_rows, map_rows_inplace
from multihead.data.matrix_layout import Layout, check_names, empty_matrix, index_position, put
from multihead.data.parquet_reader import read_parquet
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
    layout = Layout(resolved, key, orientation, dialect)
    if fmt.kind == "parquet":
        values, rows, columns = read_parquet(layout, index_column)
    else:
        values, rows, columns = _read_text(layout, fmt, index_column)
    check_names(layout, rows, columns)
    if layout.by_sample:
        return MatrixFile(values, rows, columns, resolved)
    return MatrixFile(values, columns, rows, resolved)


# ---------------------------------------------------------------------------- text files
def _count_lines(layout: Layout, fmt: FileFormat) -> int:
    """Data lines (an upper bound: blank lines count), for preallocating the matrix; reading
    the whole file here also refuses a truncated .gz before any parsing."""
    end = b"\r" if layout.dialect.line_end == "\r" else b"\n"
    lines, last = 0, end
    for block in read_blocks(layout.path, fmt, layout.key):
        lines += block.count(end)
        last = block[-1:]
    return lines + (last != end) - 1 - layout.dialect.skip_lines


def _read_header(layout: Layout, fmt: FileFormat) -> list[str]:
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


def _non_numeric(layout: Layout, chunk: pd.DataFrame, columns: list[str]) -> DataError | None:
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
    layout: Layout, fmt: FileFormat, index_column: str | None
) -> tuple[np.ndarray, list[str], list[str]]:
    header = _read_header(layout, fmt)
    if not header:
        raise empty_matrix(layout, "no header line")
    position = index_position(layout, header, index_column)
    columns = header[:position] + header[position + 1 :]
    if not columns:
        raise empty_matrix(
            layout, f"no {layout.column_kind} besides the id column {header[position]!r}"
        )
    check_names(layout, [], columns)
    n_rows = _count_lines(layout, fmt)
    if n_rows <= 0:
        raise empty_matrix(layout, "a header but no data rows")
    shape = (n_rows, len(columns)) if layout.by_sample else (len(columns), n_rows)
    values = np.empty(shape, dtype=np.float32)
    with loading(f"reading {layout.path.name}", n_rows, layout.path.stat().st_size) as bar:
        try:
            ids = _fill_with_arrow(layout, fmt, len(header), position, columns, values, bar)
        except ArrowInvalid:  # a cell that is not a number, a ragged row, ...: pandas says where
            ids = _fill_with_pandas(layout, fmt, len(header), position, columns, values, bar)
    if not ids:
        raise empty_matrix(layout, "a header but no data rows")
    return _trim(values, len(ids), layout.by_sample), ids, columns


def _fill_with_arrow(
    layout: Layout,
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
                put(
                    values,
                    start,
                    k,
                    j,
                    batch.column(i).to_numpy(zero_copy_only=False),
                    layout.by_sample,
                )
                j += 1
        layout.check_stored(
            values,
            start,
            batch_ids,
            columns,
            lambda j, batch=batch: batch.column(j + (j >= position)).to_numpy(zero_copy_only=False),
        )
        ids += batch_ids
        advance(bar, k)
    if ragged:
        raise _ragged(layout, width, ragged)
    return ids


def _ragged(layout: Layout, width: int, rows: list) -> DataError:
    first = rows[0]
    return DataError(
        f"{layout.where()}: {len(rows)} row(s) with another number of fields than the "
        f"header's {width}, e.g. {first.actual_columns} fields in {first.text[:80]!r}: a "
        "row cut short (an interrupted export or download) or a stray delimiter; repair or "
        "re-export the file"
    )


def _check_capacity(layout: Layout, values: np.ndarray, rows: int) -> None:
    if rows > (values.shape[0] if layout.by_sample else values.shape[1]):
        raise DataError(
            f"{layout.path} ({layout.key}): more rows than lines counted; "
            "does it use lone carriage returns as line ends?"
        )


def _fill_with_pandas(
    layout: Layout,
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
