"""Progress bars for ingest phases (rich), as a callback ``(phase, done, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ProgressCallback = Callable[[str, int, int], None]


@contextmanager
def ingest_progress(console: Console) -> Iterator[ProgressCallback]:
    """One bar per phase (scan, extract, index); silent when output is not a terminal."""
    if not console.is_terminal:
        yield lambda phase, done, total: None
        return
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, object] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=max(total, 1))
            progress.update(tasks[phase], completed=done, total=max(total, 1))  # type: ignore[arg-type]

        yield update
