"""Excerpts: a source is cut to whole sentences around the question's words."""

from __future__ import annotations

from localrag.excerpt import content_words, focus, window
from localrag.prompt import fit_sources
from localrag.records import Chunk, Hit, Span

FILLER = " ".join(f"Sentence {i} is about nothing much at all." for i in range(12))
PARAGRAPH = FILLER + " The bridge over the river opened in 1931 after four years of work. " + FILLER


def test_focus_keeps_whole_sentences_around_the_question_words() -> None:
    cut = focus(PARAGRAPH, "When did the bridge over the river open?", 40)
    assert "The bridge over the river opened in 1931 after four years of work." in cut
    assert len(cut.split()) <= 40
    assert cut.endswith(".") and cut[0].isupper()


def test_a_short_text_is_shown_whole() -> None:
    assert focus("  One sentence only.  ", "anything?", 70) == "One sentence only."


def test_with_no_shared_word_the_start_is_kept() -> None:
    assert focus(PARAGRAPH, "Who painted it?", 20).startswith("Sentence 0 ")


def test_window_never_cuts_the_range_it_must_keep() -> None:
    at = PARAGRAPH.index("1931")
    assert "1931" in window(PARAGRAPH, 10, at, 4)


def test_content_words_drop_stop_words_and_case() -> None:
    assert content_words("When did The Bridge open?") == {"bridge", "open"}


def test_fit_sources_shows_the_excerpt_and_keeps_the_chunk() -> None:
    chunk = Chunk(1, 1, "/docs/bridge.txt", 0, PARAGRAPH, Span())
    [source] = fit_sources([Hit(chunk, 0.9)], 1000, lambda t: len(t.split()), "bridge open?", 40)
    assert "1931" in source.text and len(source.text.split()) <= 40
    assert source.chunk.text == PARAGRAPH  # citations still point at the whole chunk
    [whole] = fit_sources([Hit(chunk, 0.9)], 1000, lambda t: len(t.split()))
    assert whole.text == PARAGRAPH
