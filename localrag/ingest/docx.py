"""DOCX: paragraphs, table rows and text boxes in reading order, each once; list items with the
number Word shows; Word heading styles as the heading path.

A DOCX is a zip: the archive's declared sizes, its entry count and the bytes actually inflated
are all limited (zip bombs), and XML with a DOCTYPE is refused (entity expansion, external
entities). `line_start` is the block's 1-based number in the document.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from localrag.errors import IngestError
from localrag.ingest.base import Deadline, Extracted, Limits, Progress, TextBuilder
from localrag.ingest.text import check_size

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
P, TR, TC = f"{W}p", f"{W}tr", f"{W}tc"
FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|titolo|kop)\s*(\d)$", re.IGNORECASE)
MAX_ENTRIES = 10_000
MAX_RATIO = 100
"""Most times a member over 1 MiB may inflate beyond its packed size: Word's XML deflates about
5-15 times, very repetitive tables a few dozen; a zip bomb, hundreds or thousands."""
MAX_DEPTH = 256
"""Deepest XML nesting accepted (Word nests a few dozen levels at most)."""
MAX_NUMBERING_BYTES = 10_000_000
"""Largest list-numbering part read (Word's are tens of KB)."""
FEED_BYTES = 1 << 16
"""Inflated and parsed this much at a time: the limits are checked between two such steps."""


def _inflate(
    path: Path, archive: zipfile.ZipFile, name: str, limit: int, done: list[int]
) -> Iterator[bytes]:
    """One member's bytes in steps (`done[0]` counts them), stopping once more than `limit`
    come out, whatever the header says."""
    out = 0
    tail = b""
    with archive.open(name) as member:
        while chunk := member.read(FEED_BYTES):
            out += len(chunk)
            if out > limit:
                raise IngestError(
                    f"{path}: {name} inflates to more than {limit:,} bytes (zip bomb?); not indexed"
                )
            # Entity expansion and external entities need a DOCTYPE: refused, across steps too.
            seen = (tail + chunk).upper()
            if b"<!DOCTYPE" in seen or b"<!ENTITY" in seen:
                raise IngestError(
                    f"{path}: its XML declares a DOCTYPE or entities; refused for safety"
                )
            tail = chunk[-16:]
            done[0] = out
            yield chunk


class _Numbering:
    """The label Word shows before a list item ("2.", "b)", "•"), from word/numbering.xml.

    Counters are kept per list (`w:numId`) and level, in document order; an item restarts the
    levels under its own. Numbering inherited from a paragraph style is not followed.
    """

    def __init__(self, xml: bytes | None) -> None:
        self.levels: dict[str, dict[int, tuple[str, str, int]]] = {}
        self.counters: dict[str, list[int]] = {}
        if xml is None:
            return
        root = ElementTree.fromstring(xml)
        formats: dict[str, dict[int, tuple[str, str, int]]] = {}
        for abstract in root.iter(f"{W}abstractNum"):
            formats[abstract.get(f"{W}abstractNumId", "")] = {
                int(lvl.get(f"{W}ilvl", "0")): (
                    _val(lvl, "numFmt", "decimal"),
                    _val(lvl, "lvlText", ""),
                    int(_val(lvl, "start", "1") or 1),
                )
                for lvl in abstract.iter(f"{W}lvl")
            }
        for num in root.iter(f"{W}num"):
            abstract_id = _val(num, "abstractNumId", "")
            if abstract_id in formats:
                self.levels[num.get(f"{W}numId", "")] = formats[abstract_id]

    def label(self, p: ElementTree.Element) -> str:
        numpr = p.find(f"{W}pPr/{W}numPr")
        if numpr is None:
            return ""
        levels = self.levels.get(_val(numpr, "numId", ""))
        level = int(_val(numpr, "ilvl", "0") or 0)
        if not levels or level not in levels:
            return ""
        counts = self.counters.setdefault(_val(numpr, "numId", ""), [0] * 10)
        level = min(level, 9)
        counts[level] += 1
        counts[level + 1 :] = [0] * (9 - level)
        fmt, text, _ = levels[level]
        if fmt == "bullet":
            return "• "
        if fmt == "none" or not text:
            return ""

        def number(m: re.Match[str]) -> str:
            at = int(m.group(1)) - 1
            fmt_at, _, start = levels.get(at, ("decimal", "", 1))
            return _format_number(start + max(counts[at], 1) - 1, fmt_at)

        return re.sub(r"%([1-9])", number, text) + " "


def _val(element: ElementTree.Element, child: str, default: str) -> str:
    found = element.find(f"{W}{child}")
    return default if found is None else found.get(f"{W}val", default)


def _format_number(n: int, fmt: str) -> str:
    if fmt in ("lowerLetter", "upperLetter"):
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman"):
        roman = _roman(n)
        return roman if fmt == "upperRoman" else roman.lower()
    return str(n)


def _roman(n: int) -> str:
    out = []
    for value, digits in (
        (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
        (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
    ):  # fmt: skip
        count, n = divmod(n, value)
        out.append(digits * count)
    return "".join(out)


def _blocks(
    path: Path, chunks: Iterator[bytes], deadline: Deadline, numbering: _Numbering
) -> Iterator[tuple[str, int | None]]:
    """Each paragraph or table row of the document as (text, heading level or None), in reading
    order, as it is parsed, in bounded memory.

    The XML is parsed as it inflates (`XMLPullParser`); what has been handed out is dropped from
    the tree, so memory stays at one paragraph or table row whatever the document's size. A
    table row is one block, its cells joined by " | "; a text box's paragraphs follow the
    paragraph they are anchored in; `mc:Fallback` (the same text box again, for old readers) is
    skipped. Time and depth are checked inside the parse.
    """
    parser: Any = ElementTree.XMLPullParser(events=("start", "end"))
    stack: list[ElementTree.Element] = []
    depth = dict.fromkeys((P, TR, FALLBACK), 0)
    anchored: list[str] = []  # text box paragraphs waiting for their paragraph to end
    cells: list[list[str]] = []  # the outermost table row being read
    try:
        for chunk in chunks:
            deadline.check()
            parser.feed(chunk)
            for event, element in parser.read_events():
                tag = element.tag
                if event == "start":
                    stack.append(element)
                    if len(stack) > MAX_DEPTH:
                        raise IngestError(
                            f"{path}: its XML nests deeper than {MAX_DEPTH} levels; "
                            "not a normal DOCX"
                        )
                    if tag in depth:
                        depth[tag] += 1
                    if tag == TC and depth[TR] == 1:
                        cells.append([])
                    continue
                stack.pop()
                if tag in depth:
                    depth[tag] -= 1
                if tag == P and not depth[FALLBACK]:
                    text = (numbering.label(element) + _text(element)).strip()
                    if depth[P]:
                        anchored.append(text)
                    elif depth[TR]:
                        if cells:
                            cells[-1].extend([text, *anchored])
                        anchored.clear()
                    else:
                        yield text, _style_level(element)
                        for inner in anchored:
                            yield inner, None
                        anchored.clear()
                elif tag == TR and not depth[TR] and not depth[FALLBACK]:
                    yield " | ".join(" ".join(t for t in c if t) for c in cells), None
                    cells.clear()
                if stack and (tag in depth or len(stack) <= 2):
                    stack[-1].remove(element)
        parser.close()
    except ElementTree.ParseError as exc:
        raise IngestError(f"{path}: broken XML inside the DOCX ({exc})") from exc


def _style_level(p: ElementTree.Element) -> int | None:
    style = p.find(f"{W}pPr/{W}pStyle")
    if style is None:
        return None
    name = style.get(f"{W}val", "")
    if name.lower() == "title":
        return 0  # above Heading 1, so headings nest under the title
    m = HEADING_STYLE.match(name)
    return int(m.group(1)) if m else None


def _text(p: ElementTree.Element) -> str:
    parts = []
    for node in p.iter():
        if node.tag == f"{W}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{W}tab":
            parts.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
        elif node.tag == f"{W}noBreakHyphen":
            parts.append("-")
    return "".join(parts)


def _read_numbering(path: Path, archive: zipfile.ZipFile) -> _Numbering:
    if "word/numbering.xml" not in archive.namelist():
        return _Numbering(None)
    xml = b"".join(_inflate(path, archive, "word/numbering.xml", MAX_NUMBERING_BYTES, [0]))
    try:
        return _Numbering(xml)
    except (ElementTree.ParseError, ValueError):
        return _Numbering(None)  # lists without their numbers, rather than no document


def read_docx(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    if check_size(path, limits) == 0:  # the zip is read entry by entry, never whole
        raise IngestError(f"{path}: empty file, nothing to index")
    deadline = Deadline(path, limits.max_seconds)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"{path}: not a valid DOCX (zip) file ({exc})") from exc
    builder = TextBuilder(path, limits)
    count = 0
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise IngestError(f"{path}: {len(entries):,} entries in the zip; not a normal DOCX")
        declared = sum(e.file_size for e in entries)
        if declared > limits.max_decompressed_bytes:
            raise IngestError(
                f"{path}: declares {declared:,} bytes uncompressed, more than the limit of "
                f"{limits.max_decompressed_bytes:,} (zip bomb?); not indexed"
            )
        if "word/document.xml" not in archive.namelist():
            raise IngestError(f"{path}: no word/document.xml inside; not a Word document")
        # zipfile never returns more than the size an entry declares, so the declared ratio
        # is the real one: a bomb is refused before a byte is inflated.
        for e in entries:
            if e.file_size > 1 << 20 and e.file_size > MAX_RATIO * max(e.compress_size, 1):
                raise IngestError(
                    f"{path}: {e.filename} inflates {e.file_size // max(e.compress_size, 1):,} "
                    f"times its packed size (zip bomb?); not indexed"
                )
        size = max(archive.getinfo("word/document.xml").file_size, 1)
        done = [0]
        chunks = _inflate(path, archive, "word/document.xml", limits.max_decompressed_bytes, done)
        try:
            numbering = _read_numbering(path, archive)
            blocks = _blocks(path, chunks, deadline, numbering)
            for count, (text, level) in enumerate(blocks, start=1):
                if level is not None:
                    builder.heading(level, text, line_start=count, line_end=count)
                else:
                    builder.add(text, line_start=count, line_end=count)
                if count % 1000 == 0:
                    deadline.check()
                    yield Progress(min(0.95, done[0] / size))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise IngestError(f"{path}: damaged DOCX ({exc})") from exc
    if not builder.blocks:
        raise IngestError(f"{path}: no text in this DOCX")
    yield builder.build(builder.first_heading(), paragraphs=count)
