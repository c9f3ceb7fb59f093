"""Choose what answers: the base model, a merged adapter version, or an adapter at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

BASE = "base"
"""The registry's name for the base model without an adapter."""


@dataclass(frozen=True)
class ModelChoice:
    """One line of the picker."""

    ref: str
    """`base`, `NAME@vN` for a merged version, or `NAME` for a runtime adapter."""
    label: str
    runtime: bool = False
    """Apply the adapter to the base at run time (per question) instead of making it active."""


def model_choices(listing: Any) -> list[ModelChoice]:
    """The choices from `Assistant.adapters()`: base, each merged version, each adapter."""
    choices = [ModelChoice(BASE, "base model, no adapter")]
    for version in getattr(listing, "versions", []):
        choices.append(ModelChoice(version.ref, f"{version.ref}  merged, {version.quant}"))
    for adapter in getattr(listing, "adapters", []):
        choices.append(ModelChoice(adapter.name, f"{adapter.name}  runtime LoRA", runtime=True))
    return choices


class ModelPicker(ModalScreen[ModelChoice | None]):
    """Dismisses with the chosen `ModelChoice`, or None if the user backs out."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, model: str, choices: list[ModelChoice], current: str | None) -> None:
        super().__init__()
        self.model = model
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            # Model and adapter names are the user's: shown as they are, never read as markup.
            yield Static(
                f"Answer with {self.model or 'the model'} plus… (Enter chooses)", markup=False
            )
            options = (Option(c.label, id=str(i)) for i, c in enumerate(self.choices))
            yield OptionList(*options, markup=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        refs = [c.ref for c in self.choices]
        options.highlighted = refs.index(self.current) if self.current in refs else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)])
