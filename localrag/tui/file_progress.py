"""One row per file being added: its name, a progress bar and how it went."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from localrag.display import one_line, rate_and_eta
from localrag.records import IngestEvent


def percent(fraction: float | None) -> str:
    return f"{100 * (fraction or 0.0):.0f} %"


def describe(event: IngestEvent) -> str:
    """What the status column says for an event."""
    if event.status == "started":
        return "starting…"
    if event.status == "progress":
        if event.chunks_total:
            return f"{event.chunks_done}/{event.chunks_total} chunks"
        if event.rtf is not None:  # only a recording being transcribed has a real-time factor
            return (
                f"transcribing {percent(event.fraction)} · {rate_and_eta(event.rtf, event.eta_s)}"
            )
        if event.fraction is not None:
            return f"reading {percent(event.fraction)}"
        return "reading…"
    text = event.status
    if event.status in ("added", "updated") and event.chunks_total:
        text += f", {event.chunks_total} chunk" + ("s" if event.chunks_total > 1 else "")
    if event.detail and event.status in ("failed", "skipped"):
        text += ": " + one_line(event.detail.removeprefix(f"{event.path}: "))
    return text


class FileProgress(Horizontal):
    """The progress of one file through ingestion (and transcription for audio)."""

    def __init__(self, path: str) -> None:
        super().__init__(classes="file-progress")
        self.path = path
        self.status = "started"

    def compose(self) -> ComposeResult:
        yield Label(one_line(Path(self.path).name), classes="file-name", markup=False)
        yield ProgressBar(total=100, show_eta=False, show_percentage=True)
        yield Label("waiting…", classes="file-status", markup=False)

    def update_from(self, event: IngestEvent) -> None:
        self.status = event.status
        bar = self.query_one(ProgressBar)
        done = None
        if event.fraction is not None:
            done = 100 * event.fraction
        elif event.chunks_total:
            done = 100 * event.chunks_done / event.chunks_total
        if done is not None:
            # Embedding starts again from 0 after reading or transcribing reached 100: the bar
            # holds, the status says which step it is in.
            bar.update(progress=max(done, bar.progress))
        if event.final:
            bar.update(progress=100)
            self.set_class(event.status == "failed", "failed")
        self.query_one(".file-status", Label).update(describe(event))
