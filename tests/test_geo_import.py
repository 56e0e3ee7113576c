"""GEO series matrix -> .h5ad: the table, age and sex from the characteristics, the rest listed."""

from __future__ import annotations

import gzip
import importlib.util

import numpy as np
import pytest

from multihead.data.anndata_reader import read_anndata
from multihead.data.geo_series import parse_age, parse_sex, read_series_matrix
from multihead.data.labels import LabelPolicy, label_samples
from multihead.errors import DataError
from multihead.tasks import tasks_from_config
from tests.conftest import ROOT

SAMPLES = ["GSM1", "GSM2", "GSM3", "GSM4", "GSM5", "GSM6"]
VALUES = np.arange(18, dtype=np.float32).reshape(3, 6) / 4  # 3 probes x 6 samples


def _row(key: str, cells: list[str]) -> str:
    return "\t".join([key, *(f'"{c}"' for c in cells)]) + "\n"


def write_series(path) -> None:
    """Characteristics the way real series mix them: key order and spelling vary by sample."""
    lines = [
        _row("!Series_title", ["Blood methylation and age"]),
        _row("!Series_geo_accession", ["GSE00001"]),
        _row("!Sample_title", [f"donor {i}" for i in range(6)]),
        _row("!Sample_geo_accession", SAMPLES),
        _row(
            "!Sample_characteristics_ch1",
            ["age: 67", "age (y): 54.5", "age: 70 years", "gender: F", "age: NA", "age: 40-50"],
        ),
        _row(
            "!Sample_characteristics_ch1",
            ["gender: F", "gender: male", "gender: M", "age: 33", "gender: unknown", "gender: XX"],
        ),
        _row("!Sample_characteristics_ch1", ["tissue: blood"] * 6),
        "!series_matrix_table_begin\n",
        _row('"ID_REF"', SAMPLES).replace('""ID_REF""', '"ID_REF"'),
    ]
    for probe, row in zip(["cg01", "cg02", "cg03"], VALUES, strict=True):
        cells = ["null" if (probe == "cg02" and j == 3) else f"{v:g}" for j, v in enumerate(row)]
        lines.append("\t".join([f'"{probe}"', *cells]) + "\n")
    lines.append("!series_matrix_table_end\n")
    with gzip.open(path, "wt") as handle:
        handle.writelines(lines)


def _script():
    spec = importlib.util.spec_from_file_location("import_geo", ROOT / "scripts" / "import_geo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "text,years",
    [
        ("67", 67.0),
        ("54.5", 54.5),
        ("70 years", 70.0),
        (" 8y", 8.0),
        ("NA", None),
        ("40-50", None),
        ("", None),
    ],
)
def test_parse_age(text, years):
    assert parse_age(text) == years


@pytest.mark.parametrize(
    "text,sex",
    [
        ("F", "female"),
        ("male", "male"),
        (" Male ", "male"),
        ("XX", "female"),
        ("2", "female"),
        ("unknown", None),
        ("n/a", None),
        ("other", None),
    ],
)
def test_parse_sex(text, sex):
    assert parse_sex(text) == sex


def test_series_matrix_becomes_an_h5ad_cohort(tmp_path, capsys):
    write_series(tmp_path / "GSE00001_series_matrix.txt.gz")
    out = tmp_path / "cohort.h5ad"
    assert _script().main([str(tmp_path / "GSE00001_series_matrix.txt.gz"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "age: parsed 4 of 6 (fields 'age', 'age (y)')" in printed
    assert "sex: parsed 5 of 6" in printed
    assert "GSM5: 'NA'" in printed and "GSM6: '40-50'" in printed
    assert "GSM5: 'unknown'" in printed
    adata = read_anndata(out)
    assert list(adata.obs.index) == SAMPLES and adata.feature_names == ["cg01", "cg02", "cg03"]
    expected = VALUES.T.copy()
    expected[3, 1] = np.nan  # "null" in the table
    np.testing.assert_array_equal(adata.features, expected)
    np.testing.assert_array_equal(
        adata.obs["age"].to_numpy(float), [67, 54.5, 70, 33, np.nan, np.nan]
    )
    assert list(adata.obs["sex"]) == ["female", "male", "male", "female", None, "female"]
    assert adata.obs["characteristics: tissue"].tolist() == ["blood"] * 6
    # the labels then go through the usual policies: two samples without age are masked
    tasks = tasks_from_config(
        {
            "age": {"column": "age", "edges": [20, 50, 80]},
            "sex": {"column": "sex", "classes": ["female", "male"], "codes": "sex"},
        }
    )
    labels = label_samples(adata.obs, tasks, "cohort.h5ad", LabelPolicy(missing="mask"))
    np.testing.assert_array_equal(labels.codes, [[1, 0], [1, 1], [1, 1], [0, 0], [-1, 0]])


def test_a_file_without_the_table_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text('!Series_title\t"nothing here"\n')
    with pytest.raises(DataError, match=r"x\.txt: no data table"):
        read_series_matrix(tmp_path / "x.txt")
