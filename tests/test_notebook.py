"""notebooks/analysis.ipynb is stored clean and runs top to bottom, headless, on a real sweep."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "MULTIHEAD_SWEEP_DIR" in code_cells(nb)[0].source


@pytest.fixture(scope="module")
def executed(report_sweep):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as env:  # the kernel inherits this process's environment
        env.setenv("MULTIHEAD_SWEEP_DIR", str(report_sweep.path))
        env.setenv("MULTIHEAD_REFERENCE", "fused+bce")
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    return nb


def outputs(nb, kind: str) -> list[str]:
    """Every output of the given MIME type (or 'stream' text), in order."""
    found = []
    for cell in code_cells(nb):
        for out in cell.outputs:
            assert out.output_type != "error", out
            if kind == "stream" and out.output_type == "stream":
                found.append(out.text)
            elif kind in out.get("data", {}):
                found.append(out["data"][kind])
    return found


def test_notebook_walks_through_the_answer(executed, report_sweep):
    text = "".join(outputs(executed, "stream"))
    assert str(report_sweep.path) in text
    assert "12 of 12 jobs finished" in text
    assert "On 3-fold CV x 1 partition (3 splits" in text  # the verdict
    assert "corrected t-test" in text and "fused+bce" in text
    assert "per-class TP/FP/TN/FN for fused+ce" in text
    markdown = "".join(outputs(executed, "text/markdown"))
    assert "*logistic regression*" in markdown and "balanced accuracy ↑" in markdown
    assert "## Feature attributions" in markdown
    html = "".join(outputs(executed, "text/html"))
    for column in (">tp<", ">fp<", ">tn<", ">fn<"):
        assert column in html
    # summary, 2 confusion, 2 reliability, incoherence, curves
    assert len(outputs(executed, "image/png")) == 7
