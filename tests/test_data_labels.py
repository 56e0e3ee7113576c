"""Label policies: quantile bins, ordered categories, out-of-range, sex codings, missing labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multihead.data.datamodule import prepare_cohort
from multihead.data.labels import LabelPolicy, label_samples
from multihead.data.splits import stratified_split
from multihead.errors import ConfigError, DataError
from multihead.tasks import tasks_from_config
from tests.conftest import compose_config
from tests.data_files import data_config, small_frames, write_table

AGE = {"age": {"column": "age", "edges": [20, 40, 60, 80]}}
SEX = {"sex": {"column": "sex", "classes": ["female", "male"], "codes": "sex"}}


def test_quantile_bins_have_equal_counts_and_data_edges():
    ages = pd.Series(np.random.default_rng(0).uniform(20, 80, size=400))
    tasks = tasks_from_config({"age": {"column": "age", "bins": "quantile:4"}})
    out = label_samples(pd.DataFrame({"age": ages}), tasks, "t")
    edges = np.array(out.tasks[0].edges)
    expected = np.quantile(ages, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(edges, expected, atol=0.1)  # 3 significant digits, ends outwards
    assert edges[0] <= ages.min() and edges[-1] >= ages.max()  # every value inside the bins
    counts = np.bincount(out.codes[:, 0], minlength=4)
    assert counts.min() >= 95 and counts.sum() == 400
    np.testing.assert_array_equal(
        out.codes[:, 0], np.clip(np.searchsorted(edges, ages, side="right") - 1, 0, 3)
    )
    assert out.tasks[0].classes[0] == f"{edges[0]:g}-{edges[1]:g}"


def test_quantile_bins_on_tied_values_are_refused():
    tasks = tasks_from_config({"age": {"column": "age", "bins": "quantile:4"}})
    with pytest.raises(DataError, match="repeated edges.*fewer quantiles"):
        label_samples(pd.DataFrame({"age": [30] * 50 + [31, 60]}), tasks, "t")


def test_bad_quantile_spec_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.tasks\.age\.bins"):
        tasks_from_config({"age": {"column": "age", "bins": "quantiles:four"}})


def test_ordered_age_categories_follow_config_order():
    tasks = tasks_from_config(
        {"age": {"column": "age_group", "ordered": True, "classes": ["young", "middle", "old"]}}
    )
    sheet = pd.DataFrame({"age_group": ["old", "young", " Middle", "middle", "OLD"]})
    out = label_samples(sheet, tasks, "t")
    np.testing.assert_array_equal(out.codes[:, 0], [2, 0, 1, 1, 2])
    assert out.tasks[0].ordered and out.tasks[0].classes == ("young", "middle", "old")


@pytest.mark.parametrize(
    "policy,codes,kept",
    [
        ("clip", [0, 0, 1, 2, 2, 2], 6),
        ("drop", [0, 1, 2, 2], 4),
    ],
)
def test_out_of_range_clip_or_drop_with_counts(policy, codes, kept):
    tasks = tasks_from_config(AGE)
    sheet = pd.DataFrame({"age": [12, 25, 45, 79, 80, 97]}, index=list("abcdef"))
    out = label_samples(sheet, tasks, "t", LabelPolicy(out_of_range=policy))
    np.testing.assert_array_equal(out.codes[:, 0], codes)
    assert out.keep.sum() == kept
    assert out.report["age"][f"out_of_range_{policy}"] == 2
    assert out.report["samples"]["dropped"] == 6 - kept


def test_out_of_range_error_suggests_the_policies():
    tasks = tasks_from_config(AGE)
    with pytest.raises(DataError, match="outside the bins.*'f=97'.*out_of_range=clip or drop"):
        label_samples(pd.DataFrame({"age": [25, 97]}, index=["e", "f"]), tasks, "sheet.csv")


def test_sex_codings_are_normalised():
    raw = ["M", "f", " Male", "FEMALE", "1", "2", "XY", "xx", "woman", "Men"]
    out = label_samples(pd.DataFrame({"sex": raw}), tasks_from_config(SEX), "t")
    np.testing.assert_array_equal(out.codes[:, 0], [1, 0, 1, 0, 1, 0, 1, 0, 0, 1])


def test_sex_coding_override_in_config():
    spec = {
        "sex": {"column": "sex", "classes": ["female", "male"], "codes": {0: "female", 1: "male"}}
    }
    out = label_samples(
        pd.DataFrame({"sex": ["0", "1", "0", "male"]}), tasks_from_config(spec), "t"
    )
    np.testing.assert_array_equal(out.codes[:, 0], [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"unknown values \['0'\].*codes"):  # 0/1 is ambiguous
        label_samples(pd.DataFrame({"sex": ["0", "1"]}), tasks_from_config(SEX), "t")


def test_sex_coding_to_an_unknown_class_is_a_config_error():
    spec = {"sex": {"column": "sex", "classes": ["female", "male"], "codes": {"w": "woman"}}}
    with pytest.raises(ConfigError, match=r"data\.tasks\.sex\.codes.*'woman'"):
        tasks_from_config(spec)


def _gappy_sheet() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [25, None, 45, 70, None, 50], "sex": ["F", "M", None, "unknown", None, "M"]},
        index=list("abcdef"),
    )


def test_missing_labels_drop_removes_the_samples():
    tasks = tasks_from_config({**AGE, **SEX})
    out = label_samples(_gappy_sheet(), tasks, "t", LabelPolicy(missing="drop"))
    np.testing.assert_array_equal(out.keep, [True, False, False, False, False, True])
    np.testing.assert_array_equal(out.codes, [[0, 0], [1, 1]])
    assert out.report["age"]["missing"] == 2 and out.report["sex"]["missing"] == 3


def test_missing_labels_mask_keeps_the_sample_for_its_other_tasks():
    tasks = tasks_from_config({**AGE, **SEX})
    out = label_samples(_gappy_sheet(), tasks, "t", LabelPolicy(missing="mask"))
    # e has no label at all: nothing to learn from, so it is dropped; the rest keep -1 gaps
    np.testing.assert_array_equal(out.keep, [True, True, True, True, False, True])
    np.testing.assert_array_equal(out.codes, [[0, 0], [-1, 1], [1, -1], [2, -1], [1, 1]])
    assert out.report["sex"] == {"labelled": 3, "missing": 3}
    assert out.report["samples"]["dropped"] == 1


def test_masked_labels_are_not_a_class_in_the_split_check():
    labels = np.array([[0, 0]] * 30 + [[1, 1]] * 30 + [[0, -1]] * 2 + [[1, -1]])
    splits = stratified_split(labels, ["age", "sex"], 0.15, 0.15, seed=0)
    assert sum(len(s) for s in splits.values()) == len(labels)


def test_masked_cohort_keeps_gaps_through_preparation(tmp_path):
    matrix, sheet = small_frames(n_samples=200, n_features=24)
    sheet.loc[[3, 50, 120], "sex"] = None
    sheet.loc[[7, 50], "age"] = None
    overrides = write_table(tmp_path, matrix, sheet)
    cohort = prepare_cohort(data_config([*overrides, "data.labels.missing=mask"]))
    labels = cohort.labels.numpy()
    assert len(cohort.sample_ids) == 199  # sample 50 lost both labels
    assert (labels[:, 1] == -1).sum() == 2 and (labels[:, 0] == -1).sum() == 1
    masked = [cohort.sample_ids[i] for i in np.flatnonzero(labels[:, 1] == -1)]
    assert masked == [sheet.sample_id[3], sheet.sample_id[120]]
    assert cohort.report["labels"]["sex"]["missing"] == 3


def test_a_cohort_with_one_task_only(tmp_path):
    matrix, sheet = small_frames(n_samples=150, n_features=24)
    overrides = write_table(tmp_path, matrix, sheet.drop(columns=["sex"]))
    cohort = prepare_cohort(compose_config([*overrides, "~data.tasks.sex"]).data)  # as Hydra does
    assert [t.name for t in cohort.tasks] == ["age"] and cohort.labels.shape == (150, 1)
