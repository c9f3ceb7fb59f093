"""Create the vault on first run (passphrase twice, a strength hint), unlock it on later runs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from localrag import hardening
from localrag.errors import WrongPassphrase
from localrag.tui.messages import UnlockEnded, UnlockRejected, VaultOpened
from localrag.tui.vault import MIN_PASSPHRASE_CHARS, VaultAccess, strength_hint


class UnlockScreen(Screen[None]):
    """Asks for the passphrase; opening (Argon2id, then the store) runs in a thread worker."""

    def __init__(self, vault: VaultAccess, create: bool) -> None:
        super().__init__()
        self.vault = vault
        self.create = create
        self.message_text = ""

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="unlock-box"):
            if self.create:
                yield Static("Create your vault", classes="title")
                yield Static(
                    "Everything you add is kept encrypted with this passphrase. It cannot be"
                    " recovered if you forget it.",
                    classes="hint",
                )
                yield Input(placeholder="Passphrase", password=True, id="passphrase")
                yield Static("", id="strength", markup=False)
                yield Input(placeholder="The same passphrase again", password=True, id="again")
                yield Static("Enter creates the vault.", classes="hint")
            else:
                yield Static("Unlock your vault", classes="title")
                yield Input(placeholder="Passphrase", password=True, id="passphrase")
                yield Static("Enter unlocks.", classes="hint")
            yield Static("", id="unlock-message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.create and event.input.id == "passphrase":
            level, hint = strength_hint(event.value) if event.value else ("", "")
            strength = self.query_one("#strength", Static)
            strength.update(f"{level}: {hint}" if level else "")
            strength.set_classes(f"strength-{level}" if level else "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.create and event.input.id == "passphrase":
            self.query_one("#again", Input).focus()
        else:
            self.submit()

    def say(self, text: str) -> None:
        self.message_text = text
        self.query_one("#unlock-message", Static).update(text)

    def submit(self) -> None:
        first = self.query_one("#passphrase", Input)
        if self.create:
            again = self.query_one("#again", Input)
            if len(first.value) < MIN_PASSPHRASE_CHARS:
                self.say(f"Use at least {MIN_PASSPHRASE_CHARS} characters.")
                first.focus()
                return
            if first.value != again.value:
                self.say("The two passphrases differ; type them again.")
                again.value = ""
                again.focus()
                return
        elif not first.value:
            self.say("Type your passphrase, then Enter.")
            return
        passphrase = hardening.locked(bytearray(first.value.encode()))
        for field in self.query(Input):
            field.value = ""
            field.disabled = True
        self.say("Creating the vault…" if self.create else "Unlocking…")
        vault, create = self.vault, self.create
        app: Any = self.app

        def work() -> None:
            try:
                assistant = vault.create(passphrase) if create else vault.open(passphrase)
                app.post_message(VaultOpened(assistant))
            except WrongPassphrase as exc:
                self.post_message(UnlockRejected(exc.message))
            finally:
                passphrase[:] = bytes(len(passphrase))
                self.post_message(UnlockEnded())

        app.background(work, name="unlock")

    def on_unlock_rejected(self, message: UnlockRejected) -> None:
        self.say(f"{message.message[:1].upper()}{message.message[1:]}: try again.")

    def on_unlock_ended(self, message: UnlockEnded) -> None:
        if self.app.screen is not self:
            return
        for field in self.query(Input):
            field.disabled = False
        self.query_one("#passphrase", Input).focus()
        if self.message_text in ("Unlocking…", "Creating the vault…"):
            self.say("")
