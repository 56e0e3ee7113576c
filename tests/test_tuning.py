"""`tune=optuna`: seeded, on train/validation only, recorded; bad spaces fail before training."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from omegaconf import OmegaConf

from multihead.data.datamodule import CohortDataModule
from multihead.data.feature_selection import FeatureRanking
from multihead.errors import ConfigError
from multihead.reporting.document import run_notes_section
from multihead.run_folder import TUNING_TRIALS_FILE
from multihead.training import tuning
from multihead.training.run import train
from multihead.training.search_space import parse_param, resolve_metric
from multihead.training.validation import validate_config

SPLITS = ("train", "val", "test")
TUNE = [
    "data.synthetic.n_samples=160",
    "data.synthetic.n_features=120",
    "data.synthetic.n_age_features=30",
    "tune=optuna",
    "tune.trials=4",
    "tune.folds=1",  # one validation split: quick; the folds have their own test below
    "tune.startup_trials=2",
    "tune.warmup_steps=5",
    "budget.min_steps=24",
    "trainer.max_epochs=1",
    "tune.space.width.high=32",
    "tune.space.top_k.choices=[20,60,null]",
]


def test_tuning_is_seeded_and_recorded(small_config, tmp_path):
    first = train(small_config(*TUNE, out="a"))
    second = train(small_config(*TUNE, out="b"))
    table_a = pd.read_csv(tmp_path / "a" / TUNING_TRIALS_FILE)
    table_b = pd.read_csv(tmp_path / "b" / TUNING_TRIALS_FILE)
    columns = ["trial", "state", "value", "lr", "weight_decay", "width", "depth", "top_k"]
    pd.testing.assert_frame_equal(table_a[columns], table_b[columns])
    assert len(table_a) == 4 and table_a["lr"].nunique() == 4
    summary = first["tuning"]
    assert summary["chosen"] == second["tuning"]["chosen"]
    assert summary["best_value"] == pytest.approx(table_a["value"].min())
    # the chosen values are the ones the final model trained with
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["tuning"]["chosen"] == summary["chosen"]
    config = (tmp_path / "a" / "config.yaml").read_text()
    assert f"width: {summary['chosen']['width']}" in config
    assert first["tasks"] == second["tasks"]
    # a choice at an end of its range is recorded (top_k: 20 is the smallest candidate)
    assert summary["at_edge"].get("top_k") == ("low" if summary["chosen"]["top_k"] == 20 else None)
    assert saved["tuning"]["at_edge"] == summary["at_edge"]


LOG_LR = {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}
TOP_K = {"type": "categorical", "choices": [32, 128, None]}


@pytest.mark.parametrize(
    ("spec", "value", "end"),
    [
        (LOG_LR, 1.2e-4, "low"),  # 4% of the way on the log scale
        (LOG_LR, 1.0e-3, None),
        (LOG_LR, 8.5e-3, "high"),  # 96.5%
        ({"type": "float", "low": 0.0, "high": 0.5}, 0.02, "low"),  # 4%
        ({"type": "float", "low": 0.0, "high": 0.5}, 0.03, None),  # 6%
        ({"type": "int", "low": 1, "high": 3}, 3, "high"),
        ({"type": "int", "low": 1, "high": 3}, 2, None),
        (TOP_K, 32, "low"),
        (TOP_K, 128, None),  # null (all features) lies beyond it
        (TOP_K, None, None),
        ({"type": "categorical", "choices": [32, 128]}, 128, "high"),
        ({"type": "categorical", "choices": ["variance", "association"]}, "variance", None),
    ],
)
def test_a_choice_at_the_edge_of_the_space_is_named(spec, value, end):
    """On the ALL cohort the tuner chose the smallest top_k candidate (128) on 14 of 15 folds
    while 32 features did far better: a choice at the end of a range says to widen it."""
    assert parse_param("x", {"key": "model.x", **spec}).edge(value) == end


def test_the_report_counts_choices_at_the_edge():
    runs = pd.DataFrame(
        {
            "status": "ok",
            "variant": "split+ce",
            "split": ["fold=0", "fold=1", "fold=2"],
            "seed": 0,
            "tuned": ["top_k=32, depth=3", "top_k=32, depth=2", "top_k=128, depth=3"],
            "tuned_at_edge": ["top_k (low), depth (high)", "top_k (low)", "depth (high)"],
        }
    )
    text = run_notes_section(runs)
    assert "top_k (low): 2 of 3" in text and "depth (high): 2 of 3" in text
    assert "Chosen at the edge" not in run_notes_section(runs.assign(tuned_at_edge=""))


def record_served_rows(monkeypatch) -> list[tuple[str, set, bool]]:
    """Every split a data module serves: (split, its sample ids, served while tuning)."""
    served: list[tuple[str, set, bool]] = []
    in_tuning = {"now": False}
    original_rows, original_tune = CohortDataModule._rows, tuning.tune

    def rows(self, split):
        ids = {self.cohort.sample_ids[i] for i in self.cohort.splits[split]}
        served.append((split, ids, in_tuning["now"]))
        return original_rows(self, split)

    def tune(cfg, cohort):
        in_tuning["now"] = True
        try:
            return original_tune(cfg, cohort)
        finally:
            in_tuning["now"] = False

    monkeypatch.setattr(CohortDataModule, "_rows", rows)
    monkeypatch.setattr(tuning, "tune", tune)
    return served


def test_trials_never_see_the_test_split(small_config, monkeypatch):
    served = record_served_rows(monkeypatch)
    train(small_config(*TUNE, "tune.trials=2", "tune.pruning=false"))
    during = {split for split, _, tuned in served if tuned}
    assert during == {"train", "val"}
    assert [split for split, _, tuned in served if not tuned].count("test") == 1


def test_linear_model_skips_what_it_does_not_have(small_config):
    metrics = train(small_config(*TUNE, "model=linear", "head=fused", "tune.trials=2"))
    assert set(metrics["tuning"]["chosen"]) == {"penalty", "top_k"}
    assert metrics["tuning"]["metric"] == "val/capped_loss"  # one penalty for every task
    skipped = {"lr", "weight_decay", "head_penalty", "width", "depth", "dropout"}
    assert set(metrics["tuning"]["skipped"]) == skipped  # head_penalty: fused has one matrix


def test_per_task_penalties_are_tuned_per_task(small_config, tmp_path):
    """`per_task: true` tunes one value per task; each trial's values and the chosen ones
    land in the table, and the final model trains with them (config.yaml)."""
    metrics = train(small_config(*TUNE, "model=linear", "head=split", "tune.trials=3"))
    chosen = metrics["tuning"]["chosen"]
    assert set(chosen) == {"head_penalty.age", "head_penalty.sex", "top_k"}
    assert "penalty" in metrics["tuning"]["skipped"]  # `heads: [fused]`: split has per-task ones
    assert metrics["tuning"]["metric"] == "val/loss"  # tune.metric=auto: each task its own model
    table = pd.read_csv(tmp_path / "run" / TUNING_TRIALS_FILE)
    assert (table["head_penalty.age"] != table["head_penalty.sex"]).all()
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.model.head_decay.age == pytest.approx(chosen["head_penalty.age"])
    assert saved.model.head_decay.sex == pytest.approx(chosen["head_penalty.sex"])


@pytest.mark.parametrize(
    "overrides,metric",
    [
        (["model=linear", "head=split"], "val/loss"),
        (["model=linear", "head=towers"], "val/loss"),
        (["model=linear", "head=separate"], "val/loss"),
        (["model=linear", "head=fused"], "val/capped_loss"),
        (["model=mlp", "head=split"], "val/capped_loss"),
        (["model=mlp", "head=separate"], "val/capped_loss"),  # width, decay: tuned for all
        (["model=linear", "head=split", "tune.metric=val/capped_loss"], "val/capped_loss"),
        (["model=mlp", "head=split", "tune.metric=val/sex/auroc"], "val/sex/auroc"),
    ],
)
def test_auto_metric_is_the_plain_sum_only_where_tasks_are_fitted_apart(
    small_config, overrides, metric
):
    assert resolve_metric(small_config(*TUNE, *overrides)) == metric


@pytest.mark.parametrize(
    "override,message",
    [
        ("tune.direction=maximize", "tune.metric=auto picks a loss"),
        ("tune.space.dropout.high=1.5", "tune.space.dropout: the value 1.5"),
        ("tune.space.lr.low=0", "log: true needs low > 0"),
        ("tune.space.width.low=600", "low < high"),
        ("+tune.space.typo={key: data.nope, low: 1, high: 2}", "not a key of this config"),
        ("tune.space.depth.type=integer", "tune.space.depth.type"),
        ("tune.trials=0", "tune.trials"),
        ("tune.metric=test/loss", "never looks at the test split"),
        ("tune.space.top_k.choices=[]", "non-empty list"),
        ("tune.space.top_k.choices=[0,10]", "model.top_k"),
        ("tune.folds=0", "tune.folds must be auto or an integer >= 1"),
        ("tune.space.head_penalty.per_task=yes", "per_task must be true or false"),
    ],
)
def test_bad_space_fails_before_training(small_config, override, message):
    cfg = small_config(*TUNE, override)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate_config(cfg)


def test_tuning_inside_a_cv_fold_never_sees_that_fold(small_config, monkeypatch):
    """Nested: with data.cv the trials train and validate on the other folds only."""
    served = record_served_rows(monkeypatch)
    train(small_config(*TUNE, "tune.trials=2", "data.cv.folds=3", "data.cv.fold=1"))
    seen = [ids for _, ids, tuned in served if tuned]
    tested = [ids for split, ids, tuned in served if split == "test" and not tuned]
    assert seen and len(tested) == 1
    assert all(not (ids & tested[0]) for ids in seen)


def test_folds_score_a_trial_on_every_non_test_sample(small_config, monkeypatch):
    """tune.folds=3: each trial trains three times, validating once on each third of the
    job's training + validation samples (never a test one); its value is the mean."""
    served = record_served_rows(monkeypatch)
    metrics = train(small_config(*TUNE, "tune.trials=2", "tune.folds=3", "tune.pruning=false"))
    trials = metrics["tuning"]["table"]
    assert metrics["tuning"]["folds"] == 3
    tuned_val = [ids for split, ids, tuned in served if tuned and split == "val"]
    tested = [ids for split, ids, tuned in served if split == "test" and not tuned][0]
    final = [ids for split, ids, tuned in served if not tuned and split in ("train", "val")]
    non_test = set().union(*final)
    # the three validation folds of a trial partition the job's train + validation samples
    for first in range(0, len(tuned_val), 3):
        folds = tuned_val[first : first + 3]
        assert set().union(*folds) == non_test
        assert sum(len(f) for f in folds) == len(non_test)
    assert all(not (ids & tested) for _, ids, tuned in served if tuned)
    for trial in trials:
        assert len(trial["fold_values"]) == 3
        assert trial["value"] == pytest.approx(sum(trial["fold_values"]) / 3, rel=1e-5)


