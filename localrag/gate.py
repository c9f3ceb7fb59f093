"""The abstain gate: answer, let the model's answer decide, or say "not found" without asking it.

Retrieval alone cannot tell every answerable question: "how do I stop it reporting usage?" shares
no word with a section titled "Disabling telemetry", and a short question can sit below the
similarity of a clear match. So retrieval's signals give three verdicts, not two: a confident
match is answered; nothing related at all is not (no model call, no chance to invent); in
between, the model answers from the sources and its answer is shown only when a source supports
it (`Answer(checked=True)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from localrag.excerpt import content_words
from localrag.records import Hit

MIN_DENSE = 0.30
"""Cosine similarity of the best chunk from which retrieval counts as having found the topic..."""
MIN_COVERAGE = 0.5
"""...or share of the question's content words found in the sources."""
UNRELATED = 0.15
"""Below this similarity, with no question word in the sources, nothing is related.

With the default embedder, SQuAD questions about one article score 0.35-0.78 (5th percentile to
max) against its own paragraphs and 0.08-0.38 against another article's (medians 0.20-0.25), and
"how can I opt out of data collection?" scores 0.17 against a section on disabling telemetry: the
two overlap, so between this and MIN_DENSE the model's checked answer decides."""


class Gate(Enum):
    ANSWER = "answer"
    CHECK = "check"
    """The model answers; the answer stands only if a source supports it."""
    ABSTAIN = "abstain"


def coverage(question: str, hits: Sequence[Hit]) -> float:
    """Share of the question's content words that occur in the hits."""
    wanted = content_words(question)
    if not wanted:
        return 0.0
    found: set[str] = set()
    for hit in hits:
        found |= wanted & content_words(hit.chunk.text)
    return len(found) / len(wanted)


def judge(question: str, hits: Sequence[Hit], dense_top: float | None) -> Gate:
    """The verdict on what retrieval found for `question` (`dense_top`: None in keyword mode)."""
    if not hits:
        return Gate.ABSTAIN
    if dense_top is not None and dense_top >= MIN_DENSE:
        return Gate.ANSWER
    covered = coverage(question, hits)
    if covered >= MIN_COVERAGE:
        return Gate.ANSWER
    if covered == 0 and dense_top is not None and dense_top < UNRELATED:
        return Gate.ABSTAIN
    return Gate.CHECK
