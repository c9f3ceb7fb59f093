"""History: past conversations are listed and reopen in the chat with their sources."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable
from tui_helpers import SIZE, ask, wait_until

from localrag.tui.answer_view import AnswerView
from localrag.tui.chat import ChatPane
from localrag.tui.sources import SourcesPanel

pytestmark = pytest.mark.anyio


async def test_a_past_conversation_reopens_with_its_sources(app, assistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the launch code?")
        await pilot.press("ctrl+n")
        await ask(pilot, "Second chat")
        assert len(assistant.convs) == 2
        await pilot.press("f3")
        conversations = app.screen.query_one("#conversations", DataTable)
        await wait_until(pilot, lambda: conversations.row_count == 2)
        titles = [str(conversations.get_row_at(i)[0]) for i in range(2)]
        assert "What is the launch code?" in titles
        await pilot.press(*["down"] * titles.index("What is the launch code?"), "enter")
        chat = app.screen.query_one(ChatPane)
        await wait_until(pilot, lambda: chat.conversation_id == 1 and chat.query(AnswerView))
        views = chat.query(AnswerView)
        assert [v.question for v in views] == ["What is the launch code?"]
        assert "blue-0" in views.first().answer_text
        assert [s.where for s in app.screen.query_one(SourcesPanel).sources] == [
            "handbook.md, page 1, lines 1-9"
        ]
        # A new question continues that conversation.
        await ask(pilot, "Anything else?")
        assert assistant.asked[-1]["conversation_id"] == 1
