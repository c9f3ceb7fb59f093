"""Square brackets in file names, questions and answers show as typed: never read as markup.

Read as markup, `notes [draft].md` lost `[draft]`, a path with `[/b]` raised while drawing, and a
file named `[@click=app.quit]x.md` became a link that quits the app.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static
from tui_fakes import FakeAssistant, document
from tui_helpers import SIZE, ask, context_shown, names, notifications, screen_text, wait_until

from localrag.tui import build_app
from localrag.tui.answer_view import AnswerView
from localrag.tui.library import LibraryPane
from localrag.tui.sources import SourcesPanel

pytestmark = pytest.mark.anyio

SLASHED = "/docs/a[/b].md"
"""A file `b].md` in a folder `a[`: its full path holds a closing tag."""
QUESTION = "Why [/b] and [draft]?"


@pytest.fixture
def assistant() -> FakeAssistant:
    fake = FakeAssistant(
        [
            document(1, "a[/b].md"),
            document(2, "notes [draft].md"),
            document(3, "[@click=app.quit]x.md"),
        ]
    )
    assert fake.docs[0].path == SLASHED
    return fake


@pytest.fixture
def app(assistant: FakeAssistant):
    return build_app(assistant=assistant)


async def test_library_names_show_as_they_are(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        table = app.screen.query_one("#documents", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        assert names(app) == ["b].md", "notes [draft].md", "[@click=app.quit]x.md"]
        await pilot.pause()
        text = screen_text(app)
        assert "notes [draft].md" in text and "[@click=app.quit]x.md" in text
        cell = table.get_row_at(2)[0]
        assert isinstance(cell, Text) and not cell.spans  # no click action hidden in it


async def test_question_sources_context_and_history_show_brackets(app, assistant) -> None:
    assistant.reply = "See a[/b].md [1] and notes [draft].md [2]."
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, QUESTION)
        await pilot.pause()
        assert not notifications(pilot)  # nothing raised while drawing
        view = app.screen.query(AnswerView).last()
        assert str(view.query_one(".question", Static).render()) == f"> {QUESTION}"
        assert "a[/b].md [1] and notes [draft].md [2]" in view.answer_text
        text = screen_text(app)
        assert QUESTION in text and "[2] notes [draft].md" in text  # question, sources panel
        cited = app.screen.query_one(SourcesPanel).sources[1]
        assert cited.label().startswith("*[2] notes [dra")

        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: context_shown(app))
        title = app.screen.query_one("#context-title", Static)
        assert str(title.render()) == f"[1] {SLASHED}"  # the full path, once loaded
        await pilot.pause()
        assert f"[1] {SLASHED}" in screen_text(app)
        assert "b].md, page 1, lines 1-9" in screen_text(app)  # a passage's border title
        await pilot.press("escape")

        await pilot.press("f3")
        table = app.screen.query_one("#conversations", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[0]) == QUESTION
        await pilot.pause()
        assert QUESTION in screen_text(app)


async def test_a_notification_naming_such_a_file_shows_it_whole(app, tmp_path: Path) -> None:
    broken = tmp_path / "broken [v2].bad"
    broken.write_bytes(b"\x00")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        app.screen.query_one(LibraryPane).add([broken])
        await wait_until(pilot, lambda: app.screen.query("Toast"), "the notification shows")
        await pilot.pause()
        assert "broken [v2].bad: not a document" in screen_text(app)
