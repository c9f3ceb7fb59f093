"""Chunks: within the token budget, along paragraphs and headings, with spans that point home."""

from __future__ import annotations

import itertools
from pathlib import Path

from localrag.chunk import ChunkSettings, chunk, embedding_text
from localrag.embed import HashingEmbedder
from localrag.ingest import Extracted, Limits, read

TOK = HashingEmbedder()  # one token per word


def extract(path: Path) -> Extracted:
    *_, doc = read(path, Limits())
    assert isinstance(doc, Extracted)
    return doc


def sentence(i: int) -> str:
    return f"Sentence {i} tells fact number {i} about the machine."


def test_chunks_fit_the_budget_and_their_lines_hold_their_text(tmp_path: Path) -> None:
    paras = [" ".join(sentence(10 * p + s) for s in range(6)) for p in range(8)]
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    lines = path.read_text(encoding="utf-8").split("\n")
    chunks = chunk(
        extract(path), TOK, ChunkSettings(max_tokens=60, min_tokens=10, overlap_tokens=12)
    )
    assert len(chunks) > 4
    for c in chunks:
        assert c.token_count <= 60
        assert c.span.line_start is not None and c.span.line_end is not None
        source = "\n".join(lines[c.span.line_start - 1 : c.span.line_end])
        assert c.text.split()[0] in source and c.text.split()[-1] in source
    # Every sentence is in some chunk whole.
    for p in range(8):
        for s in range(6):
            assert any(sentence(10 * p + s) in c.text for c in chunks)


def test_cut_paragraph_overlaps_and_paragraph_breaks_are_preferred(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text(" ".join(sentence(i) for i in range(20)) + "\n", encoding="utf-8")
    chunks = chunk(
        extract(path), TOK, ChunkSettings(max_tokens=40, min_tokens=10, overlap_tokens=12)
    )
    assert len(chunks) >= 5
    for a, b in itertools.pairwise(chunks):
        last_sentence = a.text.rsplit("Sentence", 1)[1]
        assert last_sentence in b.text  # the next chunk repeats the cut's last sentence
    two = tmp_path / "two.txt"
    two.write_text(" ".join(sentence(i) for i in range(3)) + "\n\n" + sentence(9), encoding="utf-8")
    parts = chunk(extract(two), TOK, ChunkSettings(max_tokens=35, min_tokens=5, overlap_tokens=12))
    assert [p.text for p in parts][-1] == sentence(9)


def test_markdown_sections_start_chunks_and_carry_their_heading(tmp_path: Path) -> None:
    body = " ".join(sentence(i) for i in range(8))
    path = tmp_path / "m.md"
    path.write_text(f"# Manual\n\n## Safety\n\n{body}\n\n## Cleaning\n\nWipe the bed with oil.\n")
    chunks = chunk(extract(path), TOK, ChunkSettings(max_tokens=200, min_tokens=20))
    assert [c.span.heading for c in chunks] == ["Manual > Safety", "Manual > Cleaning"]
    assert chunks[1].text.startswith("Cleaning") and chunks[1].span.line_start == 7
    # The embedder reads a chunk behind its heading path, without repeating the heading.
    assert embedding_text(chunks[1]) == "Manual\n\n" + chunks[1].text


def test_a_long_run_without_stops_is_cut_by_tokens(tmp_path: Path) -> None:
    path = tmp_path / "table.txt"
    path.write_text(" ".join(f"cell{i}" for i in range(500)), encoding="utf-8")
    chunks = chunk(extract(path), TOK, ChunkSettings(max_tokens=100))
    assert [c.token_count for c in chunks] == [100] * 5
    assert chunks[0].text.startswith("cell0 ") and chunks[-1].text.endswith("cell499")


def test_pdf_chunks_know_their_page(tmp_path: Path) -> None:
    from docmaker import make_pdf

    pages = [[sentence(p * 10 + i) for i in range(8)] for p in range(3)]
    path = make_pdf(tmp_path / "r.pdf", pages)
    chunks = chunk(extract(path), TOK, ChunkSettings(max_tokens=200, min_tokens=20))
    assert [c.span.page for c in chunks] == [1, 2, 3]
    assert sentence(25) in chunks[2].text and chunks[2].span.line_start == 6 - 5


class _CountingTokenizer:
    """One token per word, and the longest text it was ever handed."""

    def __init__(self) -> None:
        self.longest = 0

    def count_tokens(self, texts: list[str]) -> list[int]:
        self.longest = max([self.longest, *map(len, texts)])
        return TOK.count_tokens(texts)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.longest = max(self.longest, len(text))
        return TOK.token_offsets(text)


def test_a_huge_single_line_is_tokenized_in_bounded_slices_and_in_linear_time(
    tmp_path: Path,
) -> None:
    """The reliability bench's 20 MB single line took over 2 minutes and 2.4 GB: the whole line
    went to the tokenizer at once, and each window's line number was counted from its start."""
    import time

    path = tmp_path / "line.txt"
    path.write_text("valve pressure logged " * 200_000 + "\nlast line here\n")  # 4.4 MB
    doc = extract(path)
    tok = _CountingTokenizer()
    started = time.perf_counter()
    chunks = chunk(doc, tok)
    assert time.perf_counter() - started < 20
    assert tok.longest <= 100_000
    assert sum(c.text.count("valve") for c in chunks) == 200_000
    assert all(c.span.line_start == c.span.line_end == 1 for c in chunks[:-1])
    assert chunks[-1].text.endswith("last line here") and chunks[-1].span.line_end == 2
