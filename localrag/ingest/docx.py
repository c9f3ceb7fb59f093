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
from xml.etree import ElementTree

from localrag.errors import IngestError
from localrag.ingest.base import Deadline, Extracted, Limits, Progress, TextBuilder
from localrag.ingest.text import read_bytes

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|titolo|kop)\s*(\d)$", re.IGNORECASE)
MAX_ENTRIES = 10_000


def _inflate(path: Path, archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """One member's bytes, stopping once more than `limit` come out whatever the header says."""
    out = bytearray()
    with archive.open(name) as member:
        while chunk := member.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise IngestError(
                    f"{path}: {name} inflates to more than {limit:,} bytes (zip bomb?); not indexed"
                )
    return bytes(out)


def _xml(path: Path, data: bytes) -> ElementTree.Element:
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise IngestError(f"{path}: its XML declares a DOCTYPE or entities; refused for safety")
    try:
        return ElementTree.fromstring(data)
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
        try:
            data = _inflate(path, archive, "word/document.xml", limits.max_decompressed_bytes)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise IngestError(f"{path}: damaged DOCX ({exc})") from exc
    yield Progress(0.3)
    root = _xml(path, data)
    body = root.find(f"{W}body")
    builder = TextBuilder(path, limits)
    paragraphs = list(body.iter(f"{W}p")) if body is not None else []
    for n, p in enumerate(paragraphs, start=1):
        if n % 500 == 0:
            deadline.check()
        text = _text(p)
        level = _style_level(p)
        if level is not None:
            builder.heading(level, text, line_start=n, line_end=n)
        else:
            builder.add(text, line_start=n, line_end=n)
    if not builder.blocks:
        raise IngestError(f"{path}: no text in this DOCX")
    yield builder.build(builder.first_heading(), paragraphs=len(paragraphs))
