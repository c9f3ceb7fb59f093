"""The chat: ask a question, watch the answer stream in, check its numbered sources."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Static

from localrag.records import Turn
from localrag.tui.answer_view import AnswerView
from localrag.tui.context_screen import ContextScreen
from localrag.tui.format import short_time
from localrag.tui.messages import AnswerEnded, AnswerStarted, AnswerToken, ConversationOpened
from localrag.tui.sources import Source, SourcesPanel, answer_sources

SHOW_EVERY_S = 0.1
"""How often a streaming answer is redrawn at most, in seconds."""
UI_SHARE = 0.1
"""The share of one core that redrawing a streaming answer may take. Each redraw lays out the
screen again (20-30 ms here), and on two cores that time is taken from llama.cpp's threads: at
ten redraws a second the app wrote 0.6-0.75 of the tokens per second of `ask` alone."""
WELCOME = (
    "Ask a question about your documents and recordings. Answers cite their sources as [n]:"
    " Ctrl+S goes to the sources (* cited), Enter opens one in its context."
)


def batched(tokens: Iterable[str], every_s: Callable[[], float]) -> Iterator[str]:
    """The tokens joined into one piece per `every_s()` seconds, so showing them costs the model
    little."""
    pending: list[str] = []
    shown_at = time.monotonic()
    iterator = iter(tokens)
    while True:
        try:
            token = next(iterator)
        except StopIteration:
            break
        except Exception:
            if pending:  # the model stopped mid-answer: show what it wrote, then the error
                yield "".join(pending)
            raise
        pending.append(token)
        if time.monotonic() - shown_at >= every_s():
            yield "".join(pending)
            pending.clear()
            shown_at = time.monotonic()
    if pending:
        yield "".join(pending)


class RedrawPace:
    """How long to wait between redraws so that they take about `UI_SHARE` of the UI's core.

    The UI thread's CPU time between two redraws is what drawing the last one cost (the app
    does next to nothing else while an answer streams), so the wait follows the answer's cost
    as it grows.
    """

    def __init__(self) -> None:
        self.every_s = SHOW_EVERY_S
        self._cpu_s: float | None = None

    def drawn(self) -> None:
        """Called on the UI thread as each piece of the answer is shown."""
        now = time.thread_time()
        if self._cpu_s is not None:
            self.every_s = min(1.0, max(SHOW_EVERY_S, (now - self._cpu_s) / UI_SHARE))
        self._cpu_s = now


class ChatPane(Vertical):
    """The conversation log, the sources of the latest answer, and the question input."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # "Cancel answer" pushed "^n New chat" off an 80-column footer while answering.
        Binding("escape", "cancel_answer", "Cancel", tooltip="Stop the model writing"),
        Binding("ctrl+s", "focus_sources", "Sources"),
        # The app's Ctrl+T, shown here (and in the library) but not while an answer is written:
        # with "esc Cancel" it would not fit an 80-column footer.
        Binding("ctrl+t", "record_note", "Record"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversation_id: int | None = None
        self.answer: Any | None = None
        self.view: AnswerView | None = None
        """Where the answer being written goes; None once the user left that conversation."""
        self.answering = False
        self.cancel_requested = False
        self.pace = RedrawPace()

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-main"):
            with VerticalScroll(id="chat-log"):
                yield Static(WELCOME, classes="hint", markup=False)
            yield SourcesPanel(id="sources")
        yield Input(placeholder="Ask a question and press Enter", id="question")

    def on_mount(self) -> None:
        self.query_one(SourcesPanel).show([])

    @property
    def log_view(self) -> VerticalScroll:
        return self.query_one("#chat-log", VerticalScroll)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_answer":
            return self.answering
        if action == "record_note":
            return not self.answering
        return True

    async def action_record_note(self) -> None:
        await self.app.run_action("record_note")

    # Asking

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "question":
            return
        event.stop()
        question = event.value.strip()
        if not question:
            return
        if self.answering:
            self.app.notify("Wait for the answer, or press Esc to cancel it.", severity="warning")
            return
        event.input.value = ""
        await self.ask(question)

    async def ask(self, question: str) -> None:
        app: Any = self.app
        await self.log_view.query(".hint").remove()  # the welcome makes room for the talk
        view = AnswerView(question)
        await self.log_view.mount(view)
        view.start()
        self.log_view.scroll_end(animate=False)
        self.answering, self.cancel_requested, self.answer, self.view = True, False, None, view
        self.refresh_bindings()
        assistant, conversation_id, options = app.assistant, self.conversation_id, app.ask_options()
        pace = self.pace = RedrawPace()

        def work() -> None:
            answer = None
            try:
                answer = assistant.ask(question, conversation_id=conversation_id, **options)
                self.post_message(AnswerStarted(answer))
                for text in batched(answer, lambda: pace.every_s):
                    self.post_message(AnswerToken(text))
            finally:
                self.post_message(AnswerEnded(answer, cancelled=self.cancel_requested))

        app.background(work, name="answer")

    def on_answer_started(self, message: AnswerStarted) -> None:
        self.answer = message.answer
        if self.cancel_requested:
            message.answer.cancel()
        if self.view is not None:  # retrieval is done: its sources are known before the answer
            self.view.set_meta("answering…  (Esc cancels)")
            self.query_one(SourcesPanel).show(answer_sources(message.answer))

    async def on_answer_token(self, message: AnswerToken) -> None:
        if self.view is not None:
            self.pace.drawn()
            await self.view.write(message.text)
            self.log_view.scroll_end(animate=False)

    async def on_answer_ended(self, message: AnswerEnded) -> None:
        answer, view = message.answer, self.view
        self.answering, self.answer, self.view = False, None, None
        self.refresh_bindings()
        if view is None:  # the user moved to another conversation meanwhile
            return
        await view.finish(answer, message.cancelled)
        if answer is None:
            return
        if getattr(answer, "conversation_id", None) is not None:
            self.conversation_id = answer.conversation_id
        self.query_one(SourcesPanel).show(answer_sources(answer))
        self.log_view.scroll_end(animate=False)
        self.app.answer_finished(answer)  # type: ignore[attr-defined]

    def action_cancel_answer(self) -> None:
        if not self.answering:
            return
        self.cancel_requested = True
        if self.answer is not None:
            self.answer.cancel()

    # Sources and conversations

    def action_focus_sources(self) -> None:
        self.query_one(SourcesPanel).focus()

    def on_sources_panel_chosen(self, message: SourcesPanel.Chosen) -> None:
        self.app.push_screen(ContextScreen(message.source))

    async def new_conversation(self) -> None:
        self.action_cancel_answer()
        self.view = None
        self.conversation_id = None
        await self.log_view.remove_children()
        await self.log_view.mount(Static(WELCOME, classes="hint", markup=False))
        self.query_one(SourcesPanel).show([])
        self.query_one("#question", Input).focus()

    async def on_conversation_opened(self, message: ConversationOpened) -> None:
        await self.show_conversation(message.conversation_id, message.turns)

    async def show_conversation(self, conversation_id: int, turns: list[Turn]) -> None:
        self.action_cancel_answer()
        self.view = None
        self.conversation_id = conversation_id
        await self.log_view.remove_children()
        question, sources = "", []
        for turn in turns:
            if turn.role == "user":
                question = turn.text
                continue
            sources = [Source.from_stored(c) for c in turn.citations]
            await self.log_view.mount(
                AnswerView(question, turn.text, f"answered {short_time(turn.created_at)}")
            )
            question = ""
        if question:
            await self.log_view.mount(AnswerView(question, "", "no answer was stored"))
        self.query_one(SourcesPanel).show(sources)
        self.log_view.scroll_end(animate=False)
        self.query_one("#question", Input).focus()
