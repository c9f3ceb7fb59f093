"""Chat: the answer streams in with numbered citations; a citation opens in its context."""

from __future__ import annotations

import pytest
from textual.widgets import Markdown, Static
from tui_fakes import FakeAssistant
from tui_helpers import SIZE, ask, chat, context_shown, notifications, status, wait_until

from localrag.errors import ModelError
from localrag.tui.answer_view import AnswerView
from localrag.tui.context_screen import ContextScreen
from localrag.tui.main_screen import MainScreen
from localrag.tui.model_picker import ModelPicker
from localrag.tui.sources import SourcesPanel
from localrag.tui.status_bar import StatusBar

pytestmark = pytest.mark.anyio


def last_meta(app) -> str:
    return str(app.screen.query(AnswerView).last().query_one(".meta", Static).render())


async def test_ask_streams_an_answer_with_citations_and_timings(app, assistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, MainScreen)
        await ask(pilot, "What is the launch code?")
        view = app.screen.query(AnswerView).last()
        assert view.question == "What is the launch code?"
        assert "blue-0" in view.answer_text and "[1]" in view.answer_text
        sources = app.screen.query_one(SourcesPanel).sources
        # Every retrieved source is listed with its place and score; the cited one is marked.
        assert [s.label() for s in sources] == [
            "*[1] handbook.md, page 1, lines 1-9  0.90",
            " [2] standup.flac @ 00:00–00:10  0.80",
        ]
        assert "retrieval 12 ms" in last_meta(app) and "first token" in last_meta(app)
        status = str(app.screen.query_one(StatusBar).render())
        assert "retrieval ON" in status and "fake-model" in status
        # A follow-up stays in the same conversation.
        await ask(pilot, "And the second?")
        assert [q["conversation_id"] for q in assistant.asked] == [None, 1]


async def test_choosing_a_citation_opens_it_in_context(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the launch code?")
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: context_shown(app))
        cited = app.screen.query_one(".passage.cited", Static)
        assert "Passage 1 of handbook.md" in str(cited.render())
        assert len(app.screen.query(".passage")) == 3  # the cited chunk and two after it
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_an_audio_citation_opens_the_transcript_around_that_time(assistant) -> None:
    from localrag.tui import build_app

    assistant.docs.reverse()  # the recording becomes source [1]
    app = build_app(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What was said?")
        assert "standup.flac @ 00:00–00:10" in app.screen.query_one(SourcesPanel).sources[0].label()
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: context_shown(app))
        passages = app.screen.query(".passage")
        assert passages.first().border_title == "00:00–00:05"
        assert passages.last().border_title == "00:35–00:40"  # 30 s after the cited range
        assert all("cited" in p.classes for p in passages[:2])


async def start_endless_answer(pilot) -> None:
    """Ask the fake set to `slow`, and wait until the answer is being written."""
    await pilot.press(*"Tell me everything", "enter")
    app = pilot.app
    await wait_until(pilot, lambda: "more" in app.screen.query(AnswerView).last().answer_text)


async def test_escape_cancels_an_answer(app, assistant: FakeAssistant) -> None:
    assistant.slow = True
    async with app.run_test(size=SIZE) as pilot:
        await start_endless_answer(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not chat(app).answering, "answer stopped")
        assert last_meta(app).startswith("cancelled")


async def test_core_errors_become_notifications(app, assistant: FakeAssistant) -> None:
    assistant.fail_ask = ModelError("/models/x.gguf: truncated; run `localrag models pull`")
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Anything?")
        await wait_until(pilot, lambda: notifications(pilot))
        assert notifications(pilot) == ["/models/x.gguf: truncated; run `localrag models pull`"]
        assert app.is_running
        assert last_meta(app) == "no answer (see the notification)"


