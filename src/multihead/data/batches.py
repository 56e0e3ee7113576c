"""Batches are slices of in-memory tensors: one indexing op per batch, no per-sample collate."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler


class TensorRows(Dataset):
    """Rows of a few aligned tensors, fetched a whole batch at a time via `__getitems__`."""

    def __init__(self, rows: torch.Tensor, **tensors: torch.Tensor) -> None:
        self.rows = rows
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        index = self.rows[torch.as_tensor(positions, dtype=torch.long)]
        batch = {name: t[index] for name, t in self.tensors.items()}
        batch["index"] = index
        return batch

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}


def keep_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """collate_fn for `TensorRows`: the batch is already stacked."""
    return batch


class StridedEvalSampler(Sampler[int]):
    """Rank r evaluates positions r, r+W, r+2W, ...: every sample exactly once, none padded.

    torch's DistributedSampler pads with duplicates so every rank has equal length; that
    would double-count samples in confusion matrices, so evaluation uses this instead.
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))
