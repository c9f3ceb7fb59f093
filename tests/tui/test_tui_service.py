"""The app on the real `Assistant` and a real encrypted vault, with the fast fake model parts."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static
from tui_helpers import SIZE, ask, context_shown, names, notifications, wait_until

from localrag.embed import HashingEmbedder
from localrag.generate import EchoGenerator
from localrag.settings import Settings
from localrag.store.conversations import SCRUBBED
from localrag.tui import build_app
from localrag.tui.answer_view import AnswerView
from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.main_screen import MainScreen
from localrag.tui.sources import SourcesPanel
from localrag.tui.vault import ServiceVault

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PASSPHRASE = "a long enough passphrase"


def vault(settings: Settings) -> ServiceVault:
    return ServiceVault(settings, embedder=HashingEmbedder(), generator=EchoGenerator())


async def test_create_add_ask_open_source_delete_then_unlock_again(
    settings: Settings, tmp_path: Path, no_network: list[object]
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(
        "# Launch\n\nThe launch code for the rocket is blue-42.\n\nIt changes every Tuesday.\n"
    )
    app = build_app(vault=vault(settings))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter", *PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "vault created")

        await pilot.press("f2", *str(notes), "enter")  # an empty library focuses the path
        await wait_until(pilot, lambda: names(app) == ["notes.md"], "notes.md listed")

        await pilot.press("f1")
        await ask(pilot, "What is the launch code for the rocket?")
        view = app.screen.query(AnswerView).last()
        assert "blue-42" in view.answer_text
        sources = app.screen.query_one(SourcesPanel).sources
        assert sources and sources[0].path == str(notes)
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: context_shown(app))
        cited = app.screen.query_one(".passage.cited", Static)
        assert "blue-42" in str(cited.render())
        await pilot.press("escape")

        await pilot.press("f2", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: names(app) == [], "notes.md deleted")
        assert app.assistant.documents() == []
        assert notifications(pilot) == ["Deleted notes.md."]  # and no error on the way

    # Later runs unlock; the conversation is still there, its answer scrubbed.
    app = build_app(vault=vault(settings))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"not it at all", "enter")
        await wait_until(
            pilot, lambda: "try again" in str(app.screen.query_one("#unlock-message").render())
        )
        await pilot.press(*PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "unlocked")
        await pilot.press("f3")
        table = app.screen.query_one("#conversations", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.query(AnswerView))
        # Deleting notes.md scrubbed the answer that quoted it (security.md item 27).
        answer = app.screen.query(AnswerView).last().answer_text
        assert answer == SCRUBBED and "blue-42" not in answer
    assert no_network == []


async def test_a_model_worker_crash_is_a_notification_and_the_next_question_is_answered(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from localrag import models
    from localrag.answer import INTERRUPTED
    from localrag.worker import client

    fake = Path(__file__).resolve().parent.parent / "fake_worker.py"
    monkeypatch.setattr(client, "COMMAND", [sys.executable, str(fake)])
    model = tmp_path / "any.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "model_path", lambda settings, role, specs=None: model)

    app = build_app(vault=ServiceVault(settings, embedder=HashingEmbedder()))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter", *PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "vault created")
        await pilot.press("ctrl+r")  # retrieval off: the vault is empty
        await ask(pilot, "CRASH now")
        view = app.screen.query(AnswerView).last()
        assert view.answer_text == "Partial" + INTERRUPTED
        assert view.meta.startswith("interrupted: the model process crashed (SIGSEGV)")
        notes = notifications(pilot)
        assert any("crashed (SIGSEGV)" in n and "localrag doctor" in n for n in notes), notes

        await ask(pilot, "Are you well?")
        assert app.screen.query(AnswerView).last().answer_text.startswith("All good")
        [conversation] = app.assistant.conversations()
        assert conversation.turn_count == 4  # both exchanges, in one conversation


async def test_the_app_keeps_a_watched_folder_in_sync(settings: Settings, tmp_path: Path) -> None:
    from localrag.service import Assistant

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text("Green tea steeps for two minutes.\n", encoding="utf-8")
    passphrase = bytearray(PASSPHRASE.encode())
    with Assistant.create(settings, passphrase, embedder=HashingEmbedder()) as assistant:
        assistant.watch_folder(docs)  # registered only: the app indexes it when it opens
    app = build_app(vault=vault(settings))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "unlocked")
        await pilot.press("f2")
        await wait_until(pilot, lambda: names(app) == ["tea.md"], "the folder indexed", 30)
        (docs / "kettle.txt").write_text("The kettle is blue.\n", encoding="utf-8")
        await wait_until(pilot, lambda: "kettle.txt" in names(app), "a new file picked up", 30)
        (docs / "tea.md").unlink()
        await wait_until(pilot, lambda: names(app) == ["kettle.txt"], "a deleted file gone", 30)
        assert notifications(pilot) == []
