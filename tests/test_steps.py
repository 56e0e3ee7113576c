"""Several optimizer steps a call (`training/steps.py`): device placement hands chunks of
batches to one `training_step`; the batches, the random draws, the step counts and so the
results are exactly those of one step a call, and chunks are used only where that holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from multihead.data.datamodule import CohortDataModule, prepare_cohort
from multihead.data.placement import DeviceBatches, StepChunk
from multihead.run_folder import BEST_CHECKPOINT, LAST_CHECKPOINT, METRICS_FILE
from multihead.training import steps
from multihead.training.budget import apply_budget
from multihead.training.builders import build_datamodule, build_module, build_trainer
from multihead.training.module import MultiHeadModule
from multihead.training.run import train
from multihead.training.steps import STEPS_PER_CALL, why_one_step
from tests.conftest import SMALL, compose_config
from tests.test_resume import Interrupted, comparable, killing_after

BATCH = ["data.batch_size=32"]  # 350 training samples: 11 steps an epoch, the last short
CHUNKED = 4  # chunks of 4, 4, 3: several calls an epoch, one cut by the epoch's end


@pytest.fixture(scope="module")
def cohort():
    return prepare_cohort(compose_config(SMALL).data)


def loader(cohort, steps_per_call: int, batch_size: int = 32) -> DeviceBatches:
    datamodule = CohortDataModule(cohort, batch_size, 256, shuffle_seed=5, placement="device")
    datamodule.steps_per_call = steps_per_call
    return datamodule.train_dataloader()


def fetched(batches, draw: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch as Lightning's fetcher takes it (one batch ahead): each batch's rows, with
    the shuffling generator's and the global generator's states when it is handed out."""
    taken = []
    for batch in batches:
        taken.append((batch["index"], draw.get_state(), torch.get_rng_state()))
    return taken


def flat(loader: DeviceBatches):
    """A chunked epoch's batches in order, each drawn as a training step takes it."""
    for chunk in _ahead(iter(loader)):
        assert isinstance(chunk, StepChunk)
        yield from chunk


def _ahead(iterator):
    """Lightning's prefetching fetcher: the next item is fetched before this one is used."""
    coming = next(iterator, None)
    while coming is not None:
        current, coming = coming, next(iterator, None)
        yield current