def test_each_fold_ranks_features_on_its_own_training_rows(small_config, monkeypatch):
    """`model.select` in the space: a fold's association ranking reads that fold's training
    rows only, never the fold it is validated on, and the chosen ranking is recorded."""
    ranked: list[tuple[frozenset, frozenset, frozenset]] = []
    original = FeatureRanking.order

    def order(self, cohort, select):
        if select == "association":
            ranked.append(tuple(frozenset(cohort.splits[s].tolist()) for s in SPLITS))
        return original(self, cohort, select)

    monkeypatch.setattr(FeatureRanking, "order", order)
    metrics = train(
        small_config(
            *TUNE,
            "tune.trials=3",
            "tune.folds=3",
            "tune.pruning=false",
            "tune.space.top_k.choices=[20]",
            "+tune.space.select={key: model.select, type: categorical, choices: [association]}",
        )
    )
    assert metrics["tuning"]["chosen"]["select"] == "association"
    assert metrics["num_features"] == 20
    splits = set(ranked)
    assert len(splits) == 4  # three folds, then the job's own split for the final model
    for train_rows, val_rows, test_rows in splits:
        assert train_rows and val_rows
        assert not train_rows & val_rows and not train_rows & test_rows
    folds = [s for s in splits if len(s[0]) < max(len(t) for t, _, _ in splits)]
    assert len(folds) == 3 and len(set().union(*(v for _, v, _ in folds))) == sum(
        len(v) for _, v, _ in folds
    )
