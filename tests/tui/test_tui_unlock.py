"""The vault screens: create on first run, unlock later, a wrong passphrase lets the user retry."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static
from tui_fakes import PASSPHRASE, FakeVault
from tui_helpers import SIZE, notifications, wait_until

from localrag.errors import VaultError
from localrag.tui import build_app
from localrag.tui.main_screen import MainScreen
from localrag.tui.unlock_screen import UnlockScreen

pytestmark = pytest.mark.anyio


def message(app) -> str:
    return str(app.screen.query_one("#unlock-message", Static).render())


async def test_wrong_then_right_passphrase_unlocks() -> None:
    vault = FakeVault(exists=True)
    app = build_app(vault=vault)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, UnlockScreen)
        await pilot.press(*"wrong guess", "enter")
        await wait_until(
            pilot, lambda: "Wrong passphrase" in message(app), "wrong passphrase shown"
        )
        assert isinstance(app.screen, UnlockScreen)
        assert app.assistant is None
        # The field is cleared and ready for another try.
        await pilot.press(*PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "main screen")
        assert app.assistant is vault.assistant
        # The app keeps the vault's vectors in memory for its searches, in the background.
        await wait_until(pilot, lambda: app.assistant.search_warm, "vectors kept warm")
        # and starts the model before the first question, so that it does not wait for it.
        await wait_until(pilot, lambda: app.assistant.answers_prepared, "model started")
        # The passphrases handed to the vault are wiped once used.
        assert all(not any(p) for p in vault.seen)


async def test_first_run_creates_the_vault_with_a_strength_hint() -> None:
    vault = FakeVault(exists=False)
    app = build_app(vault=vault)
    async with app.run_test(size=SIZE) as pilot:
        assert "Create your vault" in str(app.screen.query_one(".title", Static).render())
        await pilot.press(*"abc")
        strength = app.screen.query_one("#strength", Static)
        assert str(strength.render()).startswith("weak")
        await pilot.press(*"def ghi jkl mno", "enter")
        assert str(strength.render()).startswith("strong")
        # A different second passphrase is refused.
        await pilot.press(*"something else", "enter")
        await wait_until(pilot, lambda: "differ" in message(app))
        assert vault.created_with is None
        await pilot.press(*"abcdef ghi jkl mno", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "main screen")
        assert vault.created_with == b"abcdef ghi jkl mno"


async def test_too_short_passphrase_is_refused() -> None:
    vault = FakeVault(exists=False)
    app = build_app(vault=vault)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"short", "enter", *"short", "enter")
        await wait_until(pilot, lambda: "at least 8" in message(app))
        assert vault.created_with is None


async def test_a_vault_error_is_a_notification_and_the_form_comes_back() -> None:
    vault = FakeVault(exists=True)

    def broken(passphrase: bytearray) -> None:
        raise VaultError("/home/vault.key: damaged; restore it from your backup")

    vault.open = broken  # type: ignore[method-assign]
    app = build_app(vault=vault)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter")
        await wait_until(pilot, lambda: notifications(pilot))
        assert notifications(pilot) == ["/home/vault.key: damaged; restore it from your backup"]
        field = app.screen.query_one("#passphrase", Input)
        await wait_until(pilot, lambda: not field.disabled and field.has_focus, "form back")
        assert isinstance(app.screen, UnlockScreen)
