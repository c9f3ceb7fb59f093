"""The abstain gate: answer, let a checked model answer decide, or abstain without the model."""

from __future__ import annotations

from localrag.answer import Answer
from localrag.gate import Gate, judge
from localrag.prompt import NOT_FOUND, Source
from localrag.records import Chunk, Hit, Span

TELEMETRY = "Disabling telemetry: set DO_NOT_TRACK=1 in the environment before the first start."


def sources(*texts: str) -> list[Source]:
    return [
        Source(i, Hit(Chunk(i, 1, "/docs/a.md", i, t, Span(line_start=i, line_end=i)), 0.5))
        for i, t in enumerate(texts, start=1)
    ]


def test_the_verdicts() -> None:
    hits = [s.hit for s in sources("The Normans gave their name to Normandy.")]
    assert judge("Who gave their name to Normandy?", hits, dense_top=0.1) is Gate.ANSWER
    assert judge("anything", hits, dense_top=0.6) is Gate.ANSWER
    assert judge("What is the boiling point of mercury?", hits, dense_top=0.05) is Gate.ABSTAIN
    assert judge("Who gave their name to Normandy?", [], dense_top=None) is Gate.ABSTAIN
    # Related but with few shared words: the model is asked, and checked.
    assert judge("How do I stop usage reporting?", hits, dense_top=0.25) is Gate.CHECK
    assert judge("Where is Normandy's capital city?", hits, dense_top=0.1) is Gate.CHECK


def test_a_checked_answer_that_a_source_supports_is_shown_whole() -> None:
    question = "How do I stop it reporting usage?"
    hits = [s.hit for s in sources(TELEMETRY)]
    verdict = judge(question, hits, dense_top=0.26)
    assert verdict is Gate.CHECK  # no word of the question is in the source
    a = Answer(
        iter(["To stop it reporting usage, set", " DO_NOT_TRACK=1", " before the first start."]),
        sources=sources(TELEMETRY),
        question=question,
        checked=True,
    )
    streamed = list(a)
    # Held back, then shown whole (the words it repeats from the question are not evidence).
    assert streamed == [
        "To stop it reporting usage, set DO_NOT_TRACK=1 before the first start. [1]"
    ]
    assert not a.abstained
    assert [c.n for c in a.citations] == [1]
    assert a.to_dict()["checked"] is True


def test_a_checked_answer_no_source_supports_is_never_shown() -> None:
    a = Answer(
        iter(["Open", " Settings", " and", " untick", " Analytics", " [1]."]),
        sources=sources(TELEMETRY),
        question="How do I stop it reporting usage?",
        checked=True,
    )
    assert list(a) == [NOT_FOUND]
    assert a.abstained and a.citations == []
