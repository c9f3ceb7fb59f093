"""What a reader returns: the extracted text and its blocks with their positions.

A block is a paragraph, a heading, a list item or a timed transcript segment: a range of the
extracted text with where it sits in the source (page, lines, heading path, seconds). The chunker
packs blocks into chunks and never splits across a heading unless a section is too long.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from localrag.errors import IngestError
from localrag.records import Span


@dataclass(frozen=True)
class Limits:
    """How much a reader may take from one file before it gives up on it."""

    max_file_bytes: int = 200_000_000
    """Largest source file read at all."""
    max_text_chars: int = 20_000_000
    """Largest extracted text (about 4,000 pages of prose)."""
    max_pages: int = 5_000
    """Most PDF pages."""
    max_decompressed_bytes: int = 300_000_000
    """Most bytes a DOCX (zip) or a PDF stream may inflate to."""
    max_page_content_bytes: int = 20_000_000
    """Most bytes one PDF page's drawing instructions may inflate to before its text is read
    (a text page has kilobytes, a detailed map a few MB; pypdf parses them in Python, so a
    120 MB page of blanks took a minute)."""
    max_seconds: float = 300.0
    """Longest a reader may work on one file."""
    max_blocks: int = 500_000
    """Most paragraphs (blocks) in one file: prose of the longest text allowed has about 70,000;
    hundreds of thousands of one-word paragraphs are a bomb, and each costs memory."""


@dataclass(frozen=True)
class Block:
    """One paragraph, heading or segment of the extracted text."""

    span: Span
    """Its position; `char_start`/`char_end` index the extracted text."""
    is_heading: bool = False
    """A heading starts a new chunk when the current one is big enough."""


@dataclass(frozen=True)
class Extracted:
    """The text of one file, ready to chunk."""

    text: str
    """All the text, blocks separated by blank lines."""
    blocks: list[Block]
    """The blocks in reading order."""
    title: str = ""
    """The document's own title, if it has one."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Page count, duration_s and the like."""


@dataclass(frozen=True)
class Progress:
    """A reader's report of how far it got, yielded before its `Extracted`."""

    fraction: float
    """Share of the file done (pages, bytes or seconds)."""
    rtf: float | None = None
    """For a recording: seconds of work per second of audio so far (the real-time factor)."""
    eta_s: float | None = None
    """For a recording: seconds of work left at that rate, when known."""


class Reader(Protocol):
    """Reads one file: yields `Progress` now and then, and finally one `Extracted`."""

    def __call__(self, path: Path, limits: Limits) -> Iterator[Progress | Extracted]: ...


class Deadline:
    """Raises an `IngestError` once a reader has worked on a file for too long."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = path
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise IngestError(
                f"{self.path}: gave up after {self.seconds:.0f} s (parser time limit)"
            )


class TextBuilder:
    """Accumulates blocks and the text they index, one blank line between blocks."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.size = 0
        self.headings: list[tuple[int, str]] = []

    @property
    def heading_path(self) -> str | None:
        return " > ".join(h for _, h in self.headings) or None

    def heading(self, level: int, text: str, **where: Any) -> None:
        """A heading of `level` (1 = top): it becomes the heading path of what follows."""
        text = " ".join(text.split())
        if not text:
            return
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        self.add(text, is_heading=True, **where)

    def add(self, text: str, *, is_heading: bool = False, **where: Any) -> None:
        """A paragraph; `where` holds Span fields (page, line_start, line_end, start_s, end_s)."""
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.size += 2
        start = self.size
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.limits.max_text_chars:
            raise IngestError(
                f"{self.path}: more than {self.limits.max_text_chars:,} characters of text; "
                "split the file"
            )
        if len(self.blocks) >= self.limits.max_blocks:
            raise IngestError(
                f"{self.path}: more than {self.limits.max_blocks:,} paragraphs; split the file"
            )
        span = Span(char_start=start, char_end=self.size, heading=self.heading_path, **where)
        self.blocks.append(Block(span, is_heading))

    def first_heading(self) -> str:
        """The text of the first heading, "" if there is none (a title for Markdown and DOCX)."""
        for block in self.blocks:
            if block.is_heading:
                return "".join(self.parts)[block.span.char_start : block.span.char_end]
        return ""

    def build(self, title: str = "", **meta: Any) -> Extracted:
        return Extracted("".join(self.parts), self.blocks, title, meta)
