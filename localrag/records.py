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
    speaker: str | None = None
    """Who speaks in this part of a recording: "Speaker 2", or the name the user gave them."""


@dataclass(frozen=True)
class NewDocument:
    """A document about to be stored."""

    path: str
    """Absolute path of the source file (or a name for sources without one)."""
    sha256: str
    """Hash of the file's bytes: unchanged files are skipped, moved ones recognised."""
    kind: str
    """txt, md, html, pdf, docx, audio or image."""
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
    speaker: str | None = None
    """Who says it ("Speaker 2", or the name given with `localrag speakers rename`); None when
    speakers were not told apart."""


@dataclass(frozen=True)
class IngestEvent:
    """Progress of `Assistant.add()`: a stream of these per file, ending in a final status."""

    path: str
    status: str
    """started, progress, then one of: added, updated, unchanged, moved, failed, skipped."""
    detail: str = ""
    """The reason for failed or skipped; the old path for moved."""
    doc_id: int | None = None
    chunks_done: int = 0
    chunks_total: int = 0
    fraction: float | None = None
    """Share of the file done (bytes, pages or audio seconds), when known."""
    rtf: float | None = None
    """While a recording is transcribed: seconds of work per second of audio so far."""
    eta_s: float | None = None
    """While a recording is transcribed: seconds of work left at that rate, when known."""

    @property
    def final(self) -> bool:
        return self.status not in ("started", "progress")


@dataclass(frozen=True)
class Citation:
    """A numbered source an answer cites, pointing at a real chunk."""

    n: int
    """The number used in the answer text, [n]."""
    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Turn:
    """One message of a stored conversation."""

    id: int
    conversation_id: int
    role: str
    """user or assistant."""
    text: str
    created_at: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    """For assistant turns: the citations as stored (n, chunk_id, path, span)."""


@dataclass(frozen=True)
class Conversation:
    """A stored conversation."""

    id: int
    title: str
    created_at: str
    updated_at: str
    turn_count: int


@dataclass(frozen=True)
class QaItem:
    """One question of a question set made from the vault (`localrag eval make-qa`)."""

    question: str
    answers: tuple[str, ...]
    """Gold answers, each found in its chunk; empty for a question the vault cannot answer."""
    kind: str
    """answerable, or unanswerable (an answerable question about a subject the vault lacks)."""
    doc_id: int | None = None
    """The document it was made from: deleting the document deletes the question."""
    chunk_id: int | None = None
    """The chunk it was made from."""
    held_out: bool = False
    """Kept out of `adapter train --from-set`, for `eval compare --held-out`."""


@dataclass(frozen=True)
class QaSet:
    """A stored question set, without its questions."""

    name: str
    created_at: str
    questions: int
    unanswerable: int
    held_out: int
    meta: dict[str, Any] = field(default_factory=dict)
    """How it was made: model, chunks tried, questions asked back, seed."""

    @property
    def asked_back(self) -> int:
        """Questions asked back from a sentence, where the model's proposal failed the check."""
        return int(self.meta.get("asked_back", 0))

    def counts(self) -> str:
        """`25 questions (5 unanswerable, 8 held out for training, 19 asked back from a
        sentence of the text)`."""
        made = f", {self.asked_back} asked back from a sentence of the text"
        return (
            f"{self.questions} questions ({self.unanswerable} unanswerable, {self.held_out} held "
            f"out for training{made if self.asked_back else ''})"
        )


@dataclass(frozen=True)
class EmbedderInfo:
    """Which embedder made a set of vectors. The vault records it beside its vectors: a query
    embedded by another embedder would be compared with them and rank garbage, silently."""

    name: str
    """The name it is chosen by (`localrag models list`)."""
    fingerprint: str
    """What the vectors really depend on: the SHA-256 of the model's files (for a fake, its
    parameters). Two names for the same files make the same vectors."""
    dim: int
    """Dimension of its vectors."""


@dataclass(frozen=True)
class EmbedderSwitch:
    """A switch of the vault's embedder under way: every chunk re-embedded into a staging area,
    swapped in at once when all are done (see `localrag.reembed`)."""

    to: EmbedderInfo
    """The embedder the chunks are being re-embedded with."""
    chunks_done: int
    """Chunks that have their new vector."""
    chunks_total: int
    """Chunks in the vault now."""
    started_at: str
    """When the switch began, ISO 8601 UTC."""


@dataclass(frozen=True)
class ReembedProgress:
    """Progress of re-embedding the vault (`Assistant.reembed()`), one event per stored batch."""

    status: str
    """started, progress, then done (the new vectors are swapped in), current (the vault's
    vectors are already from this embedder; a pending switch was cancelled) or empty (the vault
    has no vectors yet: the embedder serves the first ones)."""
    to: EmbedderInfo
    chunks_done: int = 0
    chunks_total: int = 0
    elapsed_s: float = 0.0
    """Since this run started (a resumed run counts its own time only)."""
    chunks_per_s: float = 0.0
    """Chunks embedded per second by this run."""
    cancelled: bool = False
    """With `current`: a pending switch to another embedder was dropped."""
