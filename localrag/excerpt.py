"""Words and excerpts of a text: the content words that matching counts, and a window of whole
sentences around a place (an answer, in training) or around the question's words (at answer
time, so the model reads what it was trained on: about 70 words per source)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_STOP = """a an and are as at be by did do does for from had has have he her his how i in is it its
of on or she that the their them they this to was were what when where which who whom why will
with you your can could would should about into than then there these those"""
STOPWORDS = frozenset(_STOP.split())
SOURCE_WORDS = 70
"""How much of a source an answer reads, in words (`Settings.source_words`)."""


def content_list(text: str) -> list[str]:
    """The words of `text` that carry meaning (lower case, no stop words), in order."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def content_words(text: str) -> set[str]:
    return set(content_list(text))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def _located(text: str) -> list[tuple[int, str]]:
    """Each sentence of `text` with the character where it starts."""
    located, pos = [], 0
    for s in sentences(text):
        pos = text.find(s, pos)
        located.append((pos, s))
        pos += len(s)
    return located


def window(text: str, max_words: int, at: int | None = None, length: int = 0) -> str:
    """Whole sentences of `text` around the character range [at, at+length), up to about
    `max_words` words; the range is always kept, so an answer is never cut."""
    located = _located(text)
    if not located:
        return text.strip()
    starts = [start for start, _ in located]
    parts = [s for _, s in located]
    first = 0
    if at is not None:
        first = max(i for i, s in enumerate(starts) if s <= at)
    last = first
    if at is not None:
        while last + 1 < len(parts) and starts[last + 1] < at + length:
            last += 1
    words = sum(len(parts[i].split()) for i in range(first, last + 1))
    lo, hi = first, last
    while True:
        grew = False
        for side in (1, -1):
            i = hi + 1 if side == 1 else lo - 1
            if 0 <= i < len(parts) and words + len(parts[i].split()) <= max_words:
                words += len(parts[i].split())
                lo, hi = (lo, i) if side == 1 else (i, hi)
                grew = True
        if not grew:
            break
    chosen = " ".join(parts[lo : hi + 1])
    if at is None and len(chosen.split()) > max_words:
        chosen = " ".join(chosen.split()[:max_words])
    return chosen


def focus(text: str, question: str, max_words: int) -> str:
    """About `max_words` words of `text`, whole sentences around the one sharing most words
    with `question` (the first, on a tie); `text` itself when it is that short already."""
    text = text.strip()
    if len(text.split()) <= max_words:
        return text
    wanted = content_words(question)
    best, best_at = 0, 0
    for start, s in _located(text):
        shared = len(wanted & content_words(s))
        if shared > best:
            best, best_at = shared, start
    return window(text, max_words, best_at, 1)
