"""A progress bar for loads that take long enough to wonder about; silent for small files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: files smaller than this load in about a second: no bar
SHOW_FROM_BYTES = 64 << 20


@contextmanager
def loading(description: str, total: int, size_bytes: int) -> Iterator[Progress | None]:
    """Yields a Progress with one task (advance it by rows) or None when not worth showing."""
    if size_bytes < SHOW_FROM_BYTES:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def advance(progress: Progress | None, rows: int) -> None:
    if progress is not None:
        progress.advance(progress.task_ids[0], rows)
