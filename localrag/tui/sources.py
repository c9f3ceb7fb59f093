"""The sources panel: the chunks an answer cites, each with file, place and score."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from localrag.display import one_line
from localrag.prompt import locator


@dataclass(frozen=True)
class Source:
    """One numbered source, from a live `Citation` or from a stored turn's citation."""

    n: int
    chunk_id: int
    path: str
    where: str
    """`file.pdf, page 3, lines 4-9`, or `talk.flac @ 01:02–01:30`."""
    score: float | None = None
    doc_id: int | None = None
    start_s: float | None = None
    """For a recording: where the cited part starts, in seconds."""
    end_s: float | None = None
    cited: bool = True
    """Whether the answer cites it (the panel also lists retrieved sources it did not cite)."""

    @property
    def is_audio(self) -> bool:
        return self.start_s is not None

    @classmethod
    def from_chunk(cls, n: int, chunk: Any, score: float | None, cited: bool = True) -> Source:
        return cls(
            n=n,
            chunk_id=chunk.id,
            path=chunk.path,
            where=locator(chunk),
            score=score,
            doc_id=chunk.doc_id,
            start_s=chunk.span.start_s,
            end_s=chunk.span.end_s,
            cited=cited,
        )

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Source:
        """From `answer.citation_dict()` as kept with an assistant turn."""
        path = str(stored.get("path", ""))
        return cls(
            n=int(stored.get("n", 0)),
            chunk_id=int(stored["chunk_id"]),
            path=path,
            where=str(stored.get("where") or Path(path).name),
            score=stored.get("score"),
            doc_id=stored.get("doc_id"),
            start_s=stored.get("start_s"),
            end_s=stored.get("end_s"),
        )

    def label(self) -> str:
        score = f"  {self.score:.2f}" if self.score is not None else ""
        return f"{'*' if self.cited else ' '}[{self.n}] {one_line(self.where)}{score}"


def answer_sources(answer: Any) -> list[Source]:
    """Every source the answer was given, in prompt order, the cited ones marked."""
    cited = {c.n for c in getattr(answer, "citations", None) or []}
    given = getattr(answer, "sources", None)
    if given is None:  # an answer that only knows its citations
        return [Source.from_chunk(c.n, c.chunk, c.score) for c in answer.citations]
    return [Source.from_chunk(s.n, s.chunk, s.hit.score, s.n in cited) for s in given]


class SourcesPanel(OptionList):
    """Lists the sources of the latest answer; Enter on one opens it in its context."""

    BORDER_TITLE = "Sources"

    class Chosen(Message):
        def __init__(self, source: Source) -> None:
            super().__init__()
            self.source = source

    def __init__(self, **kwargs: Any) -> None:
        # The labels name files: `notes [draft].md` must not be read as markup.
        super().__init__(markup=False, **kwargs)
        self.sources: list[Source] = []

    def show(self, sources: list[Source]) -> None:
        self.sources = sources
        self.clear_options()
        if sources:
            self.add_options(Option(s.label(), id=str(i)) for i, s in enumerate(sources))
            self.highlighted = 0
        else:
            self.add_option(Option("no sources yet", disabled=True))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Chosen(self.sources[int(event.option.id)]))