@pytest.mark.parametrize("batch_size", [32, 35])  # a short last batch; 10 full ones
@pytest.mark.parametrize("per_call", [1, 4, 16])
def test_chunks_hold_the_epochs_batches_drawn_at_the_same_moments(cohort, batch_size, per_call):
    plain = loader(cohort, 1, batch_size)
    chunked = loader(cohort, per_call, batch_size)
    batches = plain.batches_per_epoch()
    assert len(chunked) == -(-batches // per_call)
    torch.manual_seed(0)
    want = [fetched(_ahead(iter(plain)), plain.generator) for _ in range(3)]
    torch.manual_seed(0)
    got = [
        fetched(flat(chunked) if per_call > 1 else _ahead(iter(chunked)), chunked.generator)
        for _ in range(3)
    ]
    for want_epoch, got_epoch in zip(want, got, strict=True):
        assert len(got_epoch) == batches
        for (rows, draw, rng), (rows2, draw2, rng2) in zip(want_epoch, got_epoch, strict=True):
            assert torch.equal(rows, rows2)
            assert torch.equal(draw, draw2) and torch.equal(rng, rng2)
    assert torch.equal(plain.generator.get_state(), chunked.generator.get_state())


def test_chunk_sizes_stop_at_the_epochs_end(cohort):
    chunks = list(iter(loader(cohort, CHUNKED)))
    assert [len(c) for c in chunks] == [4, 4, 3]
    assert len(list(iter(loader(cohort, STEPS_PER_CALL)))) == 1


class Record(pl.Callback):
    """What the fit ran: batches per call, optimizer steps, loggers' step at each validation."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.logged_steps: list[int] = []
        self.steps_per_call = None

    def on_train_start(self, trainer, pl_module):
        self.steps_per_call = pl_module.steps_per_call

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.calls.append(len(batch) if isinstance(batch, StepChunk) else 1)

    def on_validation_start(self, trainer, pl_module):
        self.logged_steps.append(trainer.fit_loop.epoch_loop._batches_that_stepped)


def fit(cohort, tmp_path: Path, per_call: int, *overrides: str, callbacks=()):
    """A fit as a job runs it, with at most `per_call` steps a call."""
    cfg = compose_config([*SMALL, *BATCH, *overrides], tmp_path / f"fit{per_call}")
    apply_budget(cfg, len(cohort.splits["train"]))  # as a job does
    module = build_module(cfg, cohort, output_dir=None)
    module.most_steps_per_call = per_call
    datamodule = build_datamodule(cfg, cohort)
    trainer = build_trainer(cfg, tmp_path / f"fit{per_call}")
    record = Record()
    trainer.callbacks.extend([record, *callbacks])
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, datamodule, record


def assert_same_fit(one, many) -> None:
    module, trainer, datamodule, _ = one
    module2, trainer2, datamodule2, _ = many
    state, state2 = module.state_dict(), module2.state_dict()
    assert state.keys() == state2.keys()
    assert all(torch.equal(state[k], state2[k]) for k in state)
    opt, opt2 = trainer.optimizers[0].state_dict(), trainer2.optimizers[0].state_dict()
    for key, values in opt["state"].items():
        assert all(torch.equal(v, opt2["state"][key][n]) for n, v in values.items())
    assert trainer.global_step == trainer2.global_step
    assert trainer.current_epoch == trainer2.current_epoch
    loop, loop2 = trainer.fit_loop.epoch_loop, trainer2.fit_loop.epoch_loop
    assert loop._batches_that_stepped == loop2._batches_that_stepped
    metrics, metrics2 = trainer.callback_metrics, trainer2.callback_metrics
    assert metrics.keys() == metrics2.keys()
    same = [torch.equal(torch.as_tensor(metrics[k]), torch.as_tensor(metrics2[k])) for k in metrics]
    differ = [k for k, equal in zip(metrics, same, strict=True) if not equal]
    assert differ == [], {k: (metrics[k], metrics2[k]) for k in differ}
    assert torch.equal(datamodule.shuffle.get_state(), datamodule2.shuffle.get_state())
    assert one[3].logged_steps == many[3].logged_steps


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.max_epochs=3"],
        ["trainer.max_epochs=3", "weighting=uncertainty", "loss=ce"],
        # max_steps inside a chunk: a 4-chunk is cut at step 13, a 16-chunk (the epoch) too
        ["trainer.max_epochs=3", "++trainer.max_steps=14"],
        # the step budget: validation every 2 epochs (22 steps), early stopping in steps
        [
            "budget.min_steps=60",
            "budget.val_every_steps=22",
            "budget.patience_steps=22",
            "callbacks.early_stopping={_target_:pytorch_lightning.callbacks.EarlyStopping,"
            "monitor:val/capped_loss,mode:min,patience:6}",
        ],
    ],
    ids=["plain", "uncertainty", "max-steps", "budget"],
)
def test_a_chunked_fit_equals_one_step_a_call(cohort, tmp_path, overrides):
    one = fit(cohort, tmp_path, 1, *overrides)
    assert one[3].steps_per_call == 1 and set(one[3].calls) == {1}
    for per_call in (CHUNKED, STEPS_PER_CALL):
        many = fit(cohort, tmp_path, per_call, *overrides)
        assert many[3].steps_per_call == per_call
        assert sum(many[3].calls) >= many[1].global_step and max(many[3].calls) > 1
        assert_same_fit(one, many)
    if "++trainer.max_steps=14" in overrides:
        assert one[1].global_step == 14 and many[3].calls[-1] == 11  # a chunk, cut at 3 steps


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=linear"],  # L-BFGS
        ["++trainer.gradient_clip_val=1.0"],
        ["++trainer.accumulate_grad_batches=2"],
        ["weighting=pcgrad"],
        ["data.placement=host"],
        ["++trainer.val_check_interval=5"],  # validation within an epoch
    ],
    ids=["lbfgs", "clipping", "accumulation", "pcgrad", "host", "mid-epoch-validation"],
)
def test_one_step_a_call_where_chunks_are_not_safe(cohort, tmp_path, overrides):
    _, trainer, _, record = fit(
        cohort, tmp_path, STEPS_PER_CALL, "trainer.max_epochs=2", *overrides
    )
    assert record.steps_per_call == 1
    assert set(record.calls) == {1}
    assert why_one_step(trainer, trainer.lightning_module) is not None


def test_chunks_are_the_default_on_the_device_path(cohort, tmp_path):
    assert MultiHeadModule.most_steps_per_call == STEPS_PER_CALL
    cfg = compose_config([*SMALL, *BATCH, "trainer.max_epochs=1"], tmp_path)
    module = build_module(cfg, cohort, output_dir=None)
    trainer = build_trainer(cfg, tmp_path)
    record = Record()
    trainer.callbacks.append(record)
    trainer.fit(module, datamodule=build_datamodule(cfg, cohort))
    assert record.steps_per_call == STEPS_PER_CALL and record.calls == [11]
    assert steps.hooks_left_out(trainer, module)  # torch's backward and step, called directly
    assert trainer.global_step == 11
    assert module.automatic_optimization  # left as it was for the next fit


class StepHooks(pl.Callback):
    """Counts the hooks Lightning calls around every backward and optimizer step."""

    def __init__(self) -> None:
        self.calls = {hook: 0 for hook in steps.STEP_HOOKS}

    def on_before_backward(self, trainer, pl_module, loss):
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer, pl_module):
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls["on_before_optimizer_step"] += 1


def test_hooks_around_backward_and_step_run_once_a_step(cohort, tmp_path):
    """A callback with such a hook: chunks go through Lightning's backward and step."""
    hooks, hooks2 = StepHooks(), StepHooks()
    one = fit(cohort, tmp_path, 1, "trainer.max_epochs=3", callbacks=[hooks])
    many = fit(cohort, tmp_path, CHUNKED, "trainer.max_epochs=3", callbacks=[hooks2])
    assert not steps.hooks_left_out(many[1], many[0])
    assert hooks.calls == hooks2.calls == {hook: 33 for hook in steps.STEP_HOOKS}
    assert_same_fit(one, many)


def read_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_checkpoints(out: Path, other: Path) -> None:
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        a, b = read_checkpoint(out / name), read_checkpoint(other / name)
        assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
        assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())


