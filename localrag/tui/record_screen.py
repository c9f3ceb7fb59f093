"""The voice-note screen (Ctrl+T): the level while you speak, then the note being transcribed.

It only shows: the app records and transcribes in a worker and calls `level()`, `transcribing()`,
`added()` and `failed()`. Stop or Escape while recording ends the note and keeps it (as Ctrl-C
does for `localrag record`); afterwards Escape closes the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from localrag.display import one_line, visible
from localrag.record import RecordOptions, level_bar, stop_hint
from localrag.silence import Verdict

METER_CELLS = 30
"""The level bar's width in the screen (the CLI's line has 8)."""
STOPPED_BY = {
    "silence": "stopped by the silence",
    "limit": "stopped at the length limit",
    "cancel": "stopped by you",
}


class RecordScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "stop_or_close", "Stop")]

    def __init__(self, options: RecordOptions, stop: Callable[[], None]) -> None:
        super().__init__()
        self.options = options
        self.stop = stop
        """Ends the recording at its next block (the recorder's `stop`)."""
        self.recording = True
        """Whether the microphone is still being read."""
        self.recorded = ""
        """How long the note is and what ended it, once it has ended."""

    def compose(self) -> ComposeResult:
        with Vertical(id="record-box"):
            yield Label("Voice note", id="record-title")
            yield Static(self._meter(0.0, None), id="record-meter", markup=False)
            hint = f"Speak; it {stop_hint(self.options)}. Stop or Esc ends it now."
            yield Static(hint, id="record-status", markup=False)
            yield Button("Stop", id="record-stop", variant="error")

    @staticmethod
    def _meter(elapsed_s: float, level_dbfs: float | None) -> str:
        minutes, secs = divmod(int(elapsed_s), 60)
        if level_dbfs is None:
            return f"● {minutes:02d}:{secs:02d}  {level_bar(-100.0, METER_CELLS)}   … dBFS"
        bar = level_bar(level_dbfs, METER_CELLS)
        return f"● {minutes:02d}:{secs:02d}  {bar} {level_dbfs:4.0f} dBFS"

    def level(self, verdict: Verdict) -> None:
        """One block heard: its level, the time so far, how the note will end."""
        if not self.is_attached:
            return
        self.query_one("#record-meter", Static).update(
            self._meter(verdict.elapsed_s, verdict.level_dbfs)
        )
        self._status(f"Recording ({stop_hint(self.options, verdict)}). Stop or Esc ends it.")

    def transcribing(self, recorded_s: float, stopped_by: str, fraction: float) -> None:
        self.recording = False
        if self.is_attached:
            self.query_one("#record-stop", Button).label = "Close"
        self.recorded = f"{recorded_s:.1f} s, {STOPPED_BY.get(stopped_by, stopped_by)}"
        self._status(f"Recorded {self.recorded}; transcribing {fraction:.0%}")

    def added(self, name: str, transcript: str) -> None:
        heard = one_line(transcript)[:120] or "no speech heard"
        self._status(f"Added {one_line(name)} ({self.recorded}): {heard}")

    def failed(self, message: str) -> None:
        self.recording = False
        if self.is_attached:
            self.query_one("#record-stop", Button).label = "Close"
        self._status(message)

    def _status(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#record-status", Static).update(visible(text))

    @property
    def status(self) -> str:
        return str(self.query_one("#record-status", Static).render())

    def action_stop_or_close(self) -> None:
        if self.recording:
            self.recording = False
            self.stop()
        else:
            self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_stop_or_close()
