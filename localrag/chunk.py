"""Extracted text to chunks: token-aware, along paragraph and heading boundaries, a little overlap.

Blocks (paragraphs, headings, segments) are cut into sentences; sentences are packed into chunks
of at most `max_tokens` embedder tokens. A chunk closes at a page break, and at a heading once it
holds `min_tokens`. When full, it closes at its last paragraph break if that keeps it at least
half full, else between sentences, and then the next chunk repeats up to `overlap_tokens` of
the previous one so that a fact cut in two is still found whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from localrag.ingest.base import Extracted
from localrag.records import NewChunk, Span

SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+(?=\S)|\n\s*(?=[-*•\d])")


class Tokenizer(Protocol):
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class ChunkSettings:
    """How big chunks are, in embedder tokens."""

    max_tokens: int = 200
    """Longest chunk; the default embedder reads 256 tokens at most."""
    min_tokens: int = 48
    """A heading does not close a chunk shorter than this."""
    overlap_tokens: int = 32
    """Most tokens a chunk repeats from the previous one when it had to cut a paragraph."""


@dataclass
class _Unit:
    start: int
    end: int
    span: Span
    tokens: int
    is_heading: bool
    opens_paragraph: bool
    opens_page: bool


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces, at = [], start
    for m in SENTENCE_END.finditer(text, start, end):
        if m.start() > at:
            pieces.append((at, m.start()))
        at = m.end()
    if at < end:
        pieces.append((at, end))
    return pieces


LONG_PIECE_CHARS = 20_000
"""A sentence longer than this (a table, a list with no stops, one 20 MB line) is sliced at
whitespace before it is tokenized, so that the tokenizer never holds more than a slice."""


def _slices(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > LONG_PIECE_CHARS:
        cut = text.rfind(" ", start + LONG_PIECE_CHARS // 2, start + LONG_PIECE_CHARS)
        cut = cut + 1 if cut > 0 else start + LONG_PIECE_CHARS
        pieces.append((start, cut))
        start = cut
    return [*pieces, (start, end)]


class _Lines:
    """Line numbers of offsets met in increasing order: each newline is counted once (counting
    from the block's start for every piece was quadratic in a block of a million sentences)."""

    def __init__(self, text: str, span: Span, start: int) -> None:
        self.text, self.line, self.at = text, span.line_start, start

    def __call__(self, offset: int) -> int | None:
        if self.line is None:
            return None
        if offset >= self.at:
            self.line += self.text.count("\n", self.at, offset)
            self.at = offset
            return self.line
        return self.line - self.text.count("\n", offset, self.at)


def _units(doc: Extracted, tok: Tokenizer, max_tokens: int) -> list[_Unit]:
    text = doc.text
    raw: list[tuple[int, int, Span, bool, bool, bool]] = []
    page = None
    for block in doc.blocks:
        s = block.span
        b0, b1 = s.char_start or 0, s.char_end or 0
        opens_page = s.page is not None and s.page != page
        page = s.page
        pieces = [(b0, b1)] if block.is_heading else _sentences(text, b0, b1)
        pieces = [sliced for a, b in pieces for sliced in _slices(text, a, b)]
        line_of = _Lines(text, s, b0)
        for i, (a, b) in enumerate(pieces):
            line_a, line_b = line_of(a), line_of(b)
            sub = Span(
                page=s.page,
                line_start=line_a,
                line_end=line_b,
                char_start=a,
                char_end=b,
                heading=s.heading,
                start_s=s.start_s,
                end_s=s.end_s,
                speaker=s.speaker,
            )
            raw.append((a, b, sub, block.is_heading, i == 0, opens_page and i == 0))
    counts = tok.count_tokens([text[a:b] for a, b, *_ in raw])
    units: list[_Unit] = []
    for (a, b, span, heading, para, new_page), n in zip(raw, counts, strict=True):
        if n <= max_tokens:
            units.append(_Unit(a, b, span, n, heading, para, new_page))
            continue
        # A sentence longer than a chunk: cut it by tokens.
        offsets = tok.token_offsets(text[a:b])
        line_of = _Lines(text, span, a)
        for k in range(0, len(offsets), max_tokens):
            window = offsets[k : k + max_tokens]
            wa, wb = a + window[0][0], a + window[-1][1]
            sub = Span(
                page=span.page,
                line_start=line_of(wa),
                line_end=line_of(wb),
                char_start=wa,
                char_end=wb,
                heading=span.heading,
                start_s=span.start_s,
                end_s=span.end_s,
                speaker=span.speaker,
            )
            units.append(
                _Unit(wa, wb, sub, len(window), heading, para and k == 0, new_page and k == 0)
            )
    return units


def _chunk(text: str, units: list[_Unit]) -> NewChunk:
    first, last = units[0], units[-1]
    body = next((u for u in units if not u.is_heading), first)
    same_page = [u for u in units if u.span.page == first.span.page]
    line_ends = [u.span.line_end for u in same_page if u.span.line_end is not None]
    span = Span(
        page=first.span.page,
        line_start=first.span.line_start,
        line_end=max(line_ends) if line_ends else None,
        char_start=first.start,
        char_end=last.end,
        heading=body.span.heading,
        start_s=first.span.start_s,
        end_s=last.span.end_s,
        speaker=first.span.speaker,
    )
    return NewChunk(text[first.start : last.end], span, sum(u.tokens for u in units))


def chunk(doc: Extracted, tok: Tokenizer, settings: ChunkSettings | None = None) -> list[NewChunk]:
    """Cut the extracted text of one document into chunks with their spans."""
    cs = settings or ChunkSettings()
    units = _units(doc, tok, cs.max_tokens)
    chunks: list[NewChunk] = []
    current: list[_Unit] = []
    size = 0

    def close(upto: int) -> list[_Unit]:
        """Emit current[:upto]; return what the next chunk starts with."""
        done, rest = current[:upto], current[upto:]
        if done:
            chunks.append(_chunk(doc.text, done))
        return rest

    for u in units:
        # A page break always closes a chunk, so that a citation names one page; so does a new
        # speaker, so that a citation names one person.
        new_speaker = bool(current) and u.span.speaker != current[-1].span.speaker
        if current and (u.opens_page or new_speaker or (u.is_heading and size >= cs.min_tokens)):
            current, size = close(len(current)), 0
        while current and size + u.tokens > cs.max_tokens:
            cut, before = len(current), 0
            for i, c in enumerate(current):
                if i and c.opens_paragraph and before >= cs.max_tokens // 2:
                    cut = i
                before += c.tokens
            while cut > 1 and current[cut - 1].is_heading:
                cut -= 1
            rest = close(cut)
            if not rest and not u.opens_paragraph:
                # Cut between sentences: repeat the last few of them.
                keep: list[_Unit] = []
                for c in reversed(current):
                    if c.is_heading or sum(k.tokens for k in keep) + c.tokens > cs.overlap_tokens:
                        break
                    keep.insert(0, c)
                rest = keep if sum(k.tokens for k in keep) + u.tokens <= cs.max_tokens else []
            current = rest
            size = sum(c.tokens for c in current)
        current.append(u)
        size += u.tokens
    close(len(current))
    return chunks


def embedding_text(c: NewChunk) -> str:
    """What the embedder reads for a chunk: the chunk behind its heading path.

    A chunk deep in a section rarely names the section's subject; the heading gives it back
    (the path's last part is not repeated when the chunk starts with it).
    """
    return text_under_heading(c.text, c.span.heading)


def text_under_heading(text: str, heading: str | None) -> str:
    """`embedding_text` of a chunk's text and heading path (a stored chunk re-embedded)."""
    if not heading:
        return text
    parts = heading.split(" > ")
    if text.startswith(parts[-1]):
        parts = parts[:-1]
    return "\n\n".join([" > ".join(parts), text]) if parts else text
