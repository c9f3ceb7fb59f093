"""Hybrid search: either side can find a chunk, user text is never FTS5 syntax, confidence gates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localrag.embed import HashingEmbedder
from localrag.errors import UsageError
from localrag.retrieve import fuse, fuse_scores, terms
from localrag.service import Assistant
from localrag.settings import Settings

FACTS = {
    "pump.txt": "The hydraulic pump must be serviced every 400 hours of operation.",
    "leave.txt": "Employees receive twenty days of paid annual leave each year.",
    "okapi.txt": "The okapi is a forest giraffe native to the Congo basin.",
    "code.txt": "Error E-1234 means the conveyor belt motor overheated.",
}


@pytest.fixture
def assistant(settings: Settings, tmp_path: Path) -> Iterator[Assistant]:
    folder = tmp_path / "facts"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    with Assistant.create(settings, bytearray(b"pw"), embedder=HashingEmbedder()) as a:
        list(a.add([folder]))
        yield a


def test_query_terms_drop_stopwords_and_syntax() -> None:
    assert terms("What is the pump's service interval?") == ["pump", "service", "interval"]
    assert terms('NEAR("pump" AND valve*) OR -seal') == ["near", "pump", "valve", "seal"]
    assert terms("the of and") == ["the", "of", "and"]  # nothing left: keep what there is
    assert terms("?!") == []


def test_fusion_rewards_agreement() -> None:
    rankings = [([(1, 0.9), (2, 0.8), (4, 0.1)], 0.5), ([(2, 5.0), (3, 4.0), (5, 1.0)], 0.5)]
    fused = fuse(rankings, rrf_k=60)
    assert [chunk_id for chunk_id, _ in fused][:3] == [2, 1, 3]
    scaled = fuse_scores(rankings)
    assert [chunk_id for chunk_id, _ in scaled][:3] == [2, 1, 3]
    assert scaled[0][1] <= 1.0 and fuse_scores([([(7, 3.0)], 1.0)]) == [(7, 1.0)]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_finds_the_right_document(assistant: Assistant, mode: str) -> None:
    hit = assistant.search("how often is the hydraulic pump serviced", k=2, mode=mode)[0]
    assert Path(hit.chunk.path).name == "pump.txt"
    assert hit.chunk.span.line_start == 1


def test_hostile_query_text_is_searched_not_parsed(assistant: Assistant) -> None:
    for query in ['"unbalanced', "E-1234", "leave) AND (", "NOT okapi*", "^col:x"]:
        hits = assistant.search(query, k=3)
        assert isinstance(hits, list)
    assert Path(assistant.search("E-1234", k=1, mode="keyword")[0].chunk.path).name == "code.txt"


def test_bad_mode_and_empty_query_are_usage_errors(assistant: Assistant) -> None:
    with pytest.raises(UsageError, match="mode"):
        assistant.search("pump", mode="fuzzy")
    with pytest.raises(UsageError, match="empty"):
        assistant.search("   ")


def test_the_gate_signals_are_higher_on_topic(assistant: Assistant) -> None:
    on = assistant.retrieve("okapi forest giraffe Congo", k=3)
    off = assistant.retrieve("quantum chromodynamics lattice", k=3)
    assert on.top_similarity is not None and off.top_similarity is not None
    assert on.top_similarity > off.top_similarity
    assert on.keyword_coverage == 1.0 and off.keyword_coverage == 0.0


def test_a_search_kept_warm_gives_the_hits_of_a_fresh_process(assistant: Assistant) -> None:
    queries = ["hydraulic pump service", "conveyor motor overheated", "what does E-1234 mean"]
    before = {q: [(h.chunk.id, h.score) for h in assistant.search(q, k=3)] for q in queries}
    assistant.keep_search_warm()
    assert assistant.store.keep_vectors_warm() > 0  # waits for the background build
    for q in queries:
        assert [(h.chunk.id, h.score) for h in assistant.search(q, k=3)] == before[q]


def test_a_passage_found_twice_is_one_hit_and_the_next_one_takes_its_place(
    settings: Settings, tmp_path: Path
) -> None:
    # Copies are common: a chapter on its page and in the print page, a backup folder.
    chapters = [f"Cargo chapter {n} explains project topic {n} with examples." for n in range(6)]
    for folder in ("book", "backup"):
        (tmp_path / folder).mkdir()
        for n, text in enumerate(chapters):
            (tmp_path / folder / f"ch{n}.txt").write_text(text + "\n", encoding="utf-8")
    with Assistant.create(settings, bytearray(b"pw"), embedder=HashingEmbedder()) as a:
        list(a.add([tmp_path / "book", tmp_path / "backup"]))
        for mode in ("hybrid", "vector", "keyword"):
            texts = [h.chunk.text for h in a.search("cargo chapter project", k=4, mode=mode)]
            assert len(texts) == len(set(texts)) == 4, (mode, texts)
