"""The house rules that a refactor can silently break: imports point down the layers, the run
folder's names are spelled in one module, and `reporting/` stays a handful of modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "multihead"
ENTRY_POINTS = {"report", "predict", "explain"}  # plus train.py outside the package
# layer of each top-level part of the package; a module may import its own layer or lower ones
LAYERS = {
    "errors": 0,
    "codings": 1,
    "tasks": 1,
    "data": 2,
    "metrics": 3,
    "models": 3,
    "components": 3,
    "run_folder": 4,
    "reporting": 5,
    "training": 6,
    "command_line": 7,
    "report": 7,
    "predict": 7,
    "explain": 7,
}


def part_of(module: str) -> str:
    """`multihead.reporting.plots` -> `reporting`."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """Every `multihead.*` module this file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("multihead."))
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out.append((".".join(("multihead", *parts)), path))
    return out


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(module, path):
    if module in ("multihead.__init__",):
        return
    own = part_of(module)
    for target in imports(path):
        theirs = part_of(target)
        assert LAYERS[theirs] <= LAYERS[own], f"{module} imports {target}: an upward import"
        if theirs == "training":
            assert own in ("training", *ENTRY_POINTS), f"{module} imports {target}"


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.name != "__pycache__"}
    parts -= {"__init__"}
    assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


def test_run_folder_names_are_spelled_once():
    """No module but run_folder.py writes a run file's name as a string literal."""
    names = re.compile(
        r"[\"'](metrics\.json|failed\.json|config\.yaml|splits\.csv|predictions\.csv|"
        r"data_report\.json|informative_features\.json|sweep_summary\.csv|multirun\.yaml|"
        r"tuning_trials\.csv|explanation\.json|attributions_summary\.csv)[\"']"
    )
    offenders = [
        str(path.relative_to(SRC))
        for _, path in modules()
        if path.name != "run_folder.py" and names.search(path.read_text())
    ]
    assert not offenders, offenders


def test_reporting_is_a_few_cohesive_modules():
    assert len(list((SRC / "reporting").glob("*.py"))) <= 8
