"""Grounding: an answer from sources says what one of its sources says, or that none does.

`SpanGuard` is used while the model writes (decode-time grounding, in the model worker): at each
token, only continuations that keep the answer grounded are allowed. A grounded answer is

    [yes | no [,:;.]] [MARKER]  SPAN  [ [n] ] [.]    or a beginning of the not-found sentence

where SPAN is copied from one source (compared without case and with runs of white space as one
space), MARKER a list item's "1." "a)" or "-" (the adapter starts many answers so; no source holds
the marker before the span), and n is the number of a source that contains it. A small model
asked for "the shortest span that answers" otherwise drifts into words that no source has: a name
half-remembered, a date off by one. Whatever it writes, no span absent from the sources can come
out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SPACE = re.compile(r"\s+")
_YES_NO = re.compile(r"^(yes|no)\b[\s,.:;!-]*")
_MARKER = re.compile(r"^(?:(?:\d{1,2}|[a-z])[.):]|[-*•])(?: |$)")
_MARKER_START = re.compile(r"\d{1,2}|[a-z]")
_CITATION = re.compile(r"^\[(\d*)(\])?\s*[.!]?\s*$")
_QUOTES = "\"'“”‘’`"


def normalise(text: str) -> str:
    """Lower case, every run of white space as one space."""
    return _SPACE.sub(" ", text).lower()


def _span(said: str) -> str:
    """The copied part of a normalised answer: no yes/no, list marker, quotes or closing
    punctuation."""
    said = _MARKER.sub("", _YES_NO.sub("", said).strip())
    return said.strip().strip(_QUOTES).rstrip(" ,.;:").strip(_QUOTES)


def copied_span(answer: str) -> str:
    """What an answer copies from a source, normalised: its text before any citation, without
    yes/no, list marker, quotes or closing punctuation."""
    return _span(normalise(answer).lstrip().partition("[")[0])


class SpanGuard:
    """Says which texts keep an answer grounded in `sources` (numbered from 1)."""

    def __init__(self, sources: Sequence[str], refusal: str) -> None:
        self.sources = [normalise(s) for s in sources]
        self.refusal = normalise(refusal).strip()

    def allows(self, text: str) -> bool:
        """Whether `text`, an answer being written, can still be a grounded answer."""
        said = normalise(text).lstrip()
        if self.refusal.startswith(said.rstrip()) or self.bare_marker(said):
            return True
        said, bracket, cite = said.partition("[")
        body = _span(said)
        holders = [n for n, s in enumerate(self.sources, 1) if body in s]
        if not holders:
            return False
        if not bracket:
            return True
        m = _CITATION.match("[" + cite)
        if m is None:
            return False
        digits = m.group(1)
        if m.group(2) and not digits:
            return False  # "[]"
        return any(str(n).startswith(digits) for n in holders) and (
            not m.group(2) or int(digits) in holders
        )

    def bare_marker(self, text: str) -> bool:
        """Whether `text` is only a list marker ("1." "a)" "-") or its start, held by no source
        as it is: shown only once a span follows it."""
        said = normalise(text).strip()
        if not (_MARKER_START.fullmatch(said) or _MARKER.fullmatch(said)):
            return False
        return not any(said.rstrip(".):") in s for s in self.sources)

    def source_of(self, text: str) -> int | None:
        """The first source that holds the answer's span, if any."""
        body = copied_span(text)
        if not body:
            return None
        return next((n for n, s in enumerate(self.sources, 1) if body in s), None)

    def first_allowed(self, text: str, candidates: Iterable[tuple[int, str, bool]]) -> int | None:
        """The first of `candidates` (token, its text, whether it ends the answer), likeliest
        first, that keeps `text` grounded; None if none does."""
        for token, piece, ends in candidates:
            if ends or self.allows(text + piece):
                return token
        return None
