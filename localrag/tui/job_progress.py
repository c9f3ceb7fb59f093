"""One row for a long adapter job (a merge, a verification): what runs, a bar, its step."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class JobProgress(Horizontal):
    """Hidden until `start()`; `step()` moves the bar, `busy()` shows work with no known end."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.display = False

    def compose(self) -> ComposeResult:
        yield Label("", classes="job-title", markup=False)
        yield ProgressBar(total=None, show_eta=False, show_percentage=True)
        yield Label("", classes="job-status", markup=False)

    def start(self, title: str, status: str) -> None:
        self.query_one(".job-title", Label).update(title)
        self.busy(status)
        self.display = True

    def step(self, done: int, total: int, status: str) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        self.query_one(".job-status", Label).update(status)

    def busy(self, status: str) -> None:
        # No total: the bar pulses, for steps that say nothing until they end (quantizing).
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one(".job-status", Label).update(status)

    def stop(self) -> None:
        self.display = False

    @property
    def status(self) -> str:
        return str(self.query_one(".job-status", Label).render())
