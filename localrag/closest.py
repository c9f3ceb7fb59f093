"""Where to read when the model found no answer: the sentence of its sources nearest the question.

A 135M model refuses many questions whose answer it was shown (a third of SQuAD's answerable
ones; "What did the speaker tell Americans to ask?" over the JFK recording). Its refusal stays a
refusal, since it invents nothing, but the user is pointed at the sentence that shares most words
with the question, quoted from the source and cited, so they can read the answer themselves.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from localrag.excerpt import content_words, sentences
from localrag.prompt import Source
from localrag.records import Chunk

MAX_WORDS = 40
"""The longest quote, in words; a longer sentence is cut around its shared words."""
_PARAGRAPH = re.compile(r"\n\s*\n")
_LIST_ITEM = re.compile(r"\n\s*(?=[-*•]\s|\d{1,2}[.)]\s)")
"""Where a line starts a list item: a README's items share a paragraph and often no full stop."""


@dataclass(frozen=True)
class Passage:
    """A sentence of a source, quoted where an answer would have been."""

    source: Source
    text: str
    chunk: Chunk
    """The source's chunk, its lines narrowed to the sentence's where they are known."""


def closest_passage(question: str, sources: Sequence[Source]) -> Passage | None:
    """The sentence of `sources` that shares most content words with `question` (the earlier
    source, then the earlier sentence, on a tie), if it shares at least two of them (or the only
    one a one-word question has); None otherwise."""
    wanted = content_words(question)
    if not wanted:
        return None
    best: tuple[int, Source, str] | None = None
    for source in sources:
        for sentence in sentences_of(source.text, spoken=source.chunk.span.start_s is not None):
            shared = len(wanted & content_words(sentence))
            if best is None or shared > best[0]:
                best = (shared, source, sentence)
    if best is None or best[0] < min(2, len(wanted)):
        return None
    _, source, sentence = best
    return Passage(source, _quote(sentence, wanted), _narrowed(source.chunk, sentence))


def sentences_of(text: str, *, spoken: bool = False) -> list[str]:
    """Sentences, a blank line or a list item's start ending one too (headings, commands and
    list items have no full stop); in a transcript the blank lines part the recogniser's
    segments, which cut sentences anywhere ("ask not what your country can do for you" | "ask
    what you can do ...")."""
    if spoken:
        return sentences(" ".join(text.split()))
    blocks = [b for p in _PARAGRAPH.split(text) for b in _LIST_ITEM.split(p)]
    return [" ".join(s.split()) for b in blocks for s in sentences(b)]


def _narrowed(chunk: Chunk, sentence: str) -> Chunk:
    """`chunk` with its lines narrowed to those `sentence` spans in it (found whatever its white
    space), so the citation names the sentence's own lines; as it is when they are not known."""
    span = chunk.span
    found = re.search(r"\s+".join(map(re.escape, sentence.split())), chunk.text)
    if span.line_start is None or found is None:
        return chunk
    first = span.line_start + chunk.text.count("\n", 0, found.start())
    last = span.line_start + chunk.text.count("\n", 0, found.end())
    return dataclasses.replace(
        chunk, span=dataclasses.replace(span, line_start=first, line_end=last)
    )


def _quote(sentence: str, wanted: set[str]) -> str:
    """`sentence`, or its `MAX_WORDS` words from a little before the first shared word, marked
    with "…" where cut."""
    words = sentence.split()
    if len(words) <= MAX_WORDS:
        return sentence
    first = next((i for i, w in enumerate(words) if content_words(w) & wanted), 0)
    start = max(0, min(first - 5, len(words) - MAX_WORDS))
    end = start + MAX_WORDS
    return ("… " if start else "") + " ".join(words[start:end]) + (" …" if end < len(words) else "")
