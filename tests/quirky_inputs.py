"""Quirky input files for the fuzz campaign, each with the outcome it must have.

Every `Quirk` writes its files into a folder and returns the overrides that point the
config at them. Its expected outcome is either "read correctly" (the prepared cohort equals
the one from the same data written as plain CSV, or passes the case's own check) or "one
named error" (an error of the given type whose message matches every pattern: the file,
column, sample or key, and the fix). The cases cover dialects, encodings and compression,
id quirks, label quirks, numeric extremes, AnnData quirks and config extremes.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multihead.errors import ConfigError, DataError
from tests.data_files import small_frames, write_h5ad

BASE_SAMPLES = 60
BASE_FEATURES = 16


@dataclass(frozen=True)
class Quirk:
    """One quirky input and what must happen to it."""

    name: str
    kind: str  # dialect, encoding, ids, labels, numeric, anndata, config
    build: Callable[[Path], list[str]]  # writes files, returns the overrides
    error: type[Exception] | None = None  # None: read correctly
    patterns: tuple[str, ...] = ()  # regexes the one error message must match
    check: Callable | None = None  # read cases: check(cohort, reference); default: equal

    @property
    def reads(self) -> bool:
        return self.error is None

    @staticmethod
    def whole_config(overrides: list[str]) -> bool:
        """Cases without data files are checked by validate_config on the whole config."""
        return not any(o.startswith("data=") for o in overrides)


# ----------------------------------------------------------------------------- base data
_FRAMES: dict[str, pd.DataFrame] = {}


def base_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matrix samples x features, sheet with sample_id, integer ages, sex), fresh copies.
    Whole-year ages convert to and from days and months exactly."""
    if not _FRAMES:
        matrix, sheet = small_frames(n_samples=BASE_SAMPLES, n_features=BASE_FEATURES, seed=5)
        sheet = sheet[["sample_id", "age", "sex"]].copy()
        sheet["age"] = sheet["age"].round().astype(int)
        _FRAMES.update(matrix=matrix, sheet=sheet)
    return _FRAMES["matrix"].copy(), _FRAMES["sheet"].copy()


def cell(value: object, decimal: str = ".") -> str:
    """A value as text that reads back to the same float32 (the float64 repr of it)."""
    if isinstance(value, float | np.floating):
        text = repr(float(value))
        return text.replace(".", ",") if decimal == "," else text
    return str(value)


def write_text(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    delimiter: str = ",",
    decimal: str = ".",
    line_end: str = "\n",
    bom: bool = False,
    preamble: Sequence[str] = (),
    r_header: bool = False,
    trailer: str = "",
) -> Path:
    """A delimited table in an exact dialect (gzipped when the name ends in .gz).

    `preamble`: lines above the header (Excel's `sep=;`, comments); `r_header`: the header
    leaves out the first (row-name) cell, as R's write.table does."""
    lines = [*preamble, delimiter.join(header[1:] if r_header else header)]
    lines += [delimiter.join(cell(v, decimal) for v in row) for row in rows]
    text = ("\ufeff" if bom else "") + line_end.join(lines) + line_end + trailer
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def matrix_rows(matrix: pd.DataFrame) -> tuple[list[str], list[list[object]]]:
    header = [matrix.index.name or "sample_id", *map(str, matrix.columns)]
    values = matrix.to_numpy(object)  # text cells and values beyond float32 stay as given
    return header, [[i, *row] for i, row in zip(matrix.index, values, strict=True)]


def sheet_rows(sheet: pd.DataFrame) -> tuple[list[str], list[list[object]]]:
    return list(sheet.columns), [list(r) for r in sheet.itertuples(index=False)]


