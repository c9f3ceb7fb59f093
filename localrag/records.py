"""The records that pass between stages: frozen dataclasses, units in the field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """Where a piece of text sits in its source, so a citation can be checked."""

    page: int | None = None
    """1-based page of a PDF."""
    line_start: int | None = None
    """1-based first line (text, Markdown, HTML, DOCX paragraphs)."""
    line_end: int | None = None
    """1-based last line, inclusive."""
    char_start: int | None = None
    """Offset of the first character in the extracted text."""
    char_end: int | None = None
    """Offset one past the last character."""
    heading: str | None = None
    """The heading path, "Intro > Scope"."""
    start_s: float | None = None
    """Start time in a recording, in seconds."""
    end_s: float | None = None
    """End time in a recording, in seconds."""


@dataclass(frozen=True)
class NewDocument:
    """A document about to be stored."""

    path: str
    """Absolute path of the source file (or a name for sources without one)."""
    sha256: str
    """Hash of the file's bytes: unchanged files are skipped, moved ones recognised."""
    kind: str
    """txt, md, html, pdf, docx or audio."""
    size_bytes: int
    """Size of the source file."""
    title: str = ""
    """A title if the source has one, else the file name."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (page count, duration_s, language...)."""


@dataclass(frozen=True)
class NewChunk:
    """A chunk about to be stored with its document."""

    text: str
    """The chunk's text as shown to the model and the user."""
    span: Span
    """Where it comes from."""
    token_count: int
    """Its length in embedder tokens."""


@dataclass(frozen=True)
class Document:
    """A stored document."""

    id: int
    path: str
    sha256: str
    kind: str
    size_bytes: int
    title: str
    chunk_count: int
    added_at: str
    """When it was added, ISO 8601 UTC."""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A stored chunk with the document it belongs to."""

    id: int
    doc_id: int
    path: str
    """The document's path."""
    ordinal: int
    """0-based position of the chunk in its document."""
    text: str
    span: Span
    kind: str = "txt"
    """The document's kind."""


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, with its score (higher is better)."""

    chunk: Chunk
    score: float
    """The fused score for hybrid search, else the mode's own score."""


@dataclass(frozen=True)
class Segment:
    """One timed piece of a transcript."""

    start_s: float
    end_s: float
    text: str