async def choose_model(pilot, *keys: str) -> None:
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelPicker))
    await pilot.press(*keys, "enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, MainScreen))


async def test_retrieval_off_reaches_the_core(app, assistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        assert "retrieval OFF" in status(app)
        await ask(pilot, "Hello?")
        assert assistant.asked[-1]["retrieval"] is False
        assert app.screen.query_one(SourcesPanel).sources == []
        await pilot.press("ctrl+r")
        assert "retrieval ON" in status(app)


async def test_switching_to_a_merged_version_or_a_runtime_adapter(app, assistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "model fake-model" in status(app))
        assert "adapter none" in status(app)
        await choose_model(pilot, "down")  # legal@v1, merged
        await wait_until(pilot, lambda: "adapter legal@v1" in status(app))
        assert assistant.active == "legal@v1"
        await ask(pilot, "Hello?")
        assert assistant.asked[-1]["adapter"] is None  # the active version answers
        await choose_model(pilot, "down")  # from legal@v1 down to the runtime adapter
        assert "adapter legal (runtime)" in status(app)
        await ask(pilot, "Hello again?")
        assert assistant.asked[-1]["adapter"] == "legal"
        assert assistant.asked[-1]["runtime_adapter"] is True
        await choose_model(pilot, "home")  # back to the base model
        await wait_until(pilot, lambda: "adapter none" in status(app))
        assert assistant.active is None
        app.action_rollback_model()  # also in the command palette
        await wait_until(pilot, lambda: "adapter legal@v1" in status(app))
        assert "Answers now come from legal@v1." in notifications(pilot)


async def test_links_and_images_in_an_answer_are_plain_text(app, assistant) -> None:
    # Long enough to stream unchecked, as a long answer does: what is shown is still made safe.
    assistant.reply = "The launch code is blue-0 [1]. " * 5 + (
        "See [the site](http://evil.example/x) and ![logo](http://evil.example/i.png) [1]."
    )
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Where?")
        markdown = app.screen.query(AnswerView).last().query_one(Markdown)
        text = " ".join(str(b._content) for b in markdown.query("MarkdownBlock"))
        assert "[the site](http://evil.example/x)" in text
        assert "[image: logo]" in text and "i.png" not in text
        assert not markdown.query("MarkdownBlock").filter(".link")


async def test_a_new_conversation_during_an_answer_stops_it_and_starts_afresh(
    app, assistant: FakeAssistant
) -> None:
    assistant.slow = True
    async with app.run_test(size=SIZE) as pilot:
        await start_endless_answer(pilot)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not chat(app).answering, "the answer stopped")
        assert not app.screen.query(AnswerView)
        assistant.slow = False
        await ask(pilot, "A fresh question")
        assert assistant.asked[-1]["conversation_id"] is None


async def test_a_source_deleted_since_the_answer_says_so(app, assistant: FakeAssistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the launch code?")
        assistant.docs.clear()  # chunk_context now fails, as for a deleted document
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ContextScreen))
        body = app.screen.query_one("#context-body")
        await wait_until(pilot, lambda: "nothing found" in str(body.query_one(Static).render()))
        assert notifications(pilot) == ["chunk 100: no such chunk in the vault"]
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


def test_batching_the_stream_loses_no_text() -> None:
    from localrag.tui.chat import batched

    tokens = [f"w{i} " for i in range(50)]
    assert "".join(batched(iter(tokens), lambda: 0.0)) == "".join(tokens)
    assert list(batched(iter(tokens), lambda: 3600.0)) == ["".join(tokens)]


def test_redraws_slow_down_to_a_tenth_of_the_ui_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redraw that cost the UI thread 30 ms of CPU waits 0.3 s before the next; a cheap one
    keeps the fastest pace, and no wait passes a second."""
    from localrag.tui import chat

    cpu = iter([0.0, 0.03, 0.031, 0.531])
    monkeypatch.setattr(chat.time, "thread_time", lambda: next(cpu))
    pace = chat.RedrawPace()
    pace.drawn()
    assert pace.every_s == chat.SHOW_EVERY_S
    pace.drawn()
    assert pace.every_s == pytest.approx(0.3)
    pace.drawn()
    assert pace.every_s == chat.SHOW_EVERY_S
    pace.drawn()
    assert pace.every_s == 1.0


def test_the_line_under_a_not_found_answer_says_who_found_nothing() -> None:
    from types import SimpleNamespace

    from localrag.tui.answer_view import describe_end

    def ended(reason: str) -> str:
        answer = SimpleNamespace(abstain_reason=reason, timings_ms=None, tokens_per_s=None)
        return describe_end(answer, cancelled=False, wrote=True)

    assert ended("no_sources") == "no source was close enough to answer from"
    # Retrieval found sources (jfk.flac at 1.00) and the model still said not found.
    assert ended("model") == "the model found no answer in its sources"
    assert ended("unsupported") == (
        "no source it cites backs what the model wrote as an answer, so it is not shown"
    )


async def test_a_refusal_shows_the_closest_passage(app, assistant: FakeAssistant) -> None:
    from localrag.prompt import NOT_FOUND

    assistant.reply = NOT_FOUND
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the launch code?")
        view = app.screen.query(AnswerView).last()
        assert view.answer_text.startswith(NOT_FOUND)
        assert "> Closest passage [1] handbook.md, page 1, line 1:" in view.answer_text
        assert "the launch code is blue-0." in view.answer_text
        assert last_meta(app).startswith("the model found no answer in its sources")