def table_files(
    folder: Path,
    matrix: pd.DataFrame | None = None,
    sheet: pd.DataFrame | None = None,
    matrix_name: str = "matrix.csv",
    sheet_name: str = "samples.csv",
    matrix_dialect: dict | None = None,
    sheet_dialect: dict | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Matrix and sheet written in the given dialects; the data=table overrides."""
    base_matrix, base_sheet = base_frames()
    matrix = base_matrix if matrix is None else matrix
    sheet = base_sheet if sheet is None else sheet
    m = write_text(folder / matrix_name, *matrix_rows(matrix), **(matrix_dialect or {}))
    s = write_text(folder / sheet_name, *sheet_rows(sheet), **(sheet_dialect or {}))
    return ["data=table", f"data.matrix={m}", f"data.samples={s}", *extra]


def replace_file(overrides: list[str], key: str, path: Path) -> list[str]:
    return [o if not o.startswith(f"{key}=") else f"{key}={path}" for o in overrides]


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# ----------------------------------------------------------------------------- checks
def same_cohort(got, ref) -> None:
    """Read correctly: the same samples, labels, years and (preprocessed) features."""
    assert got.sample_ids == ref.sample_ids
    assert got.feature_names == ref.feature_names
    np.testing.assert_array_equal(got.labels.numpy(), ref.labels.numpy())
    np.testing.assert_allclose(got.values.numpy(), ref.values.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got.features.numpy(), ref.features.numpy(), atol=1e-5)


def sex_in_every_split(got, ref) -> None:
    """A masked task with few labels still has every class in train, val and test."""
    sex = [t.name for t in got.tasks].index("sex")
    for split, rows in got.splits.items():
        present = set(got.labels[rows, sex].tolist()) - {-1}
        assert present == {0, 1}, (split, present)


def three_decimals_read(got, ref) -> None:
    """`7,113` with data.decimal=comma is 7.113: the raw matrix is 1 + |x| to 3 decimals."""
    assert got.sample_ids == ref.sample_ids
    expected = np.round(1 + np.abs(base_frames()[0].to_numpy(np.float64)), 3).astype(np.float32)
    scaler = got.preprocessor.standardizer
    raw = got.features.numpy() * scaler.scale + scaler.mean
    kept = [base_frames()[0].columns.get_loc(f) for f in got.feature_names]
    np.testing.assert_allclose(raw, expected[:, kept], rtol=1e-5)


def parquet_index_as_ids(got, ref) -> None:
    """The pandas index (`__index_level_0__`) gave the ids: the filtered frame's row numbers."""
    assert got.sample_ids == [str(i) for i in range(BASE_SAMPLES) if i % 7 != 3]
    assert got.feature_names == ref.feature_names


def dropped(ids: set[str]) -> Callable:
    def check(got, ref) -> None:
        assert set(got.sample_ids) == set(ref.sample_ids) - ids

    return check


def sex_missing_for(ids: set[str]) -> Callable:
    def check(got, ref) -> None:
        sex = [t.name for t in got.tasks].index("sex")
        missing = {
            s for s, v in zip(got.sample_ids, got.labels[:, sex].tolist(), strict=True) if v == -1
        }
        assert missing == ids
        assert got.sample_ids == ref.sample_ids

    return check


# ----------------------------------------------------------------------------- builders
def _dialect(**matrix_dialect) -> Callable[[Path], list[str]]:
    name = matrix_dialect.pop("name", "matrix.csv")
    extra = matrix_dialect.pop("extra", ())
    return lambda d: table_files(d, matrix_name=name, matrix_dialect=matrix_dialect, extra=extra)


def _sheet_dialect(**sheet_dialect) -> Callable[[Path], list[str]]:
    name = sheet_dialect.pop("name", "samples.csv")
    return lambda d: table_files(d, sheet_name=name, sheet_dialect=sheet_dialect)


def _with_sheet(change: Callable[[pd.DataFrame], pd.DataFrame], *extra: str):
    return lambda d: table_files(d, sheet=change(base_frames()[1]), extra=extra)


def _with_matrix(change: Callable[[pd.DataFrame], pd.DataFrame], *extra: str, **dialect):
    return lambda d: table_files(
        d, matrix=change(base_frames()[0]), matrix_dialect=dialect, extra=extra
    )


def _set(frame: pd.DataFrame, column: str, rows: Sequence[int], values) -> pd.DataFrame:
    frame = frame.copy()
    if column in frame.columns and not isinstance(values, list | tuple | np.ndarray):
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[list(rows)], column] = values
    return frame


