"""DOCX: paragraphs in order (tables included), Word heading styles as the heading path.

A DOCX is a zip: the archive's declared sizes, its entry count and the bytes actually inflated
are all limited (zip bombs), and XML with a DOCTYPE is refused (entity expansion, external
entities). `line_start` is the paragraph's 1-based number in the document.
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
from localrag.ingest.text import read_bytes

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|titolo|kop)\s*(\d)$", re.IGNORECASE)
MAX_ENTRIES = 10_000
MAX_RATIO = 100
"""Most times a member over 1 MiB may inflate beyond its packed size: Word's XML deflates about
5-15 times, very repetitive tables a few dozen; a zip bomb, hundreds or thousands."""
MAX_DEPTH = 256
"""Deepest XML nesting accepted (Word nests a few dozen levels at most)."""
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


def _paragraphs(
    path: Path, chunks: Iterator[bytes], deadline: Deadline
) -> Iterator[ElementTree.Element]:
    """Each `w:p` of the document as it is parsed, in bounded memory.

    The XML is parsed as it inflates (`XMLPullParser`); a paragraph is handed out when it ends
    and then dropped from the tree, and so is anything else the body holds, so memory stays at
    one paragraph whatever the document's size. Time and depth are checked inside the parse.
    """
    parser: Any = ElementTree.XMLPullParser(events=("start", "end"))
    stack: list[ElementTree.Element] = []
    try:
        for chunk in chunks:
            deadline.check()
            parser.feed(chunk)
            for event, element in parser.read_events():
                if event == "start":
                    stack.append(element)
                    if len(stack) > MAX_DEPTH:
                        raise IngestError(
                            f"{path}: its XML nests deeper than {MAX_DEPTH} levels; "
                            "not a normal DOCX"
                        )
                    continue
                stack.pop()
                is_paragraph = element.tag == f"{W}p"
                if is_paragraph:
                    yield element
                if stack and (is_paragraph or len(stack) <= 2):
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
    return "".join(parts)


def read_docx(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    read_bytes(path, limits)  # size and emptiness checks
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
            for count, p in enumerate(_paragraphs(path, chunks, deadline), start=1):
                text = _text(p)
                level = _style_level(p)
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
