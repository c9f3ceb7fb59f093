"""Scanned PDF pages and images are read by OCR (Tesseract, its model checked by hash)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from docmaker import make_pdf, make_scanned_pdf, png_bytes, render_page

from localrag.cli import main
from localrag.errors import IngestError
from localrag.ingest import Extracted, Limits, ocr, read
from localrag.ingest.image import NO_TEXT

PUMP = [
    "The pump must be primed before its first start.",
    "Open valve V3, then fill the housing with water.",
]
FILTER = ["Pressure above 6 bar means the filter is blocked."]


def extract(path: Path) -> Extracted:
    *_, doc = read(path, Limits())
    assert isinstance(doc, Extracted)
    return doc


def blocks(doc: Extracted) -> list[tuple[int | None, int | None, int | None, str]]:
    return [
        (
            b.span.page,
            b.span.line_start,
            b.span.line_end,
            doc.text[b.span.char_start : b.span.char_end],
        )
        for b in doc.blocks
    ]


def test_tesseract_tsv_becomes_lines_of_words() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tl\tt\tw\th\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t9\t9\t-1\t",
        "5\t1\t1\t1\t1\t1\t0\t0\t9\t9\t96\tOpen",
        "5\t1\t1\t1\t1\t2\t0\t0\t9\t9\t90\tvalve",
        "5\t1\t1\t1\t2\t1\t0\t0\t9\t9\t80\tnow.",
        "5\t1\t2\t1\t1\t1\t0\t0\t9\t9\t70\tNext",
    ]
    lines = list(ocr.parse_tsv("\n".join([header, *rows])))
    assert [(x.paragraph, x.text, x.confidence) for x in lines] == [
        ((1, 1), "Open valve", 93.0),
        ((1, 1), "now.", 80.0),
        ((2, 1), "Next", 70.0),
    ]


def test_a_scanned_pdf_is_read_page_by_page_with_ocr_lines(tmp_path: Path) -> None:
    path = make_scanned_pdf(tmp_path / "manual.pdf", [render_page(PUMP), render_page(FILTER)])
    doc = extract(path)
    assert doc.meta["ocr_pages"] == 2
    assert blocks(doc) == [(1, 1, 2, "\n".join(PUMP)), (2, 1, 1, FILTER[0])]


def test_an_image_file_is_read_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "whiteboard.png"
    path.write_bytes(png_bytes(render_page([*PUMP, "", "", *FILTER])))
    doc = extract(path)
    assert blocks(doc) == [(1, 1, 2, "\n".join(PUMP)), (1, 3, 3, FILTER[0])]
    assert doc.meta["ocr_confidence"] > 80


@pytest.mark.usefixtures("vault", "hashing")
def test_a_scanned_page_is_searchable_by_its_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_pdf(tmp_path / "typed.pdf", [["The typed page is about holidays."]])
    make_scanned_pdf(tmp_path / "scan.pdf", [render_page(["Cover"]), render_page(FILTER)])
    assert main(["add", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "filter blocked pressure", "--mode", "keyword", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]
    assert (Path(top["path"]).name, top["page"], top["line_start"]) == ("scan.pdf", 2, 1)


@pytest.mark.usefixtures("vault", "hashing")
def test_an_image_with_no_text_is_kept_with_a_notice_not_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A documentation folder's favicon: the batch does not fail over it, nor read it again.
    (tmp_path / "guide.md").write_text("The filter is blocked above 6 bar.\n")
    (tmp_path / "favicon.png").write_bytes(png_bytes(render_page([], width=64)))
    assert main(["add", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == []
    [icon] = [e for e in report["added"] if e["path"].endswith("favicon.png")]
    assert icon["chunks"] == 0 and icon["notice"] == NO_TEXT
    assert main(["add", str(tmp_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["added"] == [] and len(again["unchanged"]) == 2


def test_without_tesseract_a_scan_fails_with_the_fix_and_text_pages_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [render_page(FILTER)])
    with pytest.raises(IngestError, match=r"scan.pdf: no extractable text .*apt install tesseract"):
        extract(scan)
    mixed = make_scanned_pdf(
        tmp_path / "mixed.pdf", [["Typed: the boiler is red."], render_page(FILTER)]
    )
    doc = extract(mixed)
    assert blocks(doc) == [(1, 1, 1, "Typed: the boiler is red.")]
    assert doc.meta["notice"].startswith(
        "1 scanned pages not read: scanned pages and images need OCR"
    )
    image = tmp_path / "note.png"
    image.write_bytes(png_bytes(render_page(FILTER)))
    with pytest.raises(IngestError, match="install Tesseract"):
        extract(image)


def test_an_ocr_model_with_an_unknown_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setattr(ocr, "PINNED_SHA256", {})
    with pytest.raises(ocr.Unavailable, match=r"eng.traineddata: SHA-256 .* not a model"):
        ocr.engine()


def test_an_image_claiming_a_huge_canvas_is_refused_before_ocr(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(IngestError, match=r"bomb.png: 60,000 x 60,000 pixels"):
        extract(path)
    (tmp_path / "fake.jpg").write_bytes(b"not an image at all")
    with pytest.raises(IngestError, match="not a PNG, JPEG or TIFF"):
        extract(tmp_path / "fake.jpg")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_the_pixel_size_comes_from_the_header(fmt: str, tmp_path: Path) -> None:
    import io

    from PIL import Image

    from localrag.ingest.image import pixel_size

    out = io.BytesIO()
    Image.new("L", (300, 200), 255).save(out, fmt)
    assert pixel_size(tmp_path / f"x.{fmt.lower()}", out.getvalue()) == (300, 200)
