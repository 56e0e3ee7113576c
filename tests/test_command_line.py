"""The first hour on the command line: one-line errors, hints that name the right fix, a help
that lists the real choices, and the report on a single run or on no sweep at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from rich.console import Console

from multihead.command_line import command_line_hint, config_choices
from multihead.report import main as report_main
from multihead.reporting.runs import load_runs
from multihead.reporting.tables import sweep_table
from tests.conftest import CONF, ROOT, run_train_cli


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def test_a_project_error_is_one_line_and_exit_2(tmp_path):
    args = (
        "data=table",
        f"data.matrix={tmp_path / 'missing.csv'}",
        f"data.samples={tmp_path / 'sheet.csv'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    result = run_train_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: DataError:"), result.stderr
    assert "sheet.csv" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()

    full = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert full.returncode != 0 and "Traceback" in full.stderr


def test_a_data_key_without_its_data_config_names_the_config(tmp_path):
    result = run_train_cli("data.matrix=x.csv", "data.samples=s.csv")
    assert result.returncode == 2
    message = last_line(result.stderr)
    assert "data.matrix is a setting of data=table" in message
    assert "add data=table" in message and "Traceback" not in result.stderr
    # with the right data config chosen, there is nothing to hint
    assert command_line_hint(["data=table", "data.matrix=x.csv"], CONF) is None
    assert command_line_hint(["data.seed=3", "data.tasks.age.bins=quantile:3"], CONF) is None
    assert "data=anndata" in command_line_hint(["data.path=x.h5ad"], CONF)


@pytest.mark.parametrize("value", ["runs/final(1).csv", "cohort [final].csv", "x{1}.csv"])
def test_brackets_in_a_path_get_a_quoting_hint(value):
    hint = command_line_hint(["data=table", f"data.matrix={value}"], CONF)
    assert hint is not None and f"'data.matrix=\"{value}\"'" in hint


def test_quoted_paths_and_sweeps_need_no_hint():
    args = ['data.matrix="runs/final(1).csv"', "head=fused,split", "loss=bce,ce", "seed=0"]
    assert command_line_hint(["data=table", *args], CONF) is None
    assert command_line_hint(["-m", "--cfg", "job", "~data.tasks.age"], CONF) is None


def test_help_shows_the_main_commands_and_only_real_choices():
    result = run_train_cli("--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "python train.py -m head=fused,split loss=bce,ce" in text
    assert "python -m multihead.report" in text and "HYDRA_FULL_ERROR=1" in text
    assert "shared" not in text
    for group in ("data", "head", "loss", "weighting", "model", "trainer", "logger"):
        options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert f"  {group}: {', '.join(options)}" in text
    assert config_choices(CONF) in text


def fake_job(folder, head="fused", loss="bce", seed=0, matrix="a.csv"):
    folder.mkdir(parents=True)
    (folder / ".hydra").mkdir()
    overrides = [f"head={head}", f"loss={loss}", f"seed={seed}", f"data.matrix={matrix}"]
    (folder / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
    (folder / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")
    metrics = {
        "tasks": {"sex": {"balanced_accuracy": 0.9, "n": 10}},
        "joint_accuracy": 0.9,
        "head": head,
        "loss": loss,
        "seed": seed,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_the_report_reads_a_single_run_folder_as_one_job(tmp_path):
    run = fake_job(tmp_path / "run")
    runs = load_runs(run)
    assert len(runs) == 1 and runs.loc[0, "status"] == "ok"  # `.hydra` is not a failed job
    assert runs.loc[0, "variant"] == "fused+bce"


def test_the_report_says_what_to_do_without_a_sweep(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_main([str(empty), "--no-baselines"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python train.py -m" in err
    assert report_main([str(tmp_path / "nope")]) == 2
    made = subprocess.run(
        ["make", "-s", "report", "DIR="], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert made.returncode != 0 and "make sweep" in made.stderr


def test_sweep_table_states_constant_overrides_once(tmp_path):
    frame = pd.DataFrame(
        [
            {"job": "0", "overrides": "", "head": h, "data.matrix": "/data/x.csv", "status": "ok"}
            | {"sex/balanced_accuracy": 0.9}
            for h in ("fused", "split")
        ]
    )
    table = sweep_table(frame, "t").renderables[-1]
    headers = [str(c.header) for c in table.columns]
    assert "head" in headers and "data.matrix" not in headers
    console = Console(width=200, record=True)
    console.print(sweep_table(frame, "t"))
    text = console.export_text()
    assert text.count("/data/x.csv") == 1 and "every job: data.matrix=/data/x.csv" in text


def test_one_split_says_first_that_it_has_too_few_replicates(tmp_path):
    from multihead.reporting.document import build_report

    for num, (head, loss) in enumerate([("fused", "bce"), ("split", "ce")]):
        job = fake_job(tmp_path / f"{num}_head={head},loss={loss}", head=head, loss=loss)
        overrides = [f"head={head}", f"loss={loss}", "data.tasks.age.bins=quantile:3"]
        (job / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
    report = build_report(tmp_path, baselines=False)
    first = report.verdict[0]
    assert first.startswith("Too few replicates")
    assert "python train.py -m head=fused,split loss=bce,ce data.tasks.age.bins=quantile:3" in first
    assert "data.cv.folds=5 data.cv.fold=0,1,2,3,4" in first
    text = report.markdown_path.read_text()
    assert text.index(first) < text.index("## Summary")


def test_the_report_shows_collapsed_heads_and_tuned_values(tmp_path):
    from multihead.reporting.document import build_report

    for num, head in enumerate(("fused", "split")):
        job = fake_job(tmp_path / f"{num}_head={head}", head=head)
        metrics = json.loads((job / "metrics.json").read_text())
        metrics["tasks"]["sex"]["warnings"] = ["predicts 'male' for 97 of 100 test samples"]
        metrics["tuning"] = {"chosen": {"lr": 0.0031234, "depth": 2}}
        metrics["stop_reason"] = "early stopping"
        (job / "metrics.json").write_text(json.dumps(metrics))
    report = build_report(tmp_path, baselines=False)
    text = report.markdown_path.read_text()
    section = text.split("## What the jobs reported", 1)[1].split("## Plots", 1)[0]
    assert "Collapsed or chance-level heads** (2 of 2 jobs)" in section
    assert "| fused+bce | sex | 1 of 1 | predicts 'male' for 97 of 100" in section
    assert "lr=0.00312, depth=2" in section and "early stopping (1)" in section
