"""Decode-time grounding: whatever the model prefers, an answer copies a span of one source."""

from __future__ import annotations

import random
import re

from localrag.grounding import SpanGuard, normalise
from localrag.prompt import NOT_FOUND

SOURCES = [
    "The Lindqvist Bridge opened to traffic in 1902, after a flood in 1899.",
    "The bridge is 212 metres long.\nIts central span is 96 metres.",
]


def test_a_copied_span_with_its_citation_is_allowed() -> None:
    guard = SpanGuard(SOURCES, NOT_FOUND)
    for text in ("1902", "in 1902 [", "in 1902 [1", "in 1902 [1]", "in 1902 [1].", "212 metres"):
        assert guard.allows(text), text
    assert guard.allows("212 metres long. its central")  # across a line break, any case
    assert guard.allows("Yes, the bridge is 212 metres long [2].")
    assert guard.allows("I could not find")  # the start of the not-found sentence


def test_words_no_source_has_and_wrong_citations_are_refused() -> None:
    guard = SpanGuard(SOURCES, NOT_FOUND)
    assert not guard.allows("1903")
    assert not guard.allows("opened in 1902")  # not contiguous in any source
    assert not guard.allows("212 metres [1]")  # source 1 does not hold it
    assert not guard.allows("1902 [3]")
    assert not guard.allows("1902 [1] and more")
    assert guard.source_of("Yes: 212 metres long [2].") == 2
    assert guard.source_of("1903") is None


def test_a_list_marker_before_the_span_is_allowed_and_a_bare_one_held_back() -> None:
    guard = SpanGuard(SOURCES, NOT_FOUND)
    for text in ("1", "1.", "1. ", "1. the bridge is 212", "a) in 1902 [1]", "- 212 metres"):
        assert guard.allows(text), text
    assert not guard.allows("1. the bridge opened in 1903")
    assert guard.source_of("b. 212 metres long [2]") == 2
    assert guard.bare_marker("3.") and guard.bare_marker("z)")
    assert not guard.bare_marker("1. 212") and not guard.bare_marker("212")
    assert not guard.bare_marker("96")  # a number a source holds is an answer, not a marker


def test_random_models_never_write_a_span_absent_from_the_sources() -> None:
    rng = random.Random(7)
    words = ["the", "a", "bridge", "flood", "river", "in", "of", "1902", "1899", "opened"]
    words += ["long", "metres", "span", "is", "was", "7", "x"]
    pieces = [" " + w for w in words] + words + [" [", "1", "2", "]", ".", ",", " yes", "Yes"]
    pieces += [")", "- ", "b", "3"]  # list markers: "1. ", "b) ", "- "
    for _ in range(400):
        sources = [" ".join(rng.choices(words, k=rng.randint(3, 25))) for _ in range(3)]
        guard = SpanGuard(sources, NOT_FOUND)
        text = ""
        for _ in range(rng.randint(1, 30)):
            order = rng.sample(range(len(pieces)), len(pieces))
            ranked = [(i, pieces[i], rng.random() < 0.03) for i in order]
            token = guard.first_allowed(text, ranked)
            if token is None or next(e for i, _, e in ranked if i == token):
                break
            text += pieces[token]
        shown = "" if guard.bare_marker(text) else text  # the worker holds a bare marker back
        body = re.sub(r"^(yes|no)\b[\s,.:;!-]*", "", normalise(shown).lstrip())
        body = re.sub(r"^((\d{1,2}|[a-z])[.):]|[-*•])( |$)", "", body)
        body = body.partition("[")[0].strip().rstrip(" ,.;:")
        assert body == "" or any(body in normalise(s) for s in sources), (text, sources)
