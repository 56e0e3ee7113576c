"""`SparseWrites` builds each checkpoint as Lightning's `dump_checkpoint` does: the last
checkpoint of a round, which reuses the best one's dump, holds what a dump of its own holds."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.training.builders import build_datamodule, build_module, build_trainer
from multihead.training.checkpoints import SparseWrites


def same(a, b) -> bool:
    """Equal values, tensors compared element-wise (and by dtype and shape; NaN equals NaN:
    the data module keeps the raw values, NaN where unknown)."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


class SavesState(pl.Callback):
    """A callback that writes into the checkpoint itself."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["seen"] = trainer.global_step


def dumps_of_a_fit(small_config, tmp_path, monkeypatch, *extra_callbacks, overrides=()):
    """(what `SparseWrites` built, a fresh `dump_checkpoint` at the same moment, reused)
    for every checkpoint of a 3-epoch fit."""
    pairs = []
    dump = SparseWrites._dump

    def recording(self, trainer):
        reused = self._round is not None and self._round[0] == trainer.global_step
        built = dump(self, trainer)
        fresh = trainer._checkpoint_connector.dump_checkpoint(self.save_weights_only)
        pairs.append((built, fresh, reused))
        return built

    monkeypatch.setattr(SparseWrites, "_dump", recording)
    cfg = small_config("trainer.max_epochs=3", *overrides)
    cohort = prepare_cohort(cfg.data)
    trainer = build_trainer(cfg, tmp_path / "fit")
    trainer.callbacks.extend(extra_callbacks)
    trainer.fit(build_module(cfg, cohort, None), datamodule=build_datamodule(cfg, cohort))
    return pairs


def test_the_last_checkpoint_of_a_round_is_what_its_own_dump_would_be(
    small_config, tmp_path, monkeypatch
):
    pairs = dumps_of_a_fit(small_config, tmp_path, monkeypatch)
    assert len(pairs) >= 4  # a best and a last checkpoint in (nearly) every epoch
    assert sum(reused for _, _, reused in pairs) >= 2  # the case under test occurs
    for built, fresh, _ in pairs:
        assert same(built, fresh)
    # the two checkpoints of a round differ where they should: the last names itself
    built, _, reused = pairs[-1]
    assert reused
    state = next(v for k, v in built["callbacks"].items() if k.startswith("SparseWrites"))
    assert state["last_model_path"].endswith("last.ckpt")


def test_no_reuse_where_a_callback_writes_into_checkpoints(small_config, tmp_path, monkeypatch):
    pairs = dumps_of_a_fit(small_config, tmp_path, monkeypatch, SavesState())
    for built, fresh, _ in pairs:
        assert same(built, fresh) and built["seen"] == fresh["seen"]
    assert len({id(built["loops"]) for built, _, _ in pairs}) == len(pairs)  # each its own


def test_weights_only_checkpoints_reuse_the_dump_as_it_is(small_config, tmp_path, monkeypatch):
    weights_only = ["callbacks.checkpoint.save_weights_only=true"]
    pairs = dumps_of_a_fit(small_config, tmp_path, monkeypatch, overrides=weights_only)
    assert sum(reused for _, _, reused in pairs) >= 2
    for built, fresh, _ in pairs:
        assert "callbacks" not in built and same(built, fresh)


def test_direct_checkpoint_io_writes_whole_files_and_never_a_partial_one(tmp_path, monkeypatch):
    from multihead.training.checkpoints import DirectCheckpointIO

    io = DirectCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    first = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 1}
    io.save_checkpoint(first, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], first["state_dict"]["w"])

    def dies_halfway(obj, f, *args, **kwargs):  # a write that fails after some bytes
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(6)}, "epoch": 2}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["epoch"] == 1  # the earlier file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # nothing partial


def test_jobs_write_checkpoints_with_direct_io(small_config, tmp_path):
    from multihead.training.checkpoints import DirectCheckpointIO

    trainer = build_trainer(small_config(), tmp_path)
    assert isinstance(trainer.strategy.checkpoint_io, DirectCheckpointIO)
