"""Choose what answers: the base model alone, or the base model with one of the adapters."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

BASE = ""
"""The option id of "no adapter"."""


class ModelPicker(ModalScreen[str | None]):
    """Dismisses with the adapter name, `BASE` for none, or None if the user backs out."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, model: str, adapters: list[str], current: str | None) -> None:
        super().__init__()
        self.model = model
        self.adapters = adapters
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static("Answer with (Enter chooses, Esc closes)")
            options = [Option(f"{self.model or 'base model'} (no adapter)", id=BASE)]
            options += [Option(f"{self.model} + {name}", id=f"a:{name}") for name in self.adapters]
            yield OptionList(*options)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [BASE] + [f"a:{name}" for name in self.adapters]
        current = f"a:{self.current}" if self.current else BASE
        options.highlighted = ids.index(current) if current in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or BASE
        self.dismiss(option_id[2:] if option_id.startswith("a:") else BASE)
