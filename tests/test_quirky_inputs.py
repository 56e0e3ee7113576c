"""The fuzz campaign: every quirky input is read right or refused with one named error.

Cases come from `tests/quirky_inputs.py`; the readers and validation are exercised directly
(`prepare_cohort`, `validate_config`), and a handful of cases run end to end through
`train` to show that a refused input leaves no result file behind.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from multihead.data.datamodule import prepare_cohort
from multihead.training.run import train
from multihead.training.validation import validate_config
from tests.conftest import compose_config
from tests.data_files import data_config
from tests.quirky_inputs import BASE_SAMPLES, QUIRKS, Quirk, same_cohort, table_files

#: composing data=table without files: validate_config never opens them
CONFIG_BASE = ["debug=fast", "logger=none", "data=table", "data.matrix=unset", "data.samples=unset"]

_REFERENCE: list = []


def reference(tmp_path_factory):
    """The base cohort written as plain CSV and prepared: what every quirky read must equal."""
    if not _REFERENCE:
        folder = tmp_path_factory.mktemp("reference")
        _REFERENCE.append(prepare_cohort(data_config(table_files(folder))))
    return _REFERENCE[0]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _run(overrides: list[str]):
    if Quirk.whole_config(overrides):
        return validate_config(compose_config([*CONFIG_BASE, *overrides]))
    return prepare_cohort(data_config(overrides))


def test_campaign_is_large_and_varied():
    kinds = Counter(q.kind for q in QUIRKS)
    assert len(QUIRKS) >= 60 and len({q.name for q in QUIRKS}) == len(QUIRKS)
    assert set(kinds) == {"dialect", "encoding", "ids", "labels", "numeric", "anndata", "config"}
    assert sum(q.reads for q in QUIRKS) >= 20 and sum(not q.reads for q in QUIRKS) >= 30


@pytest.mark.parametrize("quirk", QUIRKS, ids=[q.name for q in QUIRKS])
def test_quirky_input(quirk: Quirk, tmp_path, tmp_path_factory):
    overrides = quirk.build(tmp_path)
    if quirk.reads:
        (quirk.check or same_cohort)(_run(overrides), reference(tmp_path_factory))
        return
    before = _files(tmp_path)
    with pytest.raises(quirk.error) as caught:
        _run(overrides)
    message = str(caught.value)
    for pattern in quirk.patterns:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    assert "\n" not in message and "Traceback" not in message  # one paragraph, one line
    assert _files(tmp_path) == before  # the refusal wrote nothing


# ------------------------------------------------------------------------ end to end
END_TO_END = ["debug=fast", "logger=none", "trainer.max_epochs=1", "callbacks.early_stopping=null"]
_BY_NAME = {q.name: q for q in QUIRKS}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["single_class_sex", "sentinel_ages", "max_epochs_zero", "two_sex_columns"]
)
def test_refused_run_writes_no_result(name, tmp_path):
    """`train` stops before the run folder exists: no metrics, splits or checkpoints."""
    quirk = _BY_NAME[name]
    overrides = quirk.build(tmp_path / "in")
    if Quirk.whole_config(overrides):
        overrides = [*CONFIG_BASE[2:], *overrides]
    out = tmp_path / "run"
    with pytest.raises(quirk.error, match=quirk.patterns[0]):
        train(compose_config([*END_TO_END, *overrides], out))
    assert not out.exists()


@pytest.mark.slow
def test_quirky_dialects_train_end_to_end(tmp_path):
    """Semicolon + decimal-comma matrix, R-style sheet with lone-CR line ends: trains, and
    the run's split covers exactly the cohort's samples."""
    overrides = table_files(
        tmp_path / "in",
        matrix_dialect={"delimiter": ";", "decimal": ",", "preamble": ["sep=;"]},
        sheet_dialect={"r_header": True, "line_end": "\r"},
    )
    metrics = train(compose_config([*END_TO_END, *overrides], tmp_path / "run"))
    assert sum(metrics["split_sizes"].values()) == BASE_SAMPLES
    splits = (tmp_path / "run" / "splits.csv").read_text().splitlines()
    assert len(splits) == BASE_SAMPLES + 1
