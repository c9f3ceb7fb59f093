"""A cited chunk in its context: the chunks around it, or the transcript around that time."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from localrag.display import clock, one_line, visible
from localrag.prompt import locator
from localrag.tui.messages import ContextLoaded, ContextText
from localrag.tui.sources import Source

AROUND_CHUNKS = 2
"""How many chunks before and after the cited one are shown."""
AROUND_S = 30.0
"""How much of a transcript before and after the cited time range is shown, in seconds."""


def load_context(assistant: Any, source: Source) -> ContextText:
    """Runs in a worker: what to show around `source`."""
    title = f"[{source.n}] {one_line(source.path)}"
    if source.is_audio:
        doc_id = source.doc_id
        if doc_id is None:
            doc_id = assistant.chunk_context(source.chunk_id, before=0, after=0)[0].doc_id
        start = source.start_s or 0.0
        end = source.end_s if source.end_s is not None else start
        segments = [
            s
            for s in assistant.transcript(doc_id)
            if s.end_s > start - AROUND_S and s.start_s < end + AROUND_S
        ]
        passages = [
            (
                f"{clock(s.start_s)}–{clock(s.end_s)}",
                visible(s.text),
                s.end_s > start and s.start_s < end,
            )
            for s in segments
        ]
        return ContextText(title, passages)
    chunks = assistant.chunk_context(source.chunk_id, before=AROUND_CHUNKS, after=AROUND_CHUNKS)
    return ContextText(
        title,
        [(one_line(locator(c)), visible(c.text), c.id == source.chunk_id) for c in chunks],
    )


class ContextScreen(ModalScreen[None]):
    """Shows one source in its context; Esc closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        with Vertical(id="context-box"):
            # File names and paths are shown as they are, never read as markup.
            title = f"[{self.source.n}] {one_line(Path(self.source.path).name)}"
            yield Static(title, id="context-title", markup=False)
            yield VerticalScroll(Static("loading…"), id="context-body")
        yield Footer()

    def on_mount(self) -> None:
        app: Any = self.app
        assistant, source = app.assistant, self.source

        def work() -> None:
            context = ContextText(one_line(source.path), [])
            try:
                context = load_context(assistant, source)
            finally:  # on an error (shown as a notification) the screen says it found nothing
                self.post_message(ContextLoaded(context))

        app.background(work, name="context")

    async def on_context_loaded(self, message: ContextLoaded) -> None:
        self.query_one("#context-title", Static).update(message.context.title)
        body = self.query_one("#context-body", VerticalScroll)
        await body.remove_children()
        cited = None
        for place, text, is_cited in message.context.passages:
            passage = Static(text, markup=False, classes="passage cited" if is_cited else "passage")
            passage.border_title = Text(place)  # a str title is markup; this names a file
            await body.mount(passage)
            if is_cited and cited is None:
                cited = passage
        if not message.context.passages:
            await body.mount(Static("nothing found around this source"))
        if cited is not None:
            body.scroll_to_widget(cited, animate=False, top=True)
        body.focus()
