"""Read a Parquet matrix: ids from the configured column, a pandas-written index
(`__index_level_0__`) or the first column; values a row group and a block of columns at a time."""

from __future__ import annotations

import numpy as np

from multihead.data.examples import examples
from multihead.data.matrix_layout import Layout, check_names, empty_matrix, index_position, put
from multihead.data.progress import advance, loading
from multihead.errors import DataError


def _parquet_index(layout: Layout, names: list[str], schema, index_column: str | None) -> int:
    """The id column: as configured, else a pandas-written index, else the first column."""
    if index_column is None:
        stored = [
            c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
        ]
        index_column = stored[0] if stored else None
    return index_position(layout, names, index_column)


def _check_parquet_types(layout: Layout, parquet, names: list[str], position: int) -> None:
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
    layout: Layout,
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
            put(values, start, rows, j, column.to_numpy(), layout.by_sample)
    layout.check_stored(
        values,
        start,
        ids,
        columns,
        lambda j: parquet.read_row_group(group, columns=[columns[j]]).column(0).to_numpy(),
    )


def read_parquet(
    layout: Layout, index_column: str | None
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
        raise empty_matrix(
            layout, f"no {layout.column_kind} besides the id column {names[position]!r}"
        )
    check_names(layout, [], columns)
    _check_parquet_types(layout, parquet, names, position)
    n_rows = parquet.metadata.num_rows
    if n_rows == 0:
        raise empty_matrix(layout, "no data rows")
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
