"""The status bar: retrieval on or off, and the model and adapter that answer."""

from __future__ import annotations

from textual.widgets import Static


class StatusBar(Static):
    """One line above the footer; the app calls `show()` whenever something in it changes."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]

    def show(self, *, retrieval: bool, model: str, adapter: str | None) -> None:
        parts = [
            f"retrieval {'ON' if retrieval else 'OFF'}",
            f"model {model or '…'}",
            f"adapter {adapter or 'none'}",
        ]
        self.update(" │ ".join(parts))
        self.set_class(not retrieval, "retrieval-off")
