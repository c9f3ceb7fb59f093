"""Snapshots of the main screens at 80×24 (update with `pytest --snapshot-update` and look)."""

from __future__ import annotations

from tui_fakes import FakeAssistant, FakeVault, document, version
from tui_helpers import SIZE, ask, context_shown, notifications, wait_until

from localrag.tui import build_app
from localrag.tui.adapters import AdaptersPane


def fake() -> FakeAssistant:
    return FakeAssistant([document(1, "handbook.md"), document(2, "standup.flac", "audio")])


def test_create_vault_screen(snap_compare) -> None:
    app = build_app(vault=FakeVault(exists=False))
    assert snap_compare(app, press=[*"two words", "tab"], terminal_size=SIZE)


def test_chat_with_a_cited_answer(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await ask(pilot, "What is the launch code?")

    assert snap_compare(build_app(assistant=fake()), run_before=run_before, terminal_size=SIZE)


def test_source_in_context(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await ask(pilot, "What is the launch code?")
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: context_shown(pilot.app))

    assert snap_compare(build_app(assistant=fake()), run_before=run_before, terminal_size=SIZE)


def test_library(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("f2")
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#documents").row_count == 2)

    assert snap_compare(build_app(assistant=fake()), run_before=run_before, terminal_size=SIZE)


def test_history(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await ask(pilot, "What is the launch code?")
        await pilot.press("ctrl+n")
        await ask(pilot, "Who was at the standup?")
        await pilot.press("f3")
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#conversations").row_count == 2)

    assert snap_compare(build_app(assistant=fake()), run_before=run_before, terminal_size=SIZE)


def test_adapters(snap_compare) -> None:
    assistant = fake()
    assistant.versions.append(version("legal", 2, "Q8_0"))
    assistant.active = "legal@v2"

    async def run_before(pilot) -> None:
        await pilot.press("f4")
        pane = pilot.app.screen.query_one(AdaptersPane)
        await wait_until(pilot, lambda: len(pane.rows) == 4 and pane.table.has_focus)
        await pilot.press("down", "down")  # legal@v1, its provenance under the table

    assert snap_compare(build_app(assistant=assistant), run_before=run_before, terminal_size=SIZE)


def test_voice_note_added(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: pilot.app.screen.query("#record-status"), "record window")
        status = pilot.app.screen.query_one("#record-status")
        # The window says it, then the app's notification does: both are in the picture.
        await wait_until(pilot, lambda: "Added" in str(status.render()) and notifications(pilot))

    assert snap_compare(build_app(assistant=fake()), run_before=run_before, terminal_size=SIZE)
