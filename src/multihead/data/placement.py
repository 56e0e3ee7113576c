"""Where the training matrix lives while a job trains: `data.placement=auto|device|host`.

* `host`: batches are gathered from host memory by a DataLoader and copied to the device
  (the usual way; the only way for sparse or file-backed cohorts, densified per batch).
* `device`: the training rows are put on the accelerator once (on the CPU: one tensor in
  memory), and every batch is drawn there: one permutation per epoch, then `index_select`
  per batch; no DataLoader, no host gather, no per-batch copy.
* `auto`: `device` when training runs on a CUDA device and the training rows take at most
  `DEVICE_MEMORY_SHARE` of its free memory; `host` otherwise.

Both give the same batches for the same seed: the permutation comes from the same CPU
generator the DataLoader's sampler uses (so it is saved in checkpoints the same way), and
an epoch consumes the same draws of that generator and of torch's global one (dropout masks)
as a DataLoader epoch does, so results are identical whatever the placement.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from multihead.errors import ConfigError

AUTO, DEVICE, HOST = "auto", "device", "host"
PLACEMENTS = (AUTO, DEVICE, HOST)
DEVICE_MEMORY_SHARE = 0.5  # `auto` leaves at least half of the free GPU memory to training


def check_placement(value: object) -> None:
    if value not in PLACEMENTS:
        raise ConfigError(
            f"data.placement must be one of {list(PLACEMENTS)} (where the training matrix "
            f"lives), got {value!r}"
        )


def fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


def resolve_placement(
    placement: str, features: object, device: torch.device, world_size: int
) -> str:
    """`device` or `host` for this job. Device placement needs a dense matrix and one
    process (several processes split batches with a DistributedSampler)."""
    check_placement(placement)
    dense = isinstance(features, torch.Tensor)
    if placement == DEVICE:
        if not dense or world_size > 1:
            why = "a sparse or file-backed cohort" if not dense else "several processes"
            raise ConfigError(f"data.placement=device is not available with {why}; use host")
        return DEVICE
    if placement == AUTO and dense and world_size == 1:
        nbytes = features.element_size() * features.numel()
        return DEVICE if fits_on(device, nbytes) else HOST
    return HOST


class DeviceBatches:
    """Training batches drawn on the device from tensors already there. Iterating it is one
    epoch; `generator` (CPU) draws the order, exactly as `RandomSampler` does."""

    def __init__(
        self,
        rows: torch.Tensor,
        tensors: dict[str, torch.Tensor],
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.device = device
        self.rows = rows.to(device)
        self.tensors = {name: t[rows].to(device) for name, t in tensors.items()}
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # a DataLoader epoch draws its workers' base seed from the global generator: so does
        # this one, so dropout masks do not depend on the placement
        torch.empty((), dtype=torch.int64).random_()
        n = len(self.rows)
        order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, n, self.batch_size):
            if start + self.batch_size > n:
                self.sampler_used_up()  # before a short last batch, as a BatchSampler does
            positions = order[start : start + self.batch_size]
            batch = {name: t.index_select(0, positions) for name, t in self.tensors.items()}
            batch["index"] = self.rows.index_select(0, positions)
            yield batch
        if n % self.batch_size == 0:
            self.sampler_used_up()  # asked for a batch after the last full one

    def sampler_used_up(self) -> None:
        """RandomSampler draws a second permutation once its first is used up (and cuts it
        to length 0); the BatchSampler gets there before it yields a short last batch, or
        when asked past the last full one. The same draw here keeps the generator, and so
        the next epoch's order, in step with the DataLoader's."""
        torch.randperm(len(self.rows), generator=self.generator)
