"""Property tests: random valid cohorts, written in random dialects, read back identical.

Each example writes a matrix and a sample sheet with `tests.quirky_inputs.write_text` in a
random delimiter, decimal mark, line end, byte-order mark, preamble (Excel's `sep=` line,
comments), R-style header, file extension and compression, and checks the readers return
exactly the ids, names and float32 values (or text cells) that were written.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multihead.data.sample_sheet import ROW_NAMES, read_sample_sheet
from multihead.data.table_reader import read_matrix
from multihead.errors import DataError
from tests.quirky_inputs import cell, write_text

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _names(prefix: str, n: int):
    return st.lists(
        st.text(NAME_CHARS, min_size=1, max_size=8), min_size=n, max_size=n, unique=True
    ).map(lambda names: [prefix + name for name in names])


@st.composite
def dialects(draw, min_fields: int) -> dict:
    delimiter = draw(st.sampled_from([",", "\t", ";", "|"]))
    decimal = "." if delimiter == "," else draw(st.sampled_from([".", ","]))
    preamble = draw(
        st.sampled_from([[], [f"sep={delimiter}"], ["# exported by a LIMS"], ["# a", "", "# b"]])
    )
    return {
        "delimiter": delimiter,
        "decimal": decimal,
        "line_end": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "bom": draw(st.booleans()),
        "preamble": preamble,
        # one data column and an R header is ambiguous even to a person: `S1;1,5`
        "r_header": draw(st.booleans()) and min_fields >= 2,
    }


@st.composite
def matrices(draw):
    n, p = draw(st.integers(1, 25)), draw(st.integers(1, 6))
    ids = draw(_names("S", n))
    features = draw(_names("g", p))
    values = draw(
        st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False),
            min_size=n * p,
            max_size=n * p,
        )
    )
    return ids, features, np.asarray(values, dtype=np.float32).reshape(n, p)


def _ambiguous(values, decimal: str) -> bool:
    """Every number with a comma reads as well as a thousands separator (`100,125`): the
    readers must refuse to guess."""
    cells = [cell(float(v), decimal) for v in values]
    commas = [c for c in cells if "," in c]
    return bool(commas) and all(re.fullmatch(r"[+-]?[1-9]\d{0,2}(,\d{3})+", c) for c in commas)


def _file_name(draw, stem: str) -> str:
    return (
        stem + draw(st.sampled_from([".csv", ".tsv", ".txt"])) + draw(st.sampled_from(["", ".gz"]))
    )


@SETTINGS
@given(data=st.data())
def test_random_matrix_in_random_dialect_reads_back_identical(data):
    ids, features, values = data.draw(matrices())
    dialect = data.draw(dialects(min_fields=len(features)))
    name = _file_name(data.draw, "matrix")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        rows = [[i, *map(float, row)] for i, row in zip(ids, values, strict=True)]
        write_text(path, ["sample_id", *features], rows, **dialect)
        if _ambiguous(values.ravel(), dialect["decimal"]):
            with pytest.raises(DataError, match=r"data\.decimal=comma"):
                read_matrix(path)
            return
        got = read_matrix(path)
    assert got.sample_ids == ids
    assert got.feature_names == features
    np.testing.assert_array_equal(got.values, values)
    assert got.values.dtype == np.float32


@SETTINGS
@given(data=st.data())
def test_random_sample_sheet_in_random_dialect_reads_back_identical(data):
    n = data.draw(st.integers(1, 25))
    ids = data.draw(_names("S", n))
    ages = data.draw(st.lists(st.floats(0, 120), min_size=n, max_size=n))
    sexes = data.draw(
        st.lists(st.sampled_from(["female", "male", "F", "M"]), min_size=n, max_size=n)
    )
    dialect = data.draw(dialects(min_fields=2))
    name = _file_name(data.draw, "samples")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        rows = [list(r) for r in zip(ids, ages, sexes, strict=True)]
        write_text(path, ["sample_id", "age", "sex"], rows, **dialect)
        if _ambiguous(ages, dialect["decimal"]):
            with pytest.raises(DataError, match=r"data\.decimal=comma"):
                read_sample_sheet(path, None, label_columns=["age", "sex"])
            return
        sheet, _ = read_sample_sheet(path, None, label_columns=["age", "sex"])
    assert list(sheet.index) == ids
    assert sheet.index.name == (ROW_NAMES if dialect["r_header"] else "sample_id")
    assert list(sheet.columns) == ["age", "sex"]
    assert [float(a) for a in sheet["age"]] == ages
    assert list(sheet["sex"]) == sexes
