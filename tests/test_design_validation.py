"""Invalid head x loss x weighting choices fail before training, saying what is allowed; the
sweep covers every design."""

from __future__ import annotations

import pytest
import yaml

from multihead.errors import ConfigError
from multihead.training.validation import validate_config
from tests.conftest import CONF, SMALL, compose_config, config_options, run_train_cli

AGE_AS_CATEGORIES = ["data.tasks.age.bins=null", "+data.tasks.age.classes=[young,old]"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["loss=regression", *AGE_AS_CATEGORIES],
            r"loss.age=regression needs a task binned from values .* but task 'age' has unordered "
            r"categories; allowed for 'age': bce, ce$",
        ),
        (
            [
                "loss=corn",
                *AGE_AS_CATEGORIES,
                "+data.tasks.age.ordered=true",
                "loss.age=regression",
            ],
            r"loss.age=regression needs .* has ordered classes; allowed for 'age': bce, ce, coral, "
            r"corn, soft$",
        ),
        (["loss=ce", "loss.sex=corn"], r"loss.sex=corn needs ordered classes .* allowed for 'sex'"),
        (["loss=soft", "loss.default=soft"], r"loss.default=soft needs ordered classes .*'sex'"),
        (["loss=ce", "loss.age=ordinal"], r"loss.age: unknown loss 'ordinal'; available: bce, ce"),
        (
            ["loss=corn", "~data.tasks.age"],
            r"loss.age names no task; the tasks are \['sex'\].* add loss.age=null",
        ),
        (
            ["loss=soft", "loss.options.soft.sigma=-1"],
            r"loss.options.soft.sigma must be a number > 0",
        ),
        (
            ["weighting=fixed", "weighting.weights={height: 2}"],
            r"names \['height'\], which are not",
        ),
        (
            ["weighting=uncertainty", "+weighting.temperature=2"],
            r"weighting='uncertainty': bad "
            r"arguments",
        ),
    ],
)
def test_invalid_design_is_named_with_what_is_allowed(overrides, message):
    cfg = compose_config([*SMALL, *overrides])
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_a_removed_task_needs_no_loss():
    validate_config(compose_config([*SMALL, "loss=corn", "~data.tasks.sex"]))  # sex: null


def test_regression_on_categories_fails_before_anything_is_written(tmp_path):
    run = run_train_cli(
        "debug=fast", "loss=regression", *AGE_AS_CATEGORIES, f"hydra.run.dir={tmp_path}"
    )
    assert run.returncode != 0
    assert "allowed for 'age': bce, ce" in run.stderr
    assert not any(tmp_path.glob("*.csv")) and not (tmp_path / "metrics.json").exists()


def test_head_vs_loss_sweeps_every_head_and_loss_over_three_folds():
    params = yaml.safe_load((CONF / "experiment" / "head_vs_loss.yaml").read_text())
    params = params["hydra"]["sweeper"]["params"]
    for group in ("head", "loss"):
        options = config_options(group)
        assert sorted(params[group].split(",")) == options, group
    assert params["data.cv.fold"] == "0,1,2"
