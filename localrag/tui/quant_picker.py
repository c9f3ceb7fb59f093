"""Asks which quantization a merge should write: Enter chooses, Esc backs out."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from localrag.adapter import QUANTS


class QuantPicker(ModalScreen[str | None]):
    """Dismisses with the chosen quantization, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.adapter = name

    def compose(self) -> ComposeResult:
        with Vertical(id="quant-box"):
            yield Static(
                f"Merge {self.adapter} into the base model as a new version, quantized to…",
                markup=False,
            )
            yield OptionList(
                *(Option(f"{q:<7} {text}", id=q) for q, text in QUANTS.items()), markup=False
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
