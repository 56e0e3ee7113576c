"""`data.placement`: the training matrix on the device (batches drawn there, no DataLoader)
or on the host (DataLoader) gives the same batches and the same results for the same seed."""

from __future__ import annotations

import pytest
import torch

from multihead.data.datamodule import CohortDataModule, prepare_cohort
from multihead.data.placement import DeviceBatches, is_sparse, resolve_placement
from multihead.errors import ConfigError
from multihead.training.run import train
from multihead.training.validation import validate_config
from tests.conftest import NEEDS_CUDA, SMALL, compose_config
from tests.data_files import small_frames, write_h5ad

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cohort():
    return prepare_cohort(compose_config(SMALL).data)


def epochs(loader, n: int) -> list[list[dict[str, torch.Tensor]]]:
    return [list(loader) for _ in range(n)]


@pytest.fixture(scope="module")
def sparse_h5ad(tmp_path_factory):
    matrix, sheet = small_frames(n_samples=200, n_features=30)
    return write_h5ad(tmp_path_factory.mktemp("sparse") / "c.h5ad", matrix, sheet, sparse=True)


@pytest.fixture(scope="module")
def sparse_cohort(sparse_h5ad):
    return prepare_cohort(compose_config(["data=anndata", f"data.path={sparse_h5ad}"]).data)


def test_device_batches_are_the_dataloaders_batches(cohort):
    assert_same_batches(cohort)


def test_a_sparse_cohort_on_the_device_gives_the_host_batches(sparse_cohort):
    """CSR rows on the device, gathered, densified and preprocessed there per batch."""
    assert is_sparse(sparse_cohort.features)
    assert_same_batches(sparse_cohort)


def assert_same_batches(cohort) -> None:
    host = CohortDataModule(cohort, 48, 256, shuffle_seed=5, placement="host")
    device = CohortDataModule(cohort, 48, 256, shuffle_seed=5, placement="device")
    host_loader, device_loader = host.train_dataloader(), device.train_dataloader()
    assert isinstance(device_loader, DeviceBatches)
    assert not isinstance(host_loader, DeviceBatches)
    assert len(device_loader) == len(host_loader)
    torch.manual_seed(0)
    want = epochs(host_loader, 3)
    rng_after_host = torch.get_rng_state()
    torch.manual_seed(0)
    got = epochs(device_loader, 3)
    assert torch.equal(torch.get_rng_state(), rng_after_host)  # same dropout draws follow
    assert torch.equal(host.shuffle.get_state(), device.shuffle.get_state())
    for epoch_want, epoch_got in zip(want, got, strict=True):
        assert len(epoch_want) == len(epoch_got)
        for a, b in zip(epoch_want, epoch_got, strict=True):
            assert a.keys() == b.keys()
            for key in a:  # bit for bit; NaN (no raw value) where NaN
                torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, equal_nan=True)
    # every training row once per epoch, and epochs differ
    train_rows = sorted(cohort.splits["train"].tolist())
    assert sorted(torch.cat([b["index"] for b in got[0]]).tolist()) == train_rows
    assert not torch.equal(got[0][0]["index"], got[1][0]["index"])
    # x, y and value are the rows the index names
    batch = got[1][2]
    assert torch.equal(batch["x"], cohort.features[batch["index"]])
    assert batch["x"].abs().sum() > 0
    assert torch.equal(batch["y"], cohort.labels[batch["index"]])


def test_placement_is_checked_and_resolved(cohort):
    with pytest.raises(ConfigError, match="data.placement must be one of"):
        validate_config(compose_config([*SMALL, "data.placement=gpu"]))
    assert resolve_placement("auto", cohort.features, CPU, 1) == "device"  # dense, 1 process
    assert resolve_placement("auto", cohort.features, CPU, 2) == "host"  # DistributedSampler
    assert resolve_placement("device", cohort.features, CPU, 1) == "device"
    with pytest.raises(ConfigError, match="several processes"):
        resolve_placement("device", cohort.features, CPU, 2)
    with pytest.raises(ConfigError, match="file-backed"):
        resolve_placement("device", object(), CPU, 1)


def test_sparse_placement_is_resolved(sparse_cohort):
    features = sparse_cohort.features
    assert resolve_placement("device", features, CPU, 1) == "device"
    assert resolve_placement("auto", features, CPU, 1) == "host"  # CPU: the DataLoader
    with pytest.raises(ConfigError, match="several processes"):
        resolve_placement("device", features, CPU, 2)


#: the same run on a CUDA GPU, in deterministic mode (so host and device runs can be equal)
ON_CUDA = ["trainer=gpu", "trainer.deterministic=true"]


@pytest.mark.slow
@pytest.mark.parametrize("trainer", [[], pytest.param(ON_CUDA, marks=NEEDS_CUDA, id="cuda")])
@pytest.mark.parametrize("sparse", [False, True])
def test_device_and_host_placement_train_to_the_same_metrics(
    tmp_path, sparse, sparse_h5ad, trainer
):
    data = ["data=anndata", f"data.path={sparse_h5ad}", "logger=none"] if sparse else SMALL
    runs = {
        p: train(compose_config([*data, *trainer, f"data.placement={p}"], tmp_path / p))
        for p in ("host", "device")
    }
    host, device = ({k: v for k, v in m.items() if k != "seconds"} for m in runs.values())
    assert device == host
    assert (tmp_path / "host" / "predictions.csv").read_text() == (
        tmp_path / "device" / "predictions.csv"
    ).read_text()


def test_a_datamodule_pickles_with_its_shuffling_state(cohort):
    """ddp_spawn pickles the data module: the generator's state travels with it."""
    import pickle

    module = CohortDataModule(cohort, 48, 256, shuffle_seed=5)
    _ = list(module.train_dataloader())
    copy = pickle.loads(pickle.dumps(module))
    assert torch.equal(copy.shuffle.get_state(), module.shuffle.get_state())
    fresh = pickle.loads(pickle.dumps(CohortDataModule(cohort, 48, 256, shuffle_seed=5)))
    assert torch.equal(fresh.shuffle.get_state(), torch.Generator().manual_seed(5).get_state())