def _ages(transform) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(sheet: pd.DataFrame) -> pd.DataFrame:
        sheet = sheet.copy()
        sheet["age"] = transform(sheet["age"].astype(float))
        return sheet

    return change


def _truncated_gz(which: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        overrides = table_files(d, matrix_name="matrix.csv.gz", sheet_name="samples.csv.gz")
        truncate(d / ("matrix.csv.gz" if which == "matrix" else "samples.csv.gz"))
        return overrides

    return build


def _corrupt_gz(d: Path) -> list[str]:
    overrides = table_files(d, matrix_name="matrix.csv.gz")
    data = bytearray((d / "matrix.csv.gz").read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    (d / "matrix.csv.gz").write_bytes(bytes(data))
    return overrides


def _truncated_last_row(d: Path) -> list[str]:
    overrides = table_files(d)
    text = (d / "matrix.csv").read_text().rstrip("\n")
    (d / "matrix.csv").write_text(text[: text.rindex(",") - 3] + "\n")
    return overrides


def _parquet(change=None, text_column: bool = False) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        overrides = table_files(d)
        matrix = base_frames()[0].reset_index(drop=True)  # integer index -> __index_level_0__
        matrix = matrix[matrix.index % 7 != 3]  # a filtered frame keeps its integer index
        if change is not None:
            matrix = change(matrix)
        if text_column:
            matrix = matrix.assign(note="x")
        sheet = base_frames()[1]
        sheet = sheet[sheet.index % 7 != 3].copy()
        sheet["sample_id"] = [str(i) for i in sheet.index]
        matrix.to_parquet(d / "m.parquet")
        sheet.to_csv(d / "samples.csv", index=False)
        return replace_file(
            replace_file(overrides, "data.matrix", d / "m.parquet"),
            "data.samples",
            d / "samples.csv",
        )

    return build


def _h5ad(change_sheet=None, matrix=None, *extra: str, duplicate_ids: bool = False):
    def build(d: Path) -> list[str]:
        base_matrix, sheet = base_frames()
        values = base_matrix if matrix is None else matrix(base_matrix)
        sheet = sheet if change_sheet is None else change_sheet(sheet)
        if duplicate_ids:
            sheet = _set(sheet, "sample_id", [1], sheet["sample_id"].iloc[0])
        sheet = sheet.assign(sex=pd.Categorical(sheet["sex"]))
        path = write_h5ad(d / "cohort.h5ad", values, sheet)
        return ["data=anndata", f"data.path={path}", *extra]

    return build


def _h5ad_float64_overflow(d: Path) -> list[str]:
    import anndata

    matrix, sheet = base_frames()
    x = matrix.to_numpy(np.float64)
    x[4, 2] = 1e300
    adata = anndata.AnnData(X=x, obs=sheet.set_index("sample_id"))
    adata.var_names = [str(c) for c in matrix.columns]
    adata.write_h5ad(d / "cohort.h5ad")
    return ["data=anndata", f"data.path={d / 'cohort.h5ad'}"]


def _config(*overrides: str) -> Callable[[Path], list[str]]:
    return lambda d: list(overrides)


def _masked_sex(labelled: int, female: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(sheet: pd.DataFrame) -> pd.DataFrame:
        sheet = sheet.copy()
        sex = np.array([None] * len(sheet), dtype=object)
        sex[:labelled] = ["female"] * female + ["male"] * (labelled - female)
        sheet["sex"] = sex
        return sheet

    return change


def _small_cohort(n: int) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        matrix, sheet = base_frames()
        return table_files(d, matrix=matrix.iloc[:n], sheet=sheet.iloc[:n])

    return build


MATRIX = r"matrix\.csv(\.gz)? \(data\.matrix"
SHEET = r"samples\.csv(\.gz)? \(data\.samples"


def _sheet_short_rows(d: Path) -> list[str]:
    """A trailing `note` column most rows leave out entirely (no trailing delimiter)."""
    header, rows = sheet_rows(base_frames()[1])
    rows = [[*r, "re-run"] if i % 9 == 0 else r for i, r in enumerate(rows)]
    overrides = table_files(d)
    write_text(d / "samples.csv", [*header, "note"], rows)
    return overrides


def _truncate_after(overrides: list[str], path: Path) -> list[str]:
    truncate(path, 0.5)
    return overrides


def _latin1_sheet(d: Path) -> list[str]:
    overrides = table_files(d)
    text = (d / "samples.csv").read_text().replace("sample_id,", "échantillon,", 1)
    (d / "samples.csv").write_bytes(text.encode("latin-1"))
    return overrides


def _utf16_matrix(d: Path) -> list[str]:
    overrides = table_files(d)
    (d / "matrix.csv").write_bytes((d / "matrix.csv").read_text().encode("utf-16"))
    return overrides


def _duplicate_sex_column(d: Path) -> list[str]:
    sheet = base_frames()[1]
    other = sheet["sex"].map({"female": "male", "male": "female"})
    other.iloc[:50] = sheet["sex"].iloc[:50]  # 10 rows disagree
    header, rows = sheet_rows(sheet)
    rows = [[*r, o] for r, o in zip(rows, other, strict=True)]
    overrides = table_files(d)
    write_text(d / "samples.csv", [*header, "sex"], rows)
    return overrides


def _matrix_ids(change) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        matrix = base_frames()[0]
        matrix.index = pd.Index(change(list(matrix.index)), name="sample_id")
        return table_files(d, matrix=matrix)

    return build


def _sheet_ids(change) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        sheet = base_frames()[1]
        sheet["sample_id"] = change(list(sheet["sample_id"]))
        return table_files(d, sheet=sheet)

    return build


def _first(values: list, new: str, at: int = 0) -> list:
    values = list(values)
    values[at] = new
    return values


def _constant(matrix: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(1.0, index=matrix.index, columns=matrix.columns, dtype=np.float32)


def _matrix_cell(value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(matrix: pd.DataFrame) -> pd.DataFrame:
        matrix = matrix.astype(object)
        matrix.iloc[7, 5] = value
        return matrix

    return change


def _thousands(matrix: pd.DataFrame) -> pd.DataFrame:
    """Values written with exactly three decimals after a comma, all >= 1: `7,113`."""
    return (1 + matrix.abs()).map(lambda v: f"{v:.3f}".replace(".", ","))


def _matrix_tiny(matrix: pd.DataFrame) -> pd.DataFrame:
    return (matrix * 1e-30).astype(np.float32)


_E = r"data\.tasks\.age"
QUIRKS: list[Quirk] = [
    # ---------------------------------------------------------------- dialects (read)
    Quirk("semicolon_decimal_comma", "dialect", _dialect(delimiter=";", decimal=",")),
    Quirk("tab_in_dot_csv", "dialect", _dialect(delimiter="\t")),
    Quirk("comma_in_dot_txt", "dialect", _dialect(name="matrix.txt")),
    Quirk("comma_in_dot_tsv", "dialect", _dialect(name="matrix.tsv")),
    Quirk("excel_sep_semicolon_line", "dialect", _dialect(delimiter=";", preamble=["sep=;"])),
    Quirk("excel_sep_comma_line", "dialect", _dialect(preamble=["sep=,"])),
    Quirk("comment_above_header", "dialect", _dialect(preamble=["# exported 2024-01-01"])),
    Quirk("blank_and_comments", "dialect", _dialect(preamble=["", "# a", "# b", ""])),
    Quirk("bom_matrix", "dialect", _dialect(bom=True)),
    Quirk("bom_sheet", "dialect", _sheet_dialect(bom=True)),
    Quirk("crlf_matrix", "dialect", _dialect(line_end="\r\n")),
    Quirk("lone_cr_matrix", "dialect", _dialect(line_end="\r")),
    Quirk("lone_cr_sheet", "dialect", _sheet_dialect(line_end="\r")),
    Quirk("crlf_sheet_bom", "dialect", _sheet_dialect(line_end="\r\n", bom=True)),
    Quirk("r_write_table_matrix", "dialect", _dialect(r_header=True, delimiter="\t")),
    Quirk("r_write_table_sheet", "dialect", _sheet_dialect(r_header=True)),
    Quirk("pipe_delimited", "dialect", _dialect(delimiter="|")),
    Quirk(
        "gz_semicolon_decimal_comma",
        "dialect",
        _dialect(name="matrix.csv.gz", delimiter=";", decimal=","),
    ),
    Quirk("sheet_semicolon_decimal_comma", "dialect", _sheet_dialect(delimiter=";", decimal=",")),
    Quirk("trailing_blank_lines", "dialect", _dialect(trailer="\n\n")),
    Quirk(
        "thousands_or_decimal_comma",
        "dialect",
        _with_matrix(_thousands, delimiter=";"),
        DataError,
        (MATRIX, r"such as '\d,\d{3}'", "data.decimal=comma"),
    ),
    Quirk(
        "three_decimals_declared",
        "dialect",
        _with_matrix(_thousands, "data.decimal=comma", delimiter=";"),
        check=three_decimals_read,
    ),
    Quirk("sheet_rows_without_trailing_cells", "dialect", _sheet_short_rows),
    Quirk(
        "tab_matrix_semicolon_sheet",
        "dialect",
        lambda d: table_files(
            d, matrix_dialect={"delimiter": "\t"}, sheet_dialect={"delimiter": ";"}
        ),
    ),
    Quirk(
        "explicit_delimiter_and_decimal",
        "dialect",
        lambda d: table_files(
            d,
            matrix_dialect={"delimiter": ";", "decimal": ","},
            sheet_dialect={"delimiter": ";", "decimal": ","},
            extra=("data.delimiter=semicolon", "data.decimal=comma"),
        ),
    ),
    Quirk(
        "wrong_explicit_delimiter",
        "dialect",
        _dialect(extra=("data.delimiter=semicolon",)),
        DataError,
        (SHEET, r"read as semicolon-separated \(data\.delimiter\)", "data.delimiter=comma"),
    ),
    Quirk(
        "unknown_delimiter_option",
        "config",
        _dialect(extra=("data.delimiter=x",)),
        ConfigError,
        (r"data\.delimiter='x'",),
    ),
    # ---------------------------------------------------------------- encodings, compression
    Quirk(
        "utf8_feature_names",
        "encoding",
        _with_matrix(lambda m: m.rename(columns={m.columns[3]: "Gén-α", m.columns[4]: "β-actin"})),
        check=lambda got, ref: np.testing.assert_equal(
            got.feature_names[3:5] if len(got.feature_names) > 4 else None, ["Gén-α", "β-actin"]
        ),
    ),
    Quirk("latin1_sheet", "encoding", _latin1_sheet, DataError, (r"samples\.csv", "UTF-8")),
    Quirk("utf16_matrix", "encoding", _utf16_matrix, DataError, (r"matrix\.csv", "binary")),
    Quirk(
        "truncated_gz_matrix",
        "encoding",
        _truncated_gz("matrix"),
        DataError,
        (r"data\.matrix", r"matrix\.csv\.gz is a truncated or damaged gzip"),
    ),
    Quirk(
        "truncated_gz_sheet",
        "encoding",
        _truncated_gz("sheet"),
        DataError,
        (r"data\.samples", r"samples\.csv\.gz is a truncated or damaged gzip"),
    ),
    Quirk("corrupt_gz_matrix", "encoding", _corrupt_gz, DataError, (r"matrix\.csv\.gz", "gzip")),
    Quirk(
        "truncated_parquet",
        "encoding",
        lambda d: _truncate_after(_parquet()(d), d / "m.parquet"),
        DataError,
        (r"m\.parquet \(data\.matrix\)", "unreadable parquet"),
    ),
    Quirk(
        "truncated_h5ad",
        "anndata",
        lambda d: _truncate_after(_h5ad()(d), d / "cohort.h5ad"),
        DataError,
        (r"cohort\.h5ad \(data\.path\)", "unreadable HDF5"),
    ),
    # ---------------------------------------------------------------- ids
    Quirk(
        "ids_lost_leading_zeros",
        "ids",
        _matrix_ids(lambda ids: [str(int(i)) for i in ids]),
        DataError,
        (r"matrix\.csv", r"samples\.csv", "no id is in both"),
    ),
    Quirk(
        "duplicated_matrix_id",
        "ids",
        _matrix_ids(lambda ids: _first(ids, ids[1])),
        DataError,
        (MATRIX, "duplicated sample ids", "'00001'"),
    ),
    Quirk(
        "duplicated_sheet_id",
        "ids",
        _sheet_ids(lambda ids: _first(ids, ids[1])),
        DataError,
        (r"samples\.csv", "duplicated sample ids", "'00001'"),
    ),
    Quirk(
        "empty_sheet_id",
        "ids",
        _sheet_ids(lambda ids: _first(ids, "", 4)),
        DataError,
        (r"samples\.csv", "empty sample ids", "lines 6"),
    ),
    Quirk("ids_with_spaces", "ids", _matrix_ids(lambda ids: [f" {i} " for i in ids])),
    Quirk(
        "sample_missing_from_matrix",
        "ids",
        _sheet_ids(lambda ids: _first(ids, "99999", 3)),
        DataError,
        (r"'99999'", "unmatched_samples=intersect"),
    ),
    Quirk(
        "intersect_unmatched",
        "ids",
        lambda d: (
            _sheet_ids(lambda ids: _first(ids, "99999", 3))(d)
            + ["data.unmatched_samples=intersect"]
        ),
        check=dropped({"00003"}),
    ),
    Quirk(
        "duplicated_feature_names",
        "ids",
        _with_matrix(lambda m: m.rename(columns={m.columns[2]: m.columns[1]})),
        DataError,
        (MATRIX, "duplicated feature names"),
    ),
    Quirk("parquet_pandas_index", "ids", _parquet(), check=parquet_index_as_ids),
    Quirk(
        "parquet_pandas_index_text_column",
        "ids",
        _parquet(text_column=True),
        DataError,
        (r"m\.parquet", "non-numeric columns 'note'"),
    ),
    # ---------------------------------------------------------------- labels
    Quirk(
        "single_class_sex",
        "labels",
        _with_sheet(lambda s: s.assign(sex="male")),
        DataError,
        (r"task 'sex'", "single class", r"'male'", "'female': 0", r"~data\.tasks\.sex"),
    ),
    Quirk(
        "sentinel_ages",
        "labels",
        _with_sheet(lambda s: _set(s, "age", [2, 5, 9], [-9, 999, -9])),
        DataError,
        (
            SHEET.split(r" \(")[0],
            r"'00002=-9'",
            r"-9 \(2 samples\), 999 \(1 samples\)",
            r"missing_codes=\[-9, 999\]",
        ),
    ),
    Quirk(
        "sentinel_ages_declared",
        "labels",
        _with_sheet(
            lambda s: _set(s, "age", [2, 5, 9], [-9, 999, -9]),
            "data.tasks.age.missing_codes=[-9, 999]",
            "data.labels.missing=drop",
        ),
        check=dropped({"00002", "00005", "00009"}),
    ),
    Quirk(
        "age_in_days",
        "labels",
        _with_sheet(_ages(lambda a: a * 365.25), "data.tasks.age.unit=days"),
    ),
    Quirk(
        "age_in_days_undeclared",
        "labels",
        _with_sheet(_ages(lambda a: a * 365.25)),
        DataError,
        (_E + r"\.valid_range=\[-1, 125\]", r"data\.tasks\.age\.unit=days\b"),
    ),
    Quirk(
        "tcga_days_to_birth",
        "labels",
        _with_sheet(_ages(lambda a: -a * 365.25), "data.tasks.age.unit=days_to_birth"),
    ),
    Quirk(
        "tcga_days_to_birth_undeclared",
        "labels",
        _with_sheet(_ages(lambda a: -a * 365.25)),
        DataError,
        (r"implausible", r"unit=days_to_birth"),
    ),
    Quirk(
        "age_in_months",
        "labels",
        _with_sheet(_ages(lambda a: a * 12), "data.tasks.age.unit=months"),
    ),
    Quirk(
        "age_beyond_range",
        "labels",
        _with_sheet(lambda s: _set(s, "age", [3], 130)),
        DataError,
        (r"'00003=130'", r"valid_range=\[-1, 125\]"),
    ),
    Quirk(
        "age_range_check_off",
        "labels",
        _with_sheet(lambda s: _set(s, "age", [3], 130), "data.tasks.age.valid_range=null"),
        check=lambda got, ref: None,
    ),
    Quirk(
        "two_sex_columns",
        "labels",
        _duplicate_sex_column,
        DataError,
        (r"samples\.csv", r"2 columns are named 'sex'", "columns 3, 4", "disagree in 10"),
    ),
    Quirk(
        "sex_u_declared_missing",
        "labels",
        _with_sheet(
            lambda s: _set(s.assign(sex=s["sex"].str[0].str.upper()), "sex", [4, 8], "U"),
            "data.tasks.sex.codes={U: null}",
            "data.labels.missing=mask",
        ),
        check=sex_missing_for({"00004", "00008"}),
    ),
    Quirk(
        "sex_unknown_value",
        "labels",
        _with_sheet(lambda s: _set(s, "sex", [4], "X")),
        DataError,
        (r"column 'sex'", r"\['X'\]", r"data\.tasks\.sex\.codes"),
    ),
    Quirk(
        "masked_sex_few_labels",
        "labels",
        _with_sheet(_masked_sex(14, 4), "data.labels.missing=mask"),
        check=sex_in_every_split,
    ),
    Quirk(
        "masked_sex_two_of_a_class",
        "labels",
        _with_sheet(_masked_sex(14, 2), "data.labels.missing=mask"),
        DataError,
        (r"task 'sex'", r"'female' \(2 samples\)", "fewer than 3"),
    ),
    Quirk(
        "cohort_too_small",
        "labels",
        _small_cohort(15),
        DataError,
        ("only 15 samples", "needs at least 21"),
    ),
    Quirk(
        "cohort_small_many_classes",
        "labels",
        lambda d: _small_cohort(22)(d) + ["data.tasks.age.bins=quantile:6"],
        DataError,
        (r"task 'age'", r"split holds \d+ samples of 22, fewer than the task's 6 classes"),
    ),
    Quirk(
        "age_as_words",
        "labels",
        _with_sheet(lambda s: _set(s, "age", [6], "forty")),
        DataError,
        (r"column 'age'", r"'00006=forty'"),
    ),
    Quirk(
        "label_column_missing",
        "labels",
        _with_sheet(lambda s: s.rename(columns={"sex": "gender"})),
        DataError,
        (r"label column 'sex'", r"data\.tasks\.sex\.column"),
    ),
    # ---------------------------------------------------------------- numeric extremes
    Quirk(
        "overflow_float32_csv",
        "numeric",
        _with_matrix(_matrix_cell(1e39)),
        DataError,
        (MATRIX, "beyond the float32 range", r"sample '00007'", "rescale"),
    ),
    Quirk(
        "overflow_float32_parquet",
        "numeric",
        _parquet(change=lambda m: _matrix_cell(-3e40)(m).astype(float)),
        DataError,
        (r"m\.parquet", "beyond the float32 range"),
    ),
    Quirk(
        "truncated_last_row",
        "numeric",
        _truncated_last_row,
        DataError,
        (MATRIX, r"another number of fields", "cut short"),
    ),
    Quirk(
        "constant_only_matrix",
        "numeric",
        _with_matrix(_constant),
        DataError,
        (MATRIX, "every one of the 16 features is constant"),
    ),
    Quirk(
        "nan_imputed",
        "numeric",
        _with_matrix(_matrix_cell(float("nan")), "data.preprocess.missing_values=impute"),
        check=lambda got, ref: np.testing.assert_equal(got.sample_ids, ref.sample_ids),
    ),
    Quirk(
        "na_text_refused",
        "numeric",
        _with_matrix(_matrix_cell("NA")),
        DataError,
        (MATRIX, r"sample '00007'", r"missing_values=impute"),
    ),
    Quirk(
        "tiny_values",
        "numeric",
        _with_matrix(_matrix_tiny),
        check=lambda got, ref: np.testing.assert_equal(got.labels.numpy(), ref.labels.numpy()),
    ),
    Quirk(
        "non_numeric_cell",
        "numeric",
        _with_matrix(_matrix_cell("abc")),
        DataError,
        (MATRIX, r"sample '00007' / feature '\w+' = 'abc'"),
    ),
    # ---------------------------------------------------------------- anndata
    Quirk("h5ad_categorical_obs", "anndata", _h5ad()),
    Quirk(
        "h5ad_duplicated_obs_names",
        "anndata",
        _h5ad(duplicate_ids=True),
        DataError,
        (r"cohort\.h5ad", "duplicated sample ids"),
    ),
    Quirk(
        "h5ad_single_class",
        "anndata",
        _h5ad(lambda s: s.assign(sex="female")),
        DataError,
        (r"cohort\.h5ad \.obs", "single class"),
    ),
    Quirk(
        "h5ad_age_in_days",
        "anndata",
        _h5ad(_ages(lambda a: a * 365.25), None, "data.tasks.age.unit=days"),
    ),
    Quirk(
        "h5ad_nan_names_the_matrix",
        "anndata",
        _h5ad(None, lambda m: _matrix_cell(float("nan"))(m).astype(np.float32)),
        DataError,
        (r"cohort\.h5ad \.X \(data\.path\)", r"sample '00007'", "missing_values=impute"),
    ),
    Quirk(
        "h5ad_float64_overflow",
        "anndata",
        _h5ad_float64_overflow,
        DataError,
        (r"cohort\.h5ad", "beyond the float32 range"),
    ),
    # ---------------------------------------------------------------- config extremes
    Quirk(
        "seed_2_pow_32",
        "config",
        _config("seed=4294967296"),
        ConfigError,
        (r"^seed must be an integer in \[0, 4294967295\]",),
    ),
    Quirk(
        "data_seed_2_pow_32",
        "config",
        _config("data.seed=4294967296"),
        ConfigError,
        (r"data\.seed must be an integer in \[0, 4294967295\]",),
    ),
    Quirk("negative_seed", "config", _config("seed=-1"), ConfigError, (r"^seed",)),
    Quirk(
        "max_epochs_zero",
        "config",
        _config("trainer.max_epochs=0"),
        ConfigError,
        (r"trainer\.max_epochs must be an integer >= 1, got 0",),
    ),
    Quirk(
        "max_epochs_negative",
        "config",
        _config("trainer.max_epochs=-5"),
        ConfigError,
        (r"trainer\.max_epochs", "-5"),
    ),
    Quirk(
        "max_steps_zero",
        "config",
        _config("+trainer.max_steps=0"),
        ConfigError,
        (r"trainer\.max_steps must be an integer >= 1",),
    ),
    Quirk(
        "val_fraction_zero",
        "config",
        _config("data.val_fraction=0"),
        ConfigError,
        (r"data\.val_fraction must be a number in \(0, 1\)",),
    ),
    Quirk(
        "learning_rate_negative",
        "config",
        _config("model.optimizer.lr=-0.1"),
        ConfigError,
        (r"model\.optimizer\.lr",),
    ),
    Quirk(
        "age_unit_weeks",
        "config",
        _config("data.tasks.age.unit=weeks"),
        ConfigError,
        (r"data\.tasks\.age\.unit='weeks'", "days_to_birth"),
    ),
    Quirk(
        "valid_range_reversed",
        "config",
        _config("data.tasks.age.valid_range=[100,0]"),
        ConfigError,
        (r"data\.tasks\.age\.valid_range=\[100, 0\]",),
    ),
    Quirk(
        "sex_codes_bad_class",
        "config",
        _config("data.tasks.sex.codes={U: unknownsex}"),
        ConfigError,
        (r"data\.tasks\.sex\.codes", "'unknownsex'"),
    ),
]
