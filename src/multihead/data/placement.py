"""Where the training matrix lives while a job trains: `data.placement=auto|device|host`.

* `host`: batches are gathered from host memory by a DataLoader and copied to the device
  (the usual way; the only way for file-backed cohorts, densified per batch). On a CUDA
  device the DataLoader pins its batches and `PrefetchToDevice` copies the next batch on a
  side stream, without blocking, while the current one trains.
* `device`: the training rows are put on the accelerator once (on the CPU: the cohort's
  tensor itself, not copied), and every batch is drawn there: one permutation per epoch,
  then `index_select` per batch; no DataLoader, no host gather, no per-batch copy. A sparse
  cohort's training rows go there as one CSR tensor (kept features only): each batch's rows
  are gathered and densified there and preprocessed as `Preprocessor.transform` does.
* `auto`: `device` for a dense cohort on one process, on the CPU (the rows are used where
  they are: nothing is copied) or on a CUDA device where the training rows take at most
  `DEVICE_MEMORY_SHARE` of its free memory; for a sparse cohort on one CUDA device where its
  CSR training rows fit the same way; `host` otherwise (file-backed cohorts always).

Both give the same batches for the same seed: the permutation comes from the same CPU
generator the DataLoader's sampler uses (so it is saved in checkpoints the same way), and
an epoch consumes the same draws of that generator and of torch's global one (dropout masks)
as a DataLoader epoch does, so results are identical whatever the placement.

Several optimizer steps a call: given `steps_per_call` > 1 (the training side decides where
that is safe: `multihead.training.steps`), an epoch of `DeviceBatches` yields `StepChunk`s,
each up to that many consecutive batches (the last of an epoch may be shorter), for one
Lightning `training_step` to run. The batches are the same, and a chunk draws each one
lazily, one batch ahead of the step that trains it, as Lightning's fetcher draws single
batches: the shuffling generator and torch's global one are drawn at the same moments, so a
chunked fit is bit-identical to one step per call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from multihead.data.lazy_rows import LazyRows
from multihead.data.matrix import SparseMatrix
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
    """On the CPU the rows are already there (nothing is copied); on a GPU they must leave
    room for training."""
    if device.type == "cpu":
        return True
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


def is_sparse(features: object) -> bool:
    return isinstance(features, LazyRows) and isinstance(features.matrix, SparseMatrix)


def resolve_placement(
    placement: str, features: object, device: torch.device, world_size: int
) -> str:
    """`device` or `host` for this job. Device placement needs a dense or sparse (not
    file-backed) matrix and one process (several processes split batches with a
    DistributedSampler)."""
    check_placement(placement)
    dense = isinstance(features, torch.Tensor)
    if placement == DEVICE:
        if not (dense or is_sparse(features)) or world_size > 1:
            why = "a file-backed cohort" if world_size == 1 else "several processes"
            raise ConfigError(f"data.placement=device is not available with {why}; use host")
        return DEVICE
    if placement == AUTO and world_size == 1:
        if dense:
            return DEVICE if fits_on(device, features.element_size() * features.numel()) else HOST
        if is_sparse(features) and device.type == "cuda":  # on the CPU a DataLoader is as good
            values = features.matrix.values
            nbytes = values.data.nbytes + values.indices.nbytes + values.indptr.nbytes
            return DEVICE if fits_on(device, nbytes) else HOST
    return HOST


class SparseDeviceRows:
    """Rows of a sparse cohort's matrix in CSR form (row pointers, column indices, values:
    torch's CSR layout, kept as plain tensors since CSR tensors have no row gather) on the
    device, kept features only;
    `index_select(0, positions)` gathers those rows, densifies them and preprocesses them
    (log1p, fill, standardise) there: the model inputs `LazyRows` computes on the host."""

    def __init__(self, features: LazyRows, rows: np.ndarray, device: torch.device) -> None:
        pre = features.preprocessor
        block = features.matrix.values[rows]
        block = (block if pre.keeps_all else block[:, pre.keep]).astype(np.float32).tocsr()
        self.shape = (block.shape[0], block.shape[1])
        self.crow = torch.from_numpy(block.indptr.astype(np.int64)).to(device)
        self.col = torch.from_numpy(block.indices.astype(np.int64)).to(device)
        self.values = torch.from_numpy(block.data).to(device)
        self.device = device
        self.log1p = bool(pre.log1p)
        fill = None if pre.fill is None else np.asarray(pre.fill, dtype=np.float32)
        self.fill = None if fill is None else torch.from_numpy(fill).to(device)
        # float64, as numpy's `x -= mean; x /= scale` computes on float32 rows
        self.mean = torch.as_tensor(pre.standardizer.mean, dtype=torch.float64, device=device)
        self.scale = torch.as_tensor(pre.standardizer.scale, dtype=torch.float64, device=device)

    def __len__(self) -> int:
        return self.shape[0]

    def dense_rows(self, positions: torch.Tensor) -> torch.Tensor:
        """The raw values of these rows, densified on the device."""
        starts = self.crow.index_select(0, positions)
        counts = self.crow.index_select(0, positions + 1) - starts
        total = int(counts.sum())  # one host read per batch: the size of the gather
        batch_row = torch.repeat_interleave(
            torch.arange(len(positions), device=self.device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts  # where each row's entries start in the batch
        entry = torch.arange(total, device=self.device) - first[batch_row] + starts[batch_row]
        x = torch.zeros(len(positions), self.shape[1], device=self.device)
        x[batch_row, self.col[entry]] = self.values[entry]
        return x

    def index_select(self, dim: int, positions: torch.Tensor) -> torch.Tensor:
        x = self.dense_rows(positions)
        if self.log1p:
            x = torch.log1p(x)
        if self.fill is not None:
            x = torch.where(torch.isfinite(x), x, self.fill)
        return ((x.double() - self.mean).float().double() / self.scale).float()


Batch = dict[str, torch.Tensor]


class BatchesAhead:
    """One epoch's batches, each drawn when the one before it is handed out (one ahead, as
    Lightning's prefetching fetcher draws them): the first when this is made."""

    def __init__(self, batches: Iterator[Batch]) -> None:
        self.batches = batches
        self.coming = next(batches, None)

    def __next__(self) -> Batch:
        if self.coming is None:
            raise StopIteration
        batch, self.coming = self.coming, next(self.batches, None)
        return batch


