"""Readers: text with the positions a citation needs; bad files fail alone with one line."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
from docmaker import W, make_docx, make_pdf, stream, write_docx, write_pdf

from localrag.errors import IngestError
from localrag.ingest import Extracted, Limits, read
from localrag.ingest.base import Block


def extract(path: Path, limits: Limits | None = None) -> Extracted:
    items = list(read(path, limits or Limits()))
    assert isinstance(items[-1], Extracted)
    return items[-1]


def block_texts(doc: Extracted) -> list[str]:
    return [doc.text[b.span.char_start : b.span.char_end] for b in doc.blocks]


def blocks_by_text(doc: Extracted) -> dict[str, Block]:
    return dict(zip(block_texts(doc), doc.blocks, strict=True))


def test_text_paragraphs_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\ufefffirst line\r\nstill first\r\n\r\n\r\nsecond para\n", encoding="utf-8")
    doc = extract(path)
    assert block_texts(doc) == ["first line\nstill first", "second para"]
    assert [(b.span.line_start, b.span.line_end) for b in doc.blocks] == [(1, 2), (5, 5)]


def test_underlined_titles_of_plain_text_and_restructuredtext_make_a_path(tmp_path: Path) -> None:
    # As CMake's manuals (.rst) and Debian's READMEs write them; levels by order of style.
    path = tmp_path / "manual.rst"
    path.write_text(
        "=====\nGuide\n=====\n\nIntro.\n\nInstall\n-------\n\nRun it.\n\nOptions\n^^^^^^^\n\n"
        "Use -D.\n\nUsage\n-----\n\nTwo lines\nof text\n---------\n",
        encoding="utf-8",
    )
    doc = extract(path)
    by_text = blocks_by_text(doc)
    assert by_text["Intro."].span.heading == "Guide"
    assert by_text["Run it."].span.heading == "Guide > Install"
    assert by_text["Use -D."].span.heading == "Guide > Install > Options"
    assert by_text["Install"].is_heading and by_text["Install"].span.line_start == 7
    # A rule under a paragraph of two lines is no title: it stays text.
    assert by_text["Two lines\nof text\n---------"].span.heading == "Guide > Usage"
    assert "=====" not in doc.text and "^^^" not in doc.text


def test_markdown_headings_make_a_path_and_fences_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\nIntro.\n\n## Install\n\n```\npip install x\n\nmore code\n```\n\n"
        "Setext\n------\n\nUnder setext.\n",
        encoding="utf-8",
    )
    doc = extract(path)
    assert doc.title == "Guide"
    by_text = blocks_by_text(doc)
    assert by_text["Intro."].span.heading == "Guide"
    code = by_text["```\npip install x\n\nmore code\n```"]
    assert code.span.heading == "Guide > Install"
    assert (code.span.line_start, code.span.line_end) == (7, 11)
    assert by_text["Under setext."].span.heading == "Guide > Setext"


def test_html_visible_text_only_with_headings_and_source_lines(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Handbook</title><style>p{color:red}</style></head>\n<body>\n"
        "<h1>Travel</h1>\n<script>alert('x')</script>\n<p>Expenses are paid\nwithin 30 days.</p>\n"
        '<img src="http://example.com/x.png"><p>Caf&eacute; &amp; more</p></body></html>',
        encoding="utf-8",
    )
    doc = extract(path)
    assert doc.title == "Handbook"
    assert block_texts(doc) == ["Travel", "Expenses are paid within 30 days.", "Café & more"]
    para = doc.blocks[1].span
    assert (para.heading, para.line_start, para.line_end) == ("Travel", 5, 6)
    assert "alert" not in doc.text and "color" not in doc.text


def test_a_documentation_page_is_read_inside_its_main_element(tmp_path: Path) -> None:
    # The shape of an mdBook page (the Rust book): help popup, menu, then the chapter.
    path = tmp_path / "ch01.html"
    path.write_text(
        "<html><head><title>Hello, Cargo!</title></head><body>\n"
        '<div id="help"><h2>Keyboard shortcuts</h2><p>Press S to search</p></div>\n'
        '<nav id="sidebar"><ol><li>1. Getting Started</li></ol></nav>\n'
        "<main>\n<h1>Hello, Cargo!</h1>\n<p>Cargo is the build system.</p>\n"
        '<nav class="nav-wrapper"><a href="ch00.html">Previous chapter</a></nav>\n</main>\n'
        "<footer><p>Copyright the authors</p></footer></body></html>",
        encoding="utf-8",
    )
    doc = extract(path)
    assert doc.title == "Hello, Cargo!"
    assert block_texts(doc) == ["Hello, Cargo!", "Cargo is the build system."]
    assert doc.blocks[1].span.line_start == 6
    # Without a <main>, the whole body is read, menus still left out.
    plain = tmp_path / "plain.html"
    plain.write_text(
        "<body><nav><a>Home</a></nav><p>Text.</p><footer>Footer.</footer></body>", "utf-8"
    )
    assert block_texts(extract(plain)) == ["Text.", "Footer."]
    # "<main" that is no element (in a script), or a <main> left empty: the whole body.
    scripted = tmp_path / "scripted.html"
    scripted.write_text(
        "<body><script>x = '<main>';</script><p>Text.</p><main></main></body>", "utf-8"
    )
    assert block_texts(extract(scripted)) == ["Text."]


def test_docx_paragraphs_and_heading_styles(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "policy.docx",
        [("Title", "Policy"), ("Heading1", "Leave"), (None, "Ten days a year."), (None, "")],
    )
    doc = extract(path)
    assert doc.title == "Policy"
    body = doc.blocks[-1].span
    assert block_texts(doc)[-1] == "Ten days a year."
    assert (body.heading, body.line_start) == ("Policy > Leave", 3)


NAMESPACES = (
    f'xmlns:w="{W}" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml"'
)


def _p(text: str, ppr: str = "") -> str:
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def _item(text: str, num_id: int, level: int = 0) -> str:
    numpr = f'<w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>'
    return _p(text, f'<w:pPr><w:pStyle w:val="ListParagraph"/>{numpr}</w:pPr>')


def _text_box(paragraphs: list[str]) -> str:
    """A text box as Word 2010 and later write it: the shape, then the same text again as VML
    for older readers."""
    content = "<w:txbxContent>" + "".join(_p(t) for t in paragraphs) + "</w:txbxContent>"
    return (
        '<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor>'
        "<a:graphic><a:graphicData><wps:wsp><wps:txbx>" + content + "</wps:txbx></wps:wsp>"
        "</a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback>"
        "<w:pict><v:shape><v:textbox>" + content + "</v:textbox></v:shape></w:pict>"
        "</mc:Fallback></mc:AlternateContent></w:r>"
    )


NUMBERING = (
    f'<w:numbering xmlns:w="{W}">'
    '<w:abstractNum w:abstractNumId="0">'
    '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
    '<w:lvlText w:val="%1."/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/>'
    '<w:lvlText w:val="%2)"/></w:lvl>'
    "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="1">'
    '<w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="\uf0b7"/></w:lvl>'
    "</w:abstractNum>"
    '<w:num w:numId="3"><w:abstractNumId w:val="0"/></w:num>'
    '<w:num w:numId="4"><w:abstractNumId w:val="1"/></w:num>'
    "</w:numbering>"
)


def test_a_word_layout_reads_once_in_order(tmp_path: Path) -> None:
    """A text box, a table, numbered and bulleted lists and a line break, marked up as Word
    writes them: each text once, in reading order, items numbered as Word shows them."""
    cell = "<w:tc>{}</w:tc>"
    table = (
        "<w:tbl><w:tr>"
        + cell.format(_p("Tool"))
        + cell.format(_p("Version"))
        + "</w:tr><w:tr>"
        + cell.format(_p("Excel"))
        + cell.format(_p("2019") + _p("or later"))
        + "</w:tr></w:tbl>"
    )
    body = (
        _p("Course outline", '<w:pPr><w:pStyle w:val="Heading1"/></w:pPr>')
        + "<w:p><w:r><w:t>Before you start.</w:t></w:r>"
        + _text_box(["Tools required: Excel", "Prerequisites: None"])
        + "</w:p>"
        + table
        + _item("Open the workbook", 3)
        + _item("Check the totals", 3)
        + _item("the row sums", 3, level=1)
        + _item("the column sums", 3, level=1)
        + _item("Save it", 3)
        + _item("Bring a laptop", 4)
        + "<w:p><w:r><w:t>First line</w:t><w:br/><w:t>second line</w:t></w:r></w:p>"
    )
    xml = f"<w:document {NAMESPACES}><w:body>{body}</w:body></w:document>"
    path = write_docx(tmp_path / "course.docx", xml.encode(), NUMBERING.encode())
    doc = extract(path)
    assert block_texts(doc) == [
        "Course outline",
        "Before you start.",
        "Tools required: Excel",
        "Prerequisites: None",
        "Tool | Version",
        "Excel | 2019 or later",
        "1. Open the workbook",
        "2. Check the totals",
        "a) the row sums",
        "b) the column sums",
        "3. Save it",
        "• Bring a laptop",
        "First line\nsecond line",
    ]
    assert doc.text.count("Prerequisites") == 1
    assert doc.blocks[-1].span.heading == "Course outline"


def test_a_docx_without_numbering_part_still_reads_its_list_items(tmp_path: Path) -> None:
    xml = f"<w:document {NAMESPACES}><w:body>{_item('Only item', 7)}</w:body></w:document>"
    assert block_texts(extract(write_docx(tmp_path / "l.docx", xml.encode()))) == ["Only item"]


def test_pdf_text_by_page_and_line(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "report.pdf", [["Cover page"], ["Intro line", "The lathe needs oil."]]
    )
    doc = extract(path)
    assert doc.meta["pages"] == 2
    last = doc.blocks[-1].span
    assert "The lathe needs oil." in doc.text[last.char_start : last.char_end]
    assert (last.page, last.line_start, last.line_end) == (2, 1, 2)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name: (file, a word the one-line reason must contain)."""
    t = tmp_path
    (t / "empty.txt").write_bytes(b"")
    (t / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (t / "binary.md").write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    good = make_pdf(t / "good.pdf", [["some text"]]).read_bytes()
    (t / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (t / "fake.pdf").write_bytes(b"this is not a pdf at all")
    (t / "notzip.docx").write_bytes(b"PK\x03\x04 broken")
    bomb = tmp_path / "bomb.docx"
    write_docx(bomb, b"<w:document>" + b" " * 5_000_000 + b"</w:document>")
    entity = tmp_path / "entity.docx"
    write_docx(entity, b'<!DOCTYPE x [<!ENTITY a "aaaa">]><w:document>&a;</w:document>')
    laughs = tmp_path / "laughs.docx"
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    write_docx(
        laughs,
        b" " * 200_000  # past the first step of the streamed check
        + f'<!DOCTYPE w [<!ENTITY l0 "lol">{lol}]><w:document>&l9;</w:document>'.encode(),
    )
    deep = tmp_path / "deep.docx"
    nested = b"<w:x>" * 5000 + b"</w:x>" * 5000
    write_docx(deep, f'<w:document xmlns:w="{W}">'.encode() + nested + b"</w:document>")
    no_doc = tmp_path / "nodoc.docx"
    with zipfile.ZipFile(no_doc, "w") as z:
        z.writestr("hello.txt", "hi")
    return {
        "empty": (t / "empty.txt", "empty"),
        "latin1": (t / "latin1.txt", "UTF-8"),
        "binary": (t / "binary.md", "binary"),
        "truncated": (t / "truncated.pdf", "pdf"),
        "fake": (t / "fake.pdf", "not a PDF"),
        "notzip": (t / "notzip.docx", "zip"),
        "bomb": (bomb, "zip bomb"),
        "entity": (entity, "DOCTYPE"),
        "nodoc": (no_doc, "word/document.xml"),
        "laughs": (laughs, "DOCTYPE"),
        "deep": (deep, "nests deeper"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "empty",
        "latin1",
        "binary",
        "truncated",
        "fake",
        "notzip",
        "bomb",
        "entity",
        "nodoc",
        "laughs",
        "deep",
    ],
)
def test_bad_file_fails_with_one_line_naming_it(tmp_path: Path, name: str) -> None:
    path, word = _bad_files(tmp_path)[name]
    with pytest.raises(IngestError) as info:
        extract(path, Limits(max_decompressed_bytes=1_000_000))
    message = info.value.message
    assert str(path) in message and "\n" not in message
    assert word.lower() in message.lower()


def _padded_pdf(path: Path, padding_bytes: int) -> Path:
    """One line of text, then `padding_bytes` of spaces in the same compressed content stream."""
    content = b"BT /F1 11 Tf 72 760 Td (The valve is shut.) Tj ET\n" + b" " * padding_bytes
    return write_pdf(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
    )


def test_pdf_bomb_is_refused_at_the_decompression_limit(tmp_path: Path) -> None:
    path = _padded_pdf(tmp_path / "bomb.pdf", 1_500_000)
    with pytest.raises(IngestError) as info:
        extract(path, Limits(max_decompressed_bytes=1_000_000))
    message = info.value.message
    assert str(path) in message and "1,000,000 bytes (PDF bomb?)" in message
    assert "The valve is shut." in extract(path).text  # within the default limit it is read


def test_a_pdf_page_whose_content_inflates_past_the_limit_is_refused_before_parsing(
    tmp_path: Path,
) -> None:
    """Found by `bench reliability`: a page of 120 MB of blanks (under the 300 MB stream cap)
    went to pypdf's content parser, in Python: a minute, and over the bench's budget when the
    machine was busy. Its size is now checked first."""
    from docmaker import make_pdf_bomb

    path = make_pdf_bomb(tmp_path / "blank.pdf", 30_000_000)
    with pytest.raises(IngestError) as info:
        extract(path, Limits(max_page_content_bytes=10_000_000))
    assert info.value.message == (
        f"{path}: page 1's content inflates to 29,360,128 bytes, more than the limit of "
        "10,000,000 (PDF bomb?)"
    )


def test_limits_on_size_and_pages(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 50_000, encoding="utf-8")
    with pytest.raises(IngestError, match="limit"):
        extract(big, Limits(max_file_bytes=100_000))
    pages = make_pdf(tmp_path / "long.pdf", [[f"page {i}"] for i in range(12)])
    with pytest.raises(IngestError, match="pages"):
        extract(pages, Limits(max_pages=10))


def test_pdf_parser_time_limit(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "many.pdf", [[f"page {i} text"] for i in range(300)])
    with pytest.raises(IngestError, match="time limit"):
        extract(path, Limits(max_seconds=0.01))


@pytest.mark.parametrize("name", ["long.txt", "long.md", "long.html"])
def test_text_and_html_parser_time_limit(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("<p>a line of text</p>\n" * 6000, encoding="utf-8")
    with pytest.raises(IngestError, match="time limit") as info:
        extract(path, Limits(max_seconds=0.0))
    assert str(path) in info.value.message
    assert isinstance(extract(path), Extracted)  # the same file within the usual limit


def test_a_text_file_over_the_text_limit_is_refused_as_it_is_read(tmp_path: Path) -> None:
    """The reliability bench's 200 MB single line was read whole before the text limit refused
    it (481 MB); now it is decoded block by block and refused once the limit is passed."""
    import tracemalloc

    path = tmp_path / "one-line.txt"
    path.write_bytes(b"valve pressure logged " * 1_500_000)  # 33 MB, no line break
    tracemalloc.start()
    try:
        with pytest.raises(IngestError) as info:
            extract(path, Limits(max_text_chars=2_000_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = info.value.message
    assert message == f"{path}: more than 2,000,000 characters of text; split the file"
    assert peak < 12_000_000, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"


def test_text_read_in_blocks_decodes_across_them_and_names_the_bad_byte(tmp_path: Path) -> None:
    from localrag.ingest.text import BLOCK_BYTES

    text = "x" + "é" * BLOCK_BYTES  # a two-byte character straddles each block's end
    path = tmp_path / "accents.txt"
    path.write_bytes(text.encode())
    assert extract(path).text == text
    bad = tmp_path / "bad.txt"
    bad.write_bytes(text.encode() + b"\xff tail")
    with pytest.raises(
        IngestError, match=rf"bad.txt: not UTF-8 text \(byte {len(text.encode())}\)"
    ):
        extract(bad)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("\ufeffzwei Wörter\n".encode("utf-16-le") * 100_000)
    assert extract(utf16).text.startswith("zwei Wörter")


def _docx_paragraph(i: int, runs: int) -> bytes:
    """A paragraph marked up as Word does: many runs, each with its own revision ids."""
    parts = [f'<w:p w:rsidR="{i:08X}">'.encode()]
    for j in range(runs):
        rsid = (i * 7919 + j * 104729) % 0xFFFFFFFF
        parts.append(
            f'<w:r w:rsidRPr="{rsid:08X}"><w:rPr><w:b/><w:sz w:val="{20 + j % 9}"/></w:rPr>'
            f"<w:t>{chr(97 + j % 26)}</w:t></w:r>".encode()
        )
    parts.append(b"</w:p>")
    return b"".join(parts)


@pytest.mark.slow
def test_a_docx_is_parsed_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    from localrag.ingest.docx import MAX_RATIO

    body = b"".join(_docx_paragraph(i, 60) for i in range(2000))
    xml = f'<w:document xmlns:w="{W}"><w:body>'.encode() + body + b"</w:body></w:document>"
    path = write_docx(tmp_path / "long.docx", xml)
    info = zipfile.ZipFile(path).getinfo("word/document.xml")
    assert info.file_size > 10_000_000 and info.file_size < MAX_RATIO * info.compress_size
    tracemalloc.start()
    try:
        doc = extract(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(doc.blocks) == 2000
    # The whole document as a tree took more than 100 MB; parsed as it inflates, a few MB.
    assert peak < info.file_size // 2, f"peak {peak:,} bytes for {info.file_size:,} of XML"


def test_a_docx_compression_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    paragraphs = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * 70_000  # 2.4 MB in a few KB
    xml = f'<w:document xmlns:w="{W}"><w:body>'.encode() + paragraphs + b"</w:body></w:document>"
    path = write_docx(tmp_path / "bomb.docx", xml)
    with pytest.raises(IngestError, match=r"times its packed size \(zip bomb\?\)") as info:
        extract(path)
    assert str(path) in info.value.message


def test_the_html_time_limit_is_checked_inside_the_parse(tmp_path: Path, monkeypatch) -> None:
    from localrag.ingest import base

    checks = []
    real = base.Deadline.check
    monkeypatch.setattr(base.Deadline, "check", lambda self: checks.append(1) or real(self))
    path = tmp_path / "inline.html"
    path.write_text("<p>" + "<b>bold</b> " * 80_000 + "</p>", encoding="utf-8")  # 960 KB
    assert "bold bold" in extract(path).text
    assert len(checks) >= 10  # not once per megabyte


def test_too_many_paragraphs_is_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("a\n\n" * 1000, encoding="utf-8")
    with pytest.raises(IngestError, match="more than 100 paragraphs"):
        extract(path, Limits(max_blocks=100))
    assert len(extract(path).blocks) == 1000


def test_deeply_nested_html_is_read_without_recursion(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 100_000 + "the bottom" + "</div>" * 100_000, encoding="utf-8")
    assert "the bottom" in extract(path).text


def test_plain_text_is_known_by_its_name_or_with_no_extension_by_its_bytes(
    tmp_path: Path,
) -> None:
    from localrag.ingest import format_of

    debian = tmp_path / "README.Debian"
    debian.write_text("Configuration\n\nThe keystore is /etc/ssl/certs/java/cacerts.\n")
    notes = tmp_path / "meeting-notes"
    notes.write_text("Budget: 12,000 EUR, agreed on: " + "é" * 5000)  # 8 KB ends mid-character
    program = tmp_path / "tool"
    program.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(64))
    empty = tmp_path / "blank"
    empty.write_text("\n\n")
    packed = tmp_path / "README.gz"
    packed.write_bytes(gzip.compress(b"Configuration"))
    assert block_texts(extract(debian))[1] == "The keystore is /etc/ssl/certs/java/cacerts."
    assert extract(notes).text.startswith("Budget: 12,000 EUR")
    assert [format_of(p) for p in (program, empty, packed, tmp_path / "data.bin")] == [None] * 4
    assert format_of(tmp_path / "changes.rst") is format_of(debian) is format_of(notes)
    renamed = tmp_path / "openssh-README.Debian"  # copied out of /usr/share/doc/openssh-client
    renamed.write_text("X11 Forwarding\n")
    assert format_of(renamed) is format_of(debian)
    plural = tmp_path / "READMEs.Debian"  # a word of the name counts, not a part of a word
    plural.write_text("X11 Forwarding\n")
    assert format_of(plural) is None
    notes.write_bytes(b"\x00\x01")  # no longer text once it is read: one line, no crash
    with pytest.raises(IngestError, match="meeting-notes: unsupported format"):
        extract(notes)


def test_a_docx_is_never_read_whole(tmp_path: Path, monkeypatch) -> None:
    path = make_docx(tmp_path / "a.docx", [(None, "The valve is shut.")])
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    assert block_texts(extract(path)) == ["The valve is shut."]
    (tmp_path / "empty.docx").write_bytes(b"")
    with pytest.raises(IngestError, match="empty file"):
        extract(tmp_path / "empty.docx")
