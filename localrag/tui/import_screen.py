"""Asks for an adapter to import: its path (Tab completes), then a name; Esc backs out."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from localrag.tui.path_input import PathInput

HINT = "Tab completes the path · Enter goes on · Esc cancels"


def default_name(typed: str) -> str:
    """The folder's name, or the file's stem: what an adapter is called unless a name is typed."""
    path = Path(typed.strip()).expanduser()
    return path.name if path.is_dir() else path.stem


class ImportScreen(ModalScreen[tuple[Path, str] | None]):
    """Dismisses with (path, name) once the path exists, or None.

    Enter on the path checks it and goes on to the name; Enter on the name (empty: the
    default, shown as its placeholder) imports. The core checks the rest in the worker.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, path: str = "", name: str = "") -> None:
        super().__init__()
        self.typed = (path, name)
        """What the boxes start with: the last attempt's, after an import failed."""

    def compose(self) -> ComposeResult:
        path, name = self.typed
        with Vertical(id="import-box"):
            yield Static("Import a PEFT adapter folder or a GGUF LoRA file", markup=False)
            yield PathInput(value=path, placeholder="Path of the adapter", id="import-path")
            yield Input(value=name, id="import-name")
            yield Static(HINT, classes="hint", markup=False)

    def on_mount(self) -> None:
        self.show_default()
        self.query_one("#import-path", Input).focus()

    def show_default(self) -> None:
        name = default_name(self.query_one("#import-path", Input).value)
        self.query_one("#import-name", Input).placeholder = (
            f"Name: {name} (or type another)" if name else "Name (default: the folder's name)"
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "import-path":
            event.stop()
            self.show_default()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path_input = self.query_one("#import-path", Input)
        typed = path_input.value.strip()
        path = Path(typed).expanduser()
        if not typed or not path.exists():
            # Said here, not after the box closes, so a typo is fixed without retyping it all.
            message = f"{path}: no such file or folder" if typed else "Type the adapter's path."
            self.app.notify(message, severity="error")
            path_input.focus()
            return
        if event.input is path_input:
            self.query_one("#import-name", Input).focus()
            return
        name = event.value.strip() or default_name(typed)
        if not name:
            self.app.notify("Type a name for the adapter.", severity="error")
            return
        self.dismiss((path, name))