class StepChunk:
    """`size` consecutive batches of one epoch, for one `training_step` to take as many
    optimizer steps; iterating it draws them (see `BatchesAhead`). A step that stops early
    (max_steps) leaves the rest undrawn, as a fit stopped there would."""

    def __init__(self, batches: BatchesAhead, size: int) -> None:
        self.batches = batches
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Batch]:
        for _ in range(self.size):
            yield next(self.batches)


class DeviceBatches:
    """Training batches drawn on the device from tensors already there. Iterating it is one
    epoch; `generator` (CPU) draws the order, exactly as `RandomSampler` does. With
    `steps_per_call` > 1 an epoch is `StepChunk`s of up to that many batches, and its length
    counts chunks (Lightning's calls)."""

    def __init__(
        self,
        rows: torch.Tensor,
        tensors: dict[str, torch.Tensor | LazyRows],
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        steps_per_call: int = 1,
    ) -> None:
        self.device = device
        self.steps_per_call = max(1, int(steps_per_call))
        self.rows = rows.to(device)
        # name -> (source, whether a batch takes rows of the cohort or positions in `rows`)
        self.sources: dict[str, tuple[torch.Tensor | SparseDeviceRows, bool]] = {}
        for name, t in tensors.items():
            if isinstance(t, LazyRows):  # sparse: the training rows, as CSR on the device
                self.sources[name] = (SparseDeviceRows(t, rows.numpy(), device), False)
            elif t.device == device:  # already there (the CPU): used as it is, not copied
                self.sources[name] = (t, True)
            else:  # the training rows alone, copied there once
                self.sources[name] = (t[rows].to(device), False)
        self.batch_size = batch_size
        self.generator = generator

    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __len__(self) -> int:
        return math.ceil(self.batches_per_epoch() / self.steps_per_call)

    def __iter__(self) -> Iterator[Batch] | Iterator[StepChunk]:
        if self.steps_per_call == 1:
            return self.batches()
        return self.chunks()

    def chunks(self) -> Iterator[StepChunk]:
        """The epoch's batches in chunks; the first batch is drawn with the first chunk (when
        Lightning fetches it, as it would fetch the first batch), the others as steps take
        them."""
        left = self.batches_per_epoch()
        batches = BatchesAhead(self.batches())
        while left > 0:
            size = min(self.steps_per_call, left)
            left -= size
            yield StepChunk(batches, size)

    def batches(self) -> Iterator[Batch]:
        # a DataLoader epoch draws its workers' base seed from the global generator: so does
        # this one, so dropout masks do not depend on the placement
        torch.empty((), dtype=torch.int64).random_()
        n = len(self.rows)
        order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, n, self.batch_size):
            if start + self.batch_size > n:
                self.sampler_used_up()  # before a short last batch, as a BatchSampler does
            positions = order[start : start + self.batch_size]
            index = self.rows.index_select(0, positions)
            batch = {
                name: t.index_select(0, index if by_row else positions)
                for name, (t, by_row) in self.sources.items()
            }
            batch["index"] = index
            yield batch
        if n % self.batch_size == 0:
            self.sampler_used_up()  # asked for a batch after the last full one

    def sampler_used_up(self) -> None:
        """RandomSampler draws a second permutation once its first is used up (and cuts it
        to length 0); the BatchSampler gets there before it yields a short last batch, or
        when asked past the last full one. The same draw here keeps the generator, and so
        the next epoch's order, in step with the DataLoader's."""
        torch.randperm(len(self.rows), generator=self.generator)


class PrefetchToDevice:
    """A host DataLoader's batches (pinned memory) on a CUDA device, each copied on a side
    stream while the batch before it trains. Same batches, same order: only where and when
    they are copied changes."""

    def __init__(self, loader: Iterable[dict[str, torch.Tensor]], device: torch.device) -> None:
        self.loader = loader
        self.device = device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        side = torch.cuda.Stream(self.device)

        def send(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            with torch.cuda.stream(side):
                return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

        def ready(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            main = torch.cuda.current_stream(self.device)
            main.wait_stream(side)  # its copy is done before the step uses it
            for tensor in batch.values():
                tensor.record_stream(main)  # not freed while the step still reads it
            return batch

        coming = None
        for host in self.loader:
            sent = send(host)
            if coming is not None:
                yield ready(coming)
            coming = sent
        if coming is not None:
            yield ready(coming)
