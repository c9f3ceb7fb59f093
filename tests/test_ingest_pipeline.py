"""Adding files to a real encrypted vault with the hashing embedder: incremental, robust."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from docmaker import make_docx, make_pdf

from localrag.chunk import embedding_text
from localrag.embed import HashingEmbedder
from localrag.errors import UsageError
from localrag.records import IngestEvent, NewChunk
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.store.store import text_sha256


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it embeds, to check that identical chunks are embedded once."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def assistant(settings: Settings) -> Iterator[Assistant]:
    with Assistant.create(settings, bytearray(b"pw"), embedder=CountingEmbedder()) as a:
        yield a


def finals(events: Iterator[IngestEvent]) -> dict[str, str]:
    """file name: final status."""
    return {Path(e.path).name: e.status for e in events if e.final}


def folder_of_docs(root: Path) -> Path:
    root.mkdir()
    (root / "notes.txt").write_text(
        "Shopping list\n\nThe capybara is the largest living rodent.\nIt lives in South America.\n",
        encoding="utf-8",
    )
    (root / "sub").mkdir()
    (root / "sub" / "manual.md").write_text(
        "# Manual\n\n## Safety\n\nAlways wear goggles when operating the lathe.\n", encoding="utf-8"
    )
    (root / "page.html").write_text(
        "<h1>Travel</h1><p>Expenses are reimbursed within thirty days.</p>", encoding="utf-8"
    )
    make_pdf(root / "report.pdf", [["Cover"], ["The turbine blade cracked in March."]])
    make_docx(root / "policy.docx", [("Heading1", "Leave"), (None, "Staff get ten vacation days.")])
    (root / ".hidden.txt").write_text("secret hidden file", encoding="utf-8")
    (root / "drawing.svg").write_text("<svg/>", encoding="utf-8")
    return root


def test_add_a_folder_then_only_changes_are_processed(assistant: Assistant, tmp_path: Path) -> None:
    docs = folder_of_docs(tmp_path / "docs")
    first = finals(assistant.add([docs]))
    assert first == {
        "notes.txt": "added",
        "manual.md": "added",
        "page.html": "added",
        "report.pdf": "added",
        "policy.docx": "added",
        "drawing.svg": "skipped",
    }
    assert len(assistant.documents()) == 5
    hit = assistant.search("turbine blade cracked", k=1)[0]
    assert hit.chunk.path == str(docs / "report.pdf") and hit.chunk.span.page == 2
    hit = assistant.search("goggles lathe", k=1)[0]
    span = hit.chunk.span
    assert (span.heading, span.line_start, span.line_end) == ("Manual > Safety", 1, 5)

    (docs / "notes.txt").write_text("The okapi is related to the giraffe.\n", encoding="utf-8")
    shutil.move(docs / "sub" / "manual.md", docs / "manual-moved.md")
    again = finals(assistant.add([docs]))
    assert again["notes.txt"] == "updated"
    assert again["manual-moved.md"] == "moved"
    assert again["page.html"] == again["report.pdf"] == again["policy.docx"] == "unchanged"
    assert "capybara" not in " ".join(h.chunk.text for h in assistant.search("capybara rodent"))
    paths = {d.path for d in assistant.documents()}
    assert str(docs / "manual-moved.md") in paths and str(docs / "sub" / "manual.md") not in paths


def test_a_moved_file_is_recognised_when_an_identical_file_stays(
    assistant: Assistant, tmp_path: Path
) -> None:
    folder = tmp_path / "twins"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text("The same memo about the boiler.\n", encoding="utf-8")
    list(assistant.add([folder]))
    (folder / "b.txt").rename(folder / "c.txt")
    assert finals(assistant.add([folder])) == {"a.txt": "unchanged", "c.txt": "moved"}
    assert sorted(Path(d.path).name for d in assistant.documents()) == ["a.txt", "c.txt"]


def test_the_same_text_under_another_heading_gets_its_own_vector(
    assistant: Assistant, tmp_path: Path
) -> None:
    shared = "The pump is oiled every week by the night shift. " * 8
    for name, heading in (("a.md", "Alpha"), ("b.md", "Beta")):
        filler = f"{heading} filler words " * 50
        (tmp_path / name).write_text(f"# {heading}\n\n{filler}\n\n{shared}\n", encoding="utf-8")
    list(assistant.add([tmp_path / "a.md", tmp_path / "b.md"]))
    stored = [c for d in assistant.documents() for c in assistant.store.document_chunks(d.id)]
    twins = [c for c in stored if c.text == shared.strip()]
    assert sorted(c.span.heading for c in twins) == ["Alpha", "Beta"]  # same text, two headings
    for c in stored:
        key = (text_sha256(c.text), c.span.heading)
        vector = assistant.store.vectors_by_text_and_heading([key])[key]
        expected = HashingEmbedder().embed_documents([embedding_text(NewChunk(c.text, c.span, 0))])
        assert np.allclose(vector, expected[0]), c.span.heading


def test_replacing_a_document_leaves_no_old_page_in_the_wal(
    assistant: Assistant, settings: Settings, tmp_path: Path
) -> None:
    wal = settings.vault_path.with_name(settings.vault_path.name + "-wal")
    note = tmp_path / "note.txt"
    note.write_text("The first draft of the note.\n", encoding="utf-8")
    list(assistant.add([note]))
    assert wal.stat().st_size > 0  # an add alone leaves the checkpoint to SQLite
    note.write_text("The second draft of the note.\n", encoding="utf-8")
    assert finals(assistant.add([note])) == {"note.txt": "updated"}
    assert wal.stat().st_size == 0


def test_identical_chunks_are_embedded_once(assistant: Assistant, tmp_path: Path) -> None:
    text = "Identical paragraph about the pump maintenance schedule.\n"
    folder = tmp_path / "copies"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.md"):
        (folder / name).write_text(text, encoding="utf-8")
    assert set(finals(assistant.add([folder])).values()) == {"added"}
    assert assistant.embedder.embedded == 1
    assert [d.chunk_count for d in assistant.documents()] == [1, 1, 1]
    # A search shows the passage once, not once per copy (`retrieve.distinct_hits`).
    [hit] = assistant.search("pump maintenance", k=5)
    assert hit.chunk.text == text.strip()


def test_bad_files_fail_alone_and_indexed_documents_stay(
    assistant: Assistant, tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("The reactor manual says to vent slowly.\n", encoding="utf-8")
    assert finals(assistant.add([good])) == {"good.txt": "added"}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "latin.txt").write_bytes(b"caf\xe9")
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    (bad / "fine.md").write_text("A fine note about vents.\n", encoding="utf-8")
    events = [e for e in assistant.add([bad, tmp_path / "missing.txt", good]) if e.final]
    status = {Path(e.path).name: e.status for e in events}
    assert status == {
        "empty.txt": "failed",
        "latin.txt": "failed",
        "broken.pdf": "failed",
        "fine.md": "added",
        "missing.txt": "failed",
        "good.txt": "unchanged",
    }
    for e in events:
        if e.status == "failed":
            assert Path(e.path).name in e.detail and "\n" not in e.detail
    assert {Path(d.path).name for d in assistant.documents()} == {"good.txt", "fine.md"}


def test_remove_deletes_everything_of_a_document(assistant: Assistant, tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("Zanzibar marker text about cloves.\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Unrelated text about bicycles.\n", encoding="utf-8")
    list(assistant.add([a, b]))
    doc = assistant.remove(str(a))
    assert doc.path == str(a)
    assert [d.path for d in assistant.documents()] == [str(b)]
    for mode in ("hybrid", "vector", "keyword"):
        assert all(h.chunk.doc_id != doc.id for h in assistant.search("Zanzibar cloves", mode=mode))
    assert (
        assistant.store.vectors_by_text_and_heading([(text_sha256(a.read_text().strip()), None)])
        == {}
    )
    with pytest.raises(UsageError, match="no such document"):
        assistant.remove(str(a))
    (other,) = assistant.documents()
    assert assistant.remove(str(other.id)).path == str(b)  # by id, as `localrag rm 2` does
    assert assistant.documents() == []


def test_chunk_context_gives_neighbours_in_order(assistant: Assistant, tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text(
        "\n\n".join(f"Paragraph {i} " + "word " * 150 for i in range(5)), encoding="utf-8"
    )
    list(assistant.add([path]))
    hit = assistant.search("Paragraph 2", k=1, mode="keyword")[0]
    around = assistant.chunk_context(hit.chunk.id, before=1, after=1)
    assert [c.ordinal for c in around] == [hit.chunk.ordinal + d for d in (-1, 0, 1)]
    assert np.all(np.diff([c.id for c in around]) > 0)
