"""Plain text and Markdown: paragraphs with their line numbers; Markdown headings make a path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from localrag.errors import IngestError
from localrag.ingest.base import Deadline, Extracted, Limits, Progress, TextBuilder

ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


def read_bytes(path: Path, limits: Limits) -> bytes:
    """The file's bytes, refusing what is too big or empty."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise IngestError(
            f"{path}: {size:,} bytes is more than the limit of {limits.max_file_bytes:,}; split it"
        )
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(f"{path}: empty file, nothing to index")
    return data


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 (or UTF-16 with a byte-order mark); binary data and other encodings are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IngestError(f"{path}: broken UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path}: binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: not UTF-8 text (byte {exc.start}); convert it, e.g. `iconv -t UTF-8`"
        ) from exc


def _lines(path: Path, limits: Limits) -> list[str]:
    text = decode_text(path, read_bytes(path, limits))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise IngestError(f"{path}: empty file, nothing to index")
    return text.split("\n")


def _paragraphs(builder: TextBuilder, lines: list[str], markdown: bool) -> Iterator[Progress]:
    deadline = Deadline(builder.path, builder.limits.max_seconds)
    para: list[str] = []
    first = 0
    fenced = False

    def flush(end: int) -> None:
        if para:
            builder.add("\n".join(para), line_start=first + 1, line_end=end)
            para.clear()

    for i, line in enumerate(lines):
        if i % 5000 == 0 and i:
            deadline.check()
            yield Progress(i / len(lines))
        if markdown and FENCE.match(line):
            if not fenced:
                flush(i)
                first = i
            fenced = not fenced
            para.append(line)
            continue
        if fenced:
            para.append(line)
            continue
        if markdown and (m := ATX.match(line)):
            flush(i)
            builder.heading(len(m.group(1)), m.group(2), line_start=i + 1, line_end=i + 1)
            continue
        if markdown and len(para) == 1 and (m := SETEXT.match(line)):
            level = 1 if m.group(1).startswith("=") else 2
            title = para.pop()
            builder.heading(level, title, line_start=i, line_end=i + 1)
            continue
        if not line.strip():
            flush(i)
            continue
        if not para:
            first = i
        para.append(line.rstrip())
    flush(len(lines))


def read_txt(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    builder = TextBuilder(path, limits)
    yield from _paragraphs(builder, _lines(path, limits), markdown=False)
    yield builder.build()


def read_md(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    builder = TextBuilder(path, limits)
    yield from _paragraphs(builder, _lines(path, limits), markdown=True)
    yield builder.build(builder.first_heading())
