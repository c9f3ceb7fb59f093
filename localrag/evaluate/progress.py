"""A progress bar on stderr for the evaluations (stdout stays for the report or its JSON)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOG_EVERY_S = 30.0
"""Seconds between progress lines when stderr is not a terminal (a log gets no live bar)."""


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient bar; the function it yields sets how many of `total` are done."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    started = last = time.monotonic()

    def update(done: int) -> None:
        nonlocal last
        bar.update(task, completed=done)
        now = time.monotonic()
        if not console.is_terminal and (now - last >= LOG_EVERY_S or done == total):
            last = now
            console.print(f"{label}: {done}/{total} in {now - started:.0f} s", highlight=False)

    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield update
