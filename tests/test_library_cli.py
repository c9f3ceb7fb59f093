"""`localrag add/docs/rm/search` and `eval retrieval`, as a user runs them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from docmaker import make_docx, make_pdf
from rich.console import Console

from localrag.cli import main
from localrag.cli.library import _Bar
from localrag.records import IngestEvent


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def mixed_folder(root: Path) -> Path:
    root.mkdir()
    (root / "notes.txt").write_text(
        "Groceries\n\nThe capybara is the largest living rodent.\n", encoding="utf-8"
    )
    (root / "guide.md").write_text(
        "# Guide\n\n## Safety\n\nAlways wear goggles when operating the lathe.\n", encoding="utf-8"
    )
    (root / "page.html").write_text(
        "<h1>Travel</h1>\n<p>Expenses are reimbursed within thirty days.</p>", encoding="utf-8"
    )
    make_pdf(root / "report.pdf", [["Annual report"], ["The turbine blade cracked in March."]])
    make_docx(root / "policy.docx", [("Heading1", "Leave"), (None, "Staff get ten vacation days.")])
    return root


@pytest.mark.usefixtures("vault", "hashing")
def test_add_search_docs_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = mixed_folder(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (docs / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    code, summary = run_json(capsys, "add", str(docs))
    assert code != 0  # one file failed
    assert isinstance(summary, dict)
    assert len(summary["added"]) == 5
    assert [f["path"] for f in summary["failed"]] == [str(docs / "broken.pdf")]
    assert "broken.pdf" in summary["failed"][0]["reason"]
    assert [f["path"] for f in summary["skipped"]] == [str(docs / "photo.heic")]

    code, again = run_json(capsys, "add", str(docs / "report.pdf"))
    assert code == 0 and isinstance(again, dict) and len(again["unchanged"]) == 1

    code, hits = run_json(capsys, "search", "turbine", "blade", "cracked", "-k", "3")
    assert code == 0 and isinstance(hits, list)
    top = hits[0]
    assert top["path"] == str(docs / "report.pdf") and top["page"] == 2
    assert {"doc_id", "chunk_id", "score", "text", "line_start", "line_end", "heading"} <= set(top)

    assert main(["search", "goggles", "lathe"]) == 0
    out = capsys.readouterr().out
    assert "guide.md, lines 1-5" in out and "Guide > Safety" in out

    code, listed = run_json(capsys, "docs")
    assert isinstance(listed, list) and len(listed) == 5
    report = next(d for d in listed if d["path"].endswith("report.pdf"))

    assert main(["rm", str(report["id"]), str(docs / "notes.txt")]) == 0
    capsys.readouterr()
    code, listed = run_json(capsys, "docs")
    assert {Path(d["path"]).name for d in listed} == {"guide.md", "page.html", "policy.docx"}
    code, hits = run_json(capsys, "search", "turbine blade", "--mode", "keyword")
    assert hits == []
    assert main(["rm", "999"]) != 0
    assert "no such document" in capsys.readouterr().err


def tiny_beir(root: Path) -> Path:
    """A SciFact-like BEIR folder: 6 abstracts, 3 judged queries."""
    corpus = {
        "d1": ("Capybara ecology", "Capybaras are semi-aquatic rodents of South America."),
        "d2": ("Turbine fatigue", "Blade cracks in gas turbines grow under cyclic loading."),
        "d3": ("Vitamin D and bones", "Vitamin D supplements increase bone mineral density."),
        "d4": ("Coffee and sleep", "Caffeine taken late in the day shortens sleep."),
        "d5": ("Okapi genetics", "The okapi is the closest living relative of the giraffe."),
        "d6": ("Solar panels", "Perovskite cells raise photovoltaic efficiency."),
    }
    queries = {
        "q1": "Vitamin D improves bone density.",
        "q2": "Caffeine reduces sleep duration.",
        "q3": "Okapis are related to giraffes.",
    }
    qrels = {"q1": "d3", "q2": "d4", "q3": "d5"}
    root.mkdir()
    (root / "qrels").mkdir()
    with (root / "corpus.jsonl").open("w") as f:
        for i, (title, text) in corpus.items():
            f.write(json.dumps({"_id": i, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for i, text in queries.items():
            f.write(json.dumps({"_id": i, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in qrels.items())]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.usefixtures("hashing")
def test_eval_retrieval_on_a_tiny_beir_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = tiny_beir(tmp_path / "beir")
    code, result = run_json(capsys, "eval", "retrieval", "--beir", str(beir))
    assert code == 0 and isinstance(result, dict)
    assert result["queries"] == 3 and result["documents"] == 6
    assert result["ndcg@10"] > 0.9 and result["recall@10"] == 1.0
    assert not list(Path(tmp_path).glob("**/eval.db"))  # the throwaway vault is gone
    with pytest.raises(SystemExit):
        main(["eval", "retrieval", "--beir", str(beir), "--mode", "nope"])
    assert main(["eval", "retrieval", "--beir", str(beir), "--split", "dev"]) != 0
    assert "dev.tsv" in capsys.readouterr().err


@pytest.mark.usefixtures("hashing")
def test_eval_cross_validates_the_settings_and_can_keep_its_index(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = tiny_beir(tmp_path / "beir")
    code, result = run_json(capsys, "eval", "retrieval", "--beir", str(beir), "--cv", "2")
    assert code == 0 and isinstance(result, dict)
    cv = result["cv"]
    assert cv["folds"] == 2 and len(cv["held_out_ndcg@10"]) == 2 and len(cv["chosen"]) == 2
    assert all(0.0 <= v <= 1.0 for v in cv["held_out_ndcg@10"])
    assert cv["default_in_sample_ndcg@10"] == pytest.approx(result["ndcg@10"], abs=0.05)
    code, first = run_json(capsys, "eval", "retrieval", "--beir", str(beir), "--cache")
    kept = home / "bench" / "eval-beir" / "vault.db"
    assert kept.exists() and not kept.read_bytes().startswith(b"SQLite format 3")
    code, again = run_json(capsys, "eval", "retrieval", "--beir", str(beir), "--cache")
    assert isinstance(first, dict) and isinstance(again, dict)
    assert again["ndcg@10"] == first["ndcg@10"] and again["index_s"] < first["index_s"] + 1


@pytest.mark.models
@pytest.mark.usefixtures("vault")
def test_real_embedder_end_to_end(
    real_models: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = mixed_folder(tmp_path / "docs")
    code, summary = run_json(capsys, "add", str(docs))
    assert code == 0 and isinstance(summary, dict) and len(summary["added"]) == 5
    expected = {
        "Which rodent is the biggest?": ("notes.txt", None, 3),
        "What protective eyewear is needed at the lathe?": ("guide.md", None, 1),
        "How long until travel costs are paid back?": ("page.html", None, 2),
        "When did the turbine get damaged?": ("report.pdf", 2, 1),
        "How many holiday days do employees have?": ("policy.docx", None, 2),
    }
    for question, (name, page, line) in expected.items():
        code, hits = run_json(capsys, "search", question, "-k", "3")
        assert isinstance(hits, list)
        top = hits[0]
        assert Path(top["path"]).name == name, question
        assert top["page"] == page and top["line_start"] <= line <= top["line_end"], question
    beir = tiny_beir(tmp_path / "beir")
    code, result = run_json(capsys, "eval", "retrieval", "--beir", str(beir))
    assert isinstance(result, dict) and result["ndcg@10"] == 1.0


def test_add_progress_shows_a_recordings_share_of_audio_and_real_time_factor() -> None:
    console = Console(file=io.StringIO(), width=150)
    bar = _Bar(console, {"/in/meeting.m4a": 5_000_000, "/in/notes.txt": 100}, enabled=True)
    bar.update(IngestEvent("/in/notes.txt", "added", chunks_done=3, chunks_total=3))
    bar.update(IngestEvent("/in/meeting.m4a", "progress", fraction=0.25, rtf=0.05))
    console.print(bar.progress.get_renderable())
    files_row, recording_row = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert "1/2 files" in files_row and "3 chunks" in files_row
    assert "transcribing" in recording_row and "meeting.m4a" in recording_row
    assert "25% of the audio, RTF 0.05" in recording_row and "chunks" not in recording_row
    assert bar.progress.tasks[0].completed == 100  # the audio is not counted in bytes
    bar.update(IngestEvent("/in/meeting.m4a", "added", chunks_done=2, chunks_total=2))
    assert len(bar.progress.tasks) == 1


def test_many_files_of_unread_formats_are_counted_in_one_line_by_extension() -> None:
    from localrag.cli.library import _skipped_lines

    def skipped(*names: str) -> list[dict[str, str]]:
        return [{"path": f"/d/{n}", "reason": f"/d/{n}: unsupported format"} for n in names]

    assert _skipped_lines(skipped("a.gz", "b.heic")) == [
        "skipped: /d/a.gz: unsupported format",
        "skipped: /d/b.heic: unsupported format",
    ]
    assert _skipped_lines(skipped("a.gz", "b.gz", "c.gz", "x.conf", "setup")) == [
        "skipped 5 files of formats localrag does not read (.gz 3, .conf 1, (no extension) 1);"
        " --json lists them"
    ]
