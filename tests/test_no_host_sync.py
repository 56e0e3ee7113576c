"""A training step never waits for the host: no op that needs a tensor's value on the CPU
(`.item()`, `nonzero`, boolean-mask indexing) runs between the batch and the optimizer step,
for every loss preset x task weighting, with unlabelled samples in the batch; on the CPU and,
where there is one, on a CUDA GPU (where a sync really stalls the device)."""

from __future__ import annotations

import traceback

import pytest
import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from multihead.data.datamodule import prepare_cohort
from multihead.data.labels import MISSING
from multihead.training.builders import build_module
from tests.conftest import NEEDS_CUDA, SMALL, compose_config, config_options

#: ops that make the host wait for the device (or whose output size depends on values)
SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "item", "is_nonzero"}


def syncs(func, args) -> bool:
    name = func.overloadpacket.__name__
    if name in SYNCING:
        return True
    if name in ("index", "index_put", "index_put_"):  # x[mask] with a boolean mask
        indices = args[1] if len(args) > 1 else []
        return any(i is not None and i.dtype == torch.bool for i in indices)
    return False


def where() -> str:
    """The innermost frame outside torch: who asked for the value."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/torch/" not in frame.filename:
            return f"{frame.filename}:{frame.lineno} {frame.line}"
    return "?"


class SyncCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if syncs(func, args):
            self.found.append(f"{func} at {where()}")
        return func(*args, **(kwargs or {}))


def test_the_counter_sees_what_a_sync_is():
    """It can fail: each sync-forcing pattern the step must avoid is counted."""
    x = torch.arange(6.0)
    with SyncCounter() as counter:
        _ = x[x > 2]
        _ = float(x.sum())
        _ = (x > 2).nonzero()
        _ = x.masked_select(x > 2)
        if x.sum() > 0:
            pass
        _ = x * (x > 2) + torch.where(x > 2, x, 0.0)  # the allowed way: counted as nothing
    assert len(counter.found) == 5, counter.found


class CountSyncs(pl.Callback):
    """Counts from the batch's arrival to the optimizer step (the project's training step,
    its logging and backward / PCGrad's gradients); torch's optimizer step itself is left out
    (AdamW reads its CPU step counter, which is no device sync)."""

    def __init__(self) -> None:
        self.counter = SyncCounter()
        self.active = False
        self.device: torch.device | None = None  # where the batch was when the step began

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.device = batch["x"].device
        self.counter.__enter__()
        self.active = True

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if self.active:
            self.counter.__exit__(None, None, None)
            self.active = False


@pytest.fixture(scope="module")
def cohort():
    return prepare_cohort(compose_config(SMALL).data)


def batch_with_missing_labels(cohort) -> dict[str, torch.Tensor]:
    rows = torch.as_tensor(cohort.splits["train"][:32])
    y = cohort.labels[rows].clone()
    y[::3, 0] = MISSING  # a third of the samples have no age, some others no sex
    y[1::5, 1] = MISSING
    return {
        "x": cohort.features[rows],
        "y": y,
        "value": cohort.values[rows].clone(),
        "index": rows,
    }


@pytest.mark.parametrize("accelerator", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
@pytest.mark.parametrize("weighting", config_options("weighting"))
@pytest.mark.parametrize("loss", config_options("loss"))
def test_one_training_step_has_no_host_sync(cohort, loss, weighting, accelerator):
    cfg = compose_config([*SMALL, f"loss={loss}", f"weighting={weighting}"])
    module = build_module(cfg, cohort, None)
    batch = batch_with_missing_labels(cohort)
    counting = CountSyncs()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[counting],
    )
    before = [p.detach().cpu().clone() for p in module.model_parameters()]
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))
    assert not counting.active, "the optimizer step was never reached"
    assert counting.device.type == accelerator
    assert counting.counter.found == [], counting.counter.found
    moved = any(
        not torch.equal(a, b.detach().cpu())
        for a, b in zip(before, module.model_parameters(), strict=True)
    )
    assert moved, "the step did not train"
