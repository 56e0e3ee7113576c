"""GEO series matrix files (`GSExxxx_series_matrix.txt.gz`) -> samples x features + labels.

A series matrix is a header of `!Series_...` and `!Sample_...` lines (one tab-separated,
quoted value per sample) followed by the data table between `!series_matrix_table_begin`
and `!series_matrix_table_end`, features as rows. Age and sex hide in the free-text
`!Sample_characteristics_ch1` lines as `key: value`; how they are written varies by series,
so every sample whose age or sex could not be read is reported with its raw text.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from multihead.codings import SEX, normalise
from multihead.data.examples import duplicated, examples
from multihead.errors import DataError

TABLE_BEGIN = "!series_matrix_table_begin"
TABLE_END = "!series_matrix_table_end"
CHARACTERISTICS = "!Sample_characteristics_ch1"

AGE_KEY = re.compile(r"^age\b", re.IGNORECASE)
SEX_KEY = re.compile(r"^(sex|gender)\b", re.IGNORECASE)
AGE_VALUE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(?:y|yr|yrs|year|years|years old|yo|y\.o\.)?\s*$", re.IGNORECASE
)


@dataclass
class SeriesMatrix:
    """The data table (samples x features) and one row of sample metadata per sample."""

    values: np.ndarray
    sample_ids: list[str]
    feature_names: list[str]
    samples: pd.DataFrame  # indexed by GSM id: title, characteristics as key columns
    series: dict[str, str] = field(default_factory=dict)


def parse_age(text: object) -> float | None:
    """'67', '67.5', '67 years', '67y' -> years; anything else (ranges, 'NA') -> None."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    match = AGE_VALUE.match(str(text))
    return float(match.group(1)) if match else None


def parse_sex(text: object) -> str | None:
    """'F', 'male', 'Female ', 'XY' -> 'female'/'male'; unknown codings -> None."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    return SEX.get(normalise(text))


def _open(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return (
        gzip.open(path, "rt", encoding="utf-8", errors="replace")
        if gzipped
        else open(path, encoding="utf-8", errors="replace")
    )


def _split(line: str) -> list[str]:
    return next(csv.reader([line.rstrip("\n")], delimiter="\t"))


def _characteristics(rows: list[list[str]], n_samples: int) -> dict[str, list[str | None]]:
    """`key: value` cells of every characteristics line -> key -> value per sample."""
    out: dict[str, list[str | None]] = {}
    for row in rows:
        for j, cell in enumerate(row[:n_samples]):
            key, sep, value = cell.partition(":")
            if not sep:
                continue
            column = out.setdefault(key.strip(), [None] * n_samples)
            column[j] = value.strip()
    return out


def read_series_matrix(path: str | Path) -> SeriesMatrix:
    """Parse the file; a file without the table markers is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"series matrix not found: {path}")
    meta: dict[str, list[str]] = {}
    characteristics: list[list[str]] = []
    series: dict[str, str] = {}
    table_lines: list[str] = []
    with _open(path) as handle:
        in_table = False
        for line in handle:
            if line.startswith(TABLE_BEGIN):
                in_table = True
            elif line.startswith(TABLE_END):
                in_table = False
            elif in_table:
                table_lines.append(line)
            elif line.startswith(CHARACTERISTICS):
                characteristics.append(_split(line)[1:])
            elif line.startswith("!Sample_"):
                fields = _split(line)
                meta.setdefault(fields[0][len("!Sample_") :], fields[1:])
            elif line.startswith("!Series_"):
                fields = _split(line)
                series.setdefault(fields[0][len("!Series_") :], " ".join(fields[1:]))
    if not table_lines:
        raise DataError(
            f"{path}: no data table between {TABLE_BEGIN} and {TABLE_END}; "
            "is it a GEO series matrix file?"
        )
    table = pd.read_csv(
        io.StringIO("".join(table_lines)),
        sep="\t",
        index_col=0,
        na_values=["null", "NULL", "NA", ""],
        dtype={0: str},
    )
    sample_ids = [str(c) for c in table.columns]
    text = [c for c, t in table.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
    if text:
        raise DataError(
            f"{path}: non-numeric values in the data table for samples {examples(text)}"
        )
    dups = duplicated([str(i) for i in table.index])
    if dups:
        raise DataError(f"{path}: duplicated feature ids (ID_REF) {examples(dups)}")
    samples = pd.DataFrame(index=pd.Index(sample_ids, name="sample_id"))
    for key in ("title", "source_name_ch1"):
        if key in meta and len(meta[key]) >= len(sample_ids):
            samples[key] = meta[key][: len(sample_ids)]
    for key, values in _characteristics(characteristics, len(sample_ids)).items():
        samples[key] = values
    return SeriesMatrix(
        table.to_numpy(np.float32).T.copy(),
        sample_ids,
        [str(i) for i in table.index],
        samples,
        series,
    )


@dataclass
class ParsedLabels:
    """Age (years) and sex ('female'/'male') per sample, NaN/None where unreadable."""

    age: pd.Series
    sex: pd.Series
    keys: dict[str, list[str]]  # label -> characteristics keys it was read from
    unparsed: dict[str, list[tuple[str, str]]]  # label -> (sample, raw text)


def _first_present(samples: pd.DataFrame, sample: str, keys: list[str]) -> str | None:
    """Series spell a key differently from sample to sample ('age', 'age (y)')."""
    for key in keys:
        value = samples.at[sample, key]
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            return str(value)
    return None


def parse_labels(samples: pd.DataFrame) -> ParsedLabels:
    """Find the age and sex characteristics and parse them, keeping what failed."""
    columns = [str(c) for c in samples.columns]
    keys = {
        "age": [c for c in columns if AGE_KEY.search(c.strip())],
        "sex": [c for c in columns if SEX_KEY.search(c.strip())],
    }
    unparsed: dict[str, list[tuple[str, str]]] = {"age": [], "sex": []}
    age = pd.Series(np.nan, index=samples.index, dtype=float)
    sex = pd.Series(None, index=samples.index, dtype=object)
    for label, parse, out in (("age", parse_age, age), ("sex", parse_sex, sex)):
        for sample in samples.index:
            raw = _first_present(samples, sample, keys[label])
            value = parse(raw) if raw is not None else None
            if value is None:
                unparsed[label].append((sample, "(no field)" if raw is None else raw))
            else:
                out[sample] = value
    return ParsedLabels(age, sex, keys, unparsed)


def to_anndata(matrix: SeriesMatrix, labels: ParsedLabels):
    """An AnnData with `.obs` age, sex and the raw characteristics, `.var_names` = ID_REF."""
    import anndata

    obs = matrix.samples.copy()
    obs.columns = [
        f"characteristics: {c}" if c not in ("title", "source_name_ch1") else c for c in obs.columns
    ]
    obs["age"] = labels.age.astype(float)
    obs["sex"] = labels.sex.astype(object)
    for column in obs.columns.drop("age"):  # text with NaN gaps: anndata stores categoricals
        obs[column] = obs[column].astype(object).where(obs[column].notna(), np.nan)
    var = pd.DataFrame(index=pd.Index(matrix.feature_names, name="feature"))
    adata = anndata.AnnData(X=matrix.values, obs=obs, var=var)
    adata.uns["geo_series"] = {
        k: v for k, v in matrix.series.items() if k in ("title", "geo_accession", "platform_id")
    }
    return adata
