"""Bad input: one DataError (or ConfigError) per case, naming file, column/key and examples."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from multihead.data.datamodule import prepare_cohort
from multihead.errors import ConfigError, DataError
from multihead.training.run import train
from multihead.training.validation import validate_config
from tests.conftest import compose_config
from tests.data_files import data_config, small_frames, write_h5ad, write_table


@pytest.fixture
def frames():
    matrix, sheet = small_frames(n_samples=120, n_features=24)
    return matrix.copy(), sheet.copy()


def prepare(*overrides: str):
    return prepare_cohort(data_config(list(overrides)))


def fails(error: type, *patterns: str, overrides: list[str]) -> str:
    """prepare_cohort raises `error` whose message contains every pattern (regex)."""
    with pytest.raises(error) as caught:
        prepare(*overrides)
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    return message


@pytest.mark.parametrize("key", ["matrix", "samples"])
def test_table_file_missing(tmp_path, frames, key):
    overrides = write_table(tmp_path, *frames)
    overrides = [
        o if not o.startswith(f"data.{key}=") else f"data.{key}={tmp_path}/nope.csv"
        for o in overrides
    ]
    fails(DataError, rf"data\.{key}: file not found: .*nope\.csv", overrides=overrides)


def test_h5ad_file_missing(tmp_path):
    fails(
        DataError,
        r"data\.path: file not found: .*gone\.h5ad",
        overrides=["data=anndata", f"data.path={tmp_path}/gone.h5ad"],
    )


@pytest.mark.parametrize(
    "name,content,pattern",
    [
        ("m.parquet", b"sample_id,a\n1,2\n", r"m\.parquet is not a parquet file"),
        ("m.csv.gz", b"sample_id,a\n1,2\n", r"m\.csv\.gz is not gzip-compressed"),
        ("m.csv", b"PAR1\x00\x01\x02binary", r"m\.csv is binary"),
        ("m.xlsx", b"whatever", r"cannot tell the format of 'm\.xlsx'"),
    ],
)
def test_file_not_the_format_its_name_says(tmp_path, frames, name, content, pattern):
    overrides = write_table(tmp_path, *frames)
    (tmp_path / name).write_bytes(content)
    overrides[1] = f"data.matrix={tmp_path / name}"
    fails(DataError, r"data\.matrix", pattern, overrides=overrides)


def test_h5ad_that_is_not_hdf5(tmp_path):
    (tmp_path / "c.h5ad").write_text("sample_id,age\n")
    fails(
        DataError,
        r"data\.path",
        r"c\.h5ad is not a h5ad file",
        overrides=["data=anndata", f"data.path={tmp_path}/c.h5ad"],
    )


def test_label_column_missing_lists_the_columns(tmp_path, frames):
    matrix, sheet = frames
    overrides = write_table(tmp_path, matrix, sheet.rename(columns={"sex": "gender"}))
    fails(
        DataError,
        r"samples\.csv",
        r"label column 'sex'",
        r"data\.tasks\.sex\.column",
        r"available columns: \['age', 'gender', 'batch'\]",
        overrides=overrides,
    )


def test_sample_ids_in_the_sheet_but_not_the_matrix(tmp_path, frames):
    matrix, sheet = frames
    extra = pd.DataFrame(
        {"sample_id": ["X1", "X2"], "age": [30, 40], "sex": ["male"] * 2, "batch": ["batch1"] * 2}
    )
    overrides = write_table(tmp_path, matrix, pd.concat([sheet, extra]))
    fails(
        DataError,
        r"2 sample ids of .*samples\.csv are not in .*matrix\.csv: 'X1', 'X2'",
        r"data\.unmatched_samples=intersect",
        overrides=overrides,
    )


def test_sample_ids_in_the_matrix_but_not_the_sheet(tmp_path, frames):
    matrix, sheet = frames
    overrides = write_table(tmp_path, matrix, sheet.iloc[3:])
    fails(
        DataError,
        r"3 sample ids of .*matrix\.csv are not in .*samples\.csv: "
        r"'00000', '00001', '00002'",
        overrides=overrides,
    )


def test_unmatched_ids_can_keep_the_intersection(tmp_path, frames):
    matrix, sheet = frames
    overrides = write_table(tmp_path, matrix, sheet.iloc[3:])
    cohort = prepare(*overrides, "data.unmatched_samples=intersect")
    assert cohort.sample_ids == list(matrix.index[3:])
    assert cohort.report["samples"]["only_in_matrix"] == 3
    standardizer = cohort.preprocessor.standardizer
    np.testing.assert_allclose(  # row i of the features is sample i of the sheet, not row i
        cohort.features.numpy()[0] * standardizer.scale + standardizer.mean,
        matrix.iloc[3].to_numpy(np.float32),
        rtol=1e-5,
    )


def test_duplicated_sample_ids_in_the_sheet(tmp_path, frames):
    matrix, sheet = frames
    sheet.loc[5, "sample_id"] = sheet.loc[4, "sample_id"]
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"samples\.csv",
        r"duplicated sample ids.*'00004'.*lines \{'00004': \[6, 7\]\}",
        overrides=overrides,
    )


def test_duplicated_sample_ids_in_the_matrix(tmp_path, frames):
    matrix, sheet = frames
    matrix.index = [*matrix.index[:-1], matrix.index[0]]
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"matrix\.csv",
        r"duplicated sample ids in the rows: '00000'",
        overrides=overrides,
    )


@pytest.mark.parametrize("orientation", ["samples_x_features", "features_x_samples"])
def test_duplicated_feature_names(tmp_path, frames, orientation):
    matrix, sheet = frames
    matrix.columns = [*matrix.columns[:-1], matrix.columns[0]]
    overrides = write_table(tmp_path, matrix, sheet, orientation=orientation)
    where = "header" if orientation == "samples_x_features" else "rows"
    fails(
        DataError,
        r"matrix\.csv",
        rf"duplicated feature names in the {where}: "
        rf"'{matrix.columns[0]}'",
        overrides=overrides,
    )


def test_duplicated_feature_names_in_h5ad(tmp_path, frames):
    matrix, sheet = frames
    matrix.columns = [*matrix.columns[:-1], matrix.columns[0]]
    path = write_h5ad(tmp_path / "c.h5ad", matrix, sheet)
    fails(
        DataError,
        r"c\.h5ad",
        r"duplicated feature names",
        r"data\.feature_column",
        overrides=["data=anndata", f"data.path={path}"],
    )


def test_non_numeric_feature_values(tmp_path, frames):
    matrix, sheet = frames
    matrix = matrix.astype(object)
    matrix.iloc[7, 2] = "n.d."
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"matrix\.csv",
        r"non-numeric values",
        rf"sample '00007' / feature '{matrix.columns[2]}' = 'n\.d\.'",
        overrides=overrides,
    )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_under_the_error_policy(tmp_path, frames, value):
    matrix, sheet = frames
    matrix.iloc[9, 4] = value
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"matrix\.csv \(data\.matrix\)",
        r"1 NaN or inf values in 1 features",
        rf"sample '00009' / feature '{matrix.columns[4]}'",
        r"data\.preprocess\.missing_values=impute",
        overrides=overrides,
    )


def test_all_missing_feature(tmp_path, frames):
    matrix, sheet = frames
    matrix.iloc[:, 6] = np.nan
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"1 features have no value in any sample",
        rf"'{matrix.columns[6]}'",
        r"missing_values=drop",
        overrides=[*overrides, "data.preprocess.missing_values=impute"],
    )


def test_non_numeric_age(tmp_path, frames):
    matrix, sheet = frames
    sheet["age"] = sheet["age"].astype(object)
    sheet.loc[11, "age"] = "about 40"
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"samples\.csv",
        r"column 'age' \(data\.tasks\.age\.column\)",
        r"non-numeric values for samples '00011=about 40'",
        overrides=overrides,
    )


def test_age_outside_the_bins(tmp_path, frames):
    matrix, sheet = frames
    sheet.loc[2, "age"] = 101
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"samples\.csv",
        r"1 values outside the bins \[18, 90\]",
        r"'00002=101'",
        r"data\.tasks\.age",
        overrides=[*overrides, "data.tasks.age.edges=[18,40,60,90]"],
    )


def test_unknown_sex_values_are_listed(tmp_path, frames):
    matrix, sheet = frames
    sheet.loc[[1, 2, 3], "sex"] = ["intersex?", "x", "x"]
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"samples\.csv",
        r"column 'sex'",
        r"distinct unknown values \['intersex\?', 'x'\]",
        r"data\.tasks\.sex\.codes",
        overrides=overrides,
    )


def test_class_too_small_for_a_stratified_split(tmp_path, frames):
    matrix, sheet = frames
    sheet["age"] = np.where(np.arange(len(sheet)) < 2, 85.0, 30.0 + np.arange(len(sheet)) % 40)
    overrides = write_table(tmp_path, matrix, sheet)
    fails(
        DataError,
        r"task 'age'",
        r"'80-90' \(2 samples\)",
        r"merge them",
        r"data\.tasks\.age\.bins",
        overrides=[*overrides, "data.tasks.age.edges=[18,50,80,90]"],
    )


def test_fewer_samples_than_the_splits_need(tmp_path, frames):
    matrix, sheet = frames
    overrides = write_table(tmp_path, matrix.iloc[:14], sheet.iloc[:14])
    fails(
        DataError,
        r"only 14 samples",
        r"data\.val_fraction=0\.15",
        r"needs at least",
        overrides=[*overrides, "data.tasks.age.bins=quantile:2"],
    )


def test_non_increasing_bin_edges(tmp_path, frames):
    overrides = write_table(tmp_path, *frames)
    cfg = compose_config([*overrides, "data.tasks.age.edges=[18,50,40,90]"])
    with pytest.raises(ConfigError, match=r"data\.tasks\.age\.edges.*strictly increasing"):
        validate_config(cfg)


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("sample_id,g1,g2\n", r"a header but no data rows"),
        ("sample_id\nA\nB\n", r"no feature names besides the id column 'sample_id'"),
    ],
)
def test_empty_matrix(tmp_path, frames, text, pattern):
    overrides = write_table(tmp_path, *frames)
    (tmp_path / "matrix.csv").write_text(text)
    fails(DataError, r"matrix\.csv", r"empty matrix", pattern, overrides=overrides)


def test_bad_input_fails_before_training_and_before_any_output(tmp_path, frames):
    matrix, sheet = frames
    sheet.loc[4, "sex"] = "x"
    overrides = write_table(tmp_path / "in", matrix, sheet)
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"unknown values \['x'\]"):
        train(compose_config([*overrides, "logger=none"], out))
    assert not out.exists() or not any(out.iterdir())  # not even config.yaml or splits.csv
