"""One exchange in the chat: the question, the answer as Markdown, and a line of timings."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

from localrag.closest import Passage
from localrag.display import one_line, visible
from localrag.prompt import locator
from localrag.tui.format import offline_markdown, timings_line


class AnswerView(Vertical):
    """A question and its answer; the answer streams in while the model writes."""

    def __init__(self, question: str, answer_text: str = "", meta: str = "") -> None:
        super().__init__(classes="exchange")
        self.question = question
        self.answer_text = answer_text
        self.meta = meta
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"> {visible(self.question)}", markup=False, classes="question")
        yield Markdown(visible(self.answer_text), parser_factory=offline_markdown, open_links=False)
        yield Static(self.meta, markup=False, classes="meta")

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    def start(self) -> None:
        self.set_meta("searching your documents…  (Esc cancels)")
        self._stream = Markdown.get_stream(self.markdown)

    async def write(self, text: str) -> None:
        self.answer_text += text
        if self._stream is not None:
            await self._stream.write(visible(text))

    async def finish(self, answer: Any | None, cancelled: bool) -> None:
        closest = getattr(answer, "closest", None)
        if closest is not None:
            await self.write(closest_markdown(closest))
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.set_meta(describe_end(answer, cancelled, bool(self.answer_text.strip())))

    def set_meta(self, text: str) -> None:
        self.meta = text
        self.query_one(".meta", Static).update(text)


def closest_markdown(p: Passage) -> str:
    """The sentence closest to a question the model found no answer to, quoted and cited."""
    where = one_line(locator(p.chunk))
    return f"\n\n> Closest passage [{p.source.n}] {where}: \u201c{one_line(p.text)}\u201d"


_ABSTAINED = {
    "no_sources": "no source was close enough to answer from",  # the model was not asked
    "model": "the model found no answer in its sources",
    "unsupported": "no source it cites backs what the model wrote as an answer, so it is not shown",
}


def describe_end(answer: Any | None, cancelled: bool, wrote: bool) -> str:
    """The line under a finished answer: how it ended and how long it took."""
    if answer is None:
        return "no answer (see the notification)"
    parts = []
    error = getattr(answer, "error", None)
    if error:
        parts.append(f"interrupted: {error}")
    elif cancelled:
        parts.append("cancelled")
    elif getattr(answer, "abstain_reason", None):
        parts.append(_ABSTAINED[answer.abstain_reason])
    elif not wrote:
        parts.append("the model wrote nothing")
    timings = timings_line(
        getattr(answer, "timings_ms", None), getattr(answer, "tokens_per_s", None)
    )
    if timings:
        parts.append(timings)
    return " · ".join(parts)
