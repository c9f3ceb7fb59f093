"""The closest passage: where to read when the model found no answer in its sources."""

from __future__ import annotations

import io
import json

from test_answer import answer, sources

from localrag.answer import Answer
from localrag.cli.ask import stream
from localrag.closest import MAX_WORDS, closest_passage
from localrag.prompt import NOT_FOUND, Source

README = (
    "ca-certificates-java\n====================\n\nThis package uses the hooks of the "
    "ca-certificates package to update the JKS keystore /etc/ssl/certs/java/cacerts used for "
    "many java runtimes. The alias is the basename prefixed with 'debian:'."
)


def test_the_sentence_sharing_most_words_with_the_question_is_chosen() -> None:
    srcs = sources("The lathe is green. It needs oil every Tuesday.", README)
    p = closest_passage("Which keystore does ca-certificates-java update?", srcs)
    assert p is not None and p.source.n == 2
    # A heading with no full stop is its own sentence: the blank line ends it.
    assert p.text.startswith("This package uses the hooks") and p.text.endswith("runtimes.")


def test_the_citation_names_the_lines_of_the_sentence() -> None:
    from localrag.records import Chunk, Hit, Span

    text = "Workshop\n========\n\nThe lathe is painted green and\nneeds oil every Tuesday.\n"
    chunk = Chunk(1, 1, "/docs/workshop.md", 0, text, Span(line_start=10, line_end=15))
    [src] = [Source(1, Hit(chunk, 0.9))]
    p = closest_passage("When does the lathe need oil?", [src])
    assert p is not None and p.text == "The lathe is painted green and needs oil every Tuesday."
    assert (p.chunk.span.line_start, p.chunk.span.line_end) == (13, 14)
    # A recording keeps its time range: it has no lines to narrow.
    audio = Chunk(2, 2, "/a/talk.flac", 0, "The lathe needs oil.", Span(start_s=5.0, end_s=9.0))
    p = closest_passage("When does the lathe need oil?", [Source(1, Hit(audio, 0.9))])
    assert p is not None and p.chunk is audio


def test_a_transcript_sentence_runs_across_its_segments() -> None:
    from localrag.records import Chunk, Hit, Span

    # jfk.flac as faster-whisper cuts it: one sentence in two segments, a blank line between.
    text = (
        "And so, my fellow Americans ask not what your country can do for you\n\n"
        "ask what you can do for your country."
    )
    chunk = Chunk(1, 1, "/a/jfk.flac", 0, text, Span(start_s=0.0, end_s=11.0))
    p = closest_passage("What did the speaker tell Americans to ask?", [Source(1, Hit(chunk, 1.0))])
    assert p is not None and p.text.endswith("ask what you can do for your country.")


def test_each_list_item_is_a_sentence_of_its_own() -> None:
    # base-passwd's README: the items share a paragraph and most end with no full stop, so as
    # one 68-word sentence the quote ran out just before the answer ("... www-data user is …").
    readme = (
        "There are some exceptions to this:\n"
        "* root is never removed or changed. If it doesn't exist a root account will\n"
        "  be added though.\n"
        "* the home directory for the ftp user is preserved, and it is neither added\n"
        "  nor removed automatically since this can affect how FTP daemons handle\n"
        "  anonymous access\n"
        "* the home directory for the www-data user is preserved \n"
        "* if a user or group exists but with an uid outside our reserved range\n"
        "  we don't change it\n"
        "1. numbered items are cut as well\n"
    )
    p = closest_passage("Is the home directory of the www-data user preserved?", sources(readme))
    assert p is not None and p.text == "* the home directory for the www-data user is preserved"
    p = closest_passage("Which items are numbered?", sources(readme))
    assert p is not None and p.text == "1. numbered items are cut as well"


def test_one_shared_word_is_not_close_enough() -> None:
    srcs = sources("dirmngr is launched by systemd when its socket is first used.")
    assert closest_passage("Which port does dirmngr listen on?", srcs) is None
    assert closest_passage("What is this?", srcs) is None  # no content word at all


def test_a_one_word_question_needs_its_word_and_a_tie_goes_to_the_earlier_source() -> None:
    srcs = sources("Tuesday is oil day.", "Oil the lathe.")
    p = closest_passage("oil?", srcs)
    assert p is not None and (p.source.n, p.text) == (1, "Tuesday is oil day.")


def test_a_long_sentence_is_quoted_around_its_shared_words() -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    srcs = sources(f"{filler} the lathe needs oil every Tuesday {filler}")
    p = closest_passage("When does the lathe need oil?", srcs)
    assert p is not None
    assert "the lathe needs oil every Tuesday" in p.text
    assert p.text.startswith("… ") and p.text.endswith(" …")
    assert len(p.text.split()) == MAX_WORDS + 2  # the two marks


def test_a_refusal_carries_the_closest_passage_and_an_answer_does_not() -> None:
    srcs = sources("The lathe is green and needs oil every Tuesday.")
    refused = answer([NOT_FOUND], srcs, question="When does the lathe need oil?")
    assert refused.text() == NOT_FOUND and refused.abstained
    assert refused.closest is not None and refused.closest.source.n == 1
    data = refused.to_dict()
    assert data["closest"]["where"] == "a.txt, line 1"
    assert data["closest"]["text"] == "The lathe is green and needs oil every Tuesday."
    json.dumps(data)

    answered = answer(["every Tuesday [1]"], srcs, question="When does the lathe need oil?")
    answered.text()
    assert answered.closest is None and answered.to_dict()["closest"] is None
    # The gate refused before the model was asked: no sources, nothing to point at.
    gate = Answer(None, sources=[], abstain=True, question="When does the lathe need oil?")
    assert gate.text() == NOT_FOUND and gate.closest is None


def test_ask_prints_the_closest_passage_under_the_refusal() -> None:
    srcs = sources("The lathe is green and\x1b]0;owned\x07 needs oil every Tuesday.")
    refused = answer([NOT_FOUND], srcs, question="When does the lathe need oil?")
    out = io.StringIO()
    stream(refused, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == NOT_FOUND
    assert lines[2] == "Closest passage [1] /docs/a.txt, line 1:"
    assert lines[3].startswith("  \u201cThe lathe is green and") and "\x1b" not in lines[3]


def test_eval_counts_the_refusals_whose_closest_passage_holds_the_answer() -> None:
    from localrag.evaluate.scoring import score, summarize

    question = "When does the lathe need oil?"
    srcs = sources("The lathe is green and needs oil every Tuesday.")

    def scored(reply: str, gold: str) -> dict[str, object]:
        return score(answer([reply], srcs, question=question), question, [gold], None)

    pointed, missed = scored(NOT_FOUND, "every Tuesday"), scored(NOT_FOUND, "on Mondays")
    right = scored("every Tuesday [1]", "Tuesday")
    assert (pointed["closest_ok"], missed["closest_ok"]) == (True, False)
    assert "closest_ok" not in right
    assert summarize([pointed, missed, right], retrieval=True)["refused_closest_ok"] == 0.5