@pytest.mark.slow
@pytest.mark.parametrize("killed_with", [STEPS_PER_CALL, 1], ids=["chunked", "before-chunks"])
def test_a_killed_chunked_run_resumes_to_the_same_metrics(tmp_path, monkeypatch, killed_with):
    """Killed after epoch 1 and resumed with chunks equals an uninterrupted run with one step
    a call; `before-chunks`: the checkpoint was written with one step a call (as before this
    change), its optimizer-step count in Lightning's other counter."""
    overrides = [*SMALL, *BATCH, "trainer.max_epochs=4", "logger=csv"]
    with monkeypatch.context() as patch:
        patch.setattr(MultiHeadModule, "most_steps_per_call", 1)
        whole = train(compose_config(overrides, tmp_path / "whole"))
    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        patch.setattr(MultiHeadModule, "most_steps_per_call", killed_with)
        killing_after(patch, epoch=1)
        with pytest.raises(Interrupted):
            train(compose_config(overrides, out))
    assert read_checkpoint(out / LAST_CHECKPOINT)["global_step"] == 22
    resumed = train(compose_config(overrides, out))
    assert resumed["steps_trained"] == whole["steps_trained"] == 44
    assert comparable(resumed) == comparable(whole)
    assert comparable(json.loads((out / METRICS_FILE).read_text())) == comparable(whole)
    assert (out / "predictions.csv").read_text() == (
        tmp_path / "whole" / "predictions.csv"
    ).read_text()
    assert_same_checkpoints(out, tmp_path / "whole")
    csv = (out / "csv" / "metrics.csv").read_text().splitlines()
    whole_csv = (tmp_path / "whole" / "csv" / "metrics.csv").read_text().splitlines()
    assert csv[-4:] == whole_csv[-4:]  # the resumed epochs' rows: same steps, same values


def test_step_counters_of_either_kind_resume_at_the_same_step():
    def checkpoint(automatic: int, manual: int) -> dict:
        def counts(n: int) -> dict:
            return {"total": {"ready": n, "completed": n}, "current": {"ready": 3, "completed": 3}}

        return {
            "loops": {
                "fit_loop": {
                    steps.AUTOMATIC_STEPS: {"optimizer": {"step": counts(automatic)}},
                    steps.MANUAL_STEPS: counts(manual),
                }
            }
        }

    for automatic, manual in ((22, 0), (0, 22)):
        saved = checkpoint(automatic, manual)
        steps.same_step_counters(saved)
        loop = saved["loops"]["fit_loop"]
        assert loop[steps.AUTOMATIC_STEPS]["optimizer"]["step"]["total"]["completed"] == 22
        assert loop[steps.MANUAL_STEPS]["total"]["completed"] == 22
