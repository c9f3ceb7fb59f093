"""Plain text and Markdown: paragraphs with their line numbers; headings make a path.

Markdown's headings (`#`, and a line over `===` or `---`); in plain text and reStructuredText a
line over (and maybe under) a line of one repeated punctuation mark at least as long, as
Sphinx, CMake's manuals and Debian's READMEs write them; their levels go by the order each
style first appears, as reStructuredText's do.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from localrag.errors import IngestError
from localrag.ingest.base import Deadline, Extracted, Limits, Progress, TextBuilder

ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
ADORNMENT = re.compile(r"^([=\-~^*#+\"'`:.])\1{2,}\s*$")


def check_size(path: Path, limits: Limits) -> int:
    """The file's size; refuses a file bigger than the limit, before any of it is read."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise IngestError(
            f"{path}: {size:,} bytes is more than the limit of {limits.max_file_bytes:,}; split it"
        )
    return size


def read_bytes(path: Path, limits: Limits) -> bytes:
    """The file's bytes, refusing what is too big or empty."""
    check_size(path, limits)
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(f"{path}: empty file, nothing to index")
    return data


def looks_like_text(path: Path) -> bool:
    """Whether the file's first 8 KB are UTF-8 text: something, no NUL byte, and only a
    character cut at the end of them left undecoded."""
    try:
        with path.open("rb") as f:
            head = f.read(8192)
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except (OSError, UnicodeDecodeError):
        return False
    return bool(head.strip()) and b"\x00" not in head


BLOCK_BYTES = 1 << 20
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def read_text(path: Path, limits: Limits) -> str:
    """The file's text: UTF-8 (or UTF-16 with a byte-order mark); binary data and other
    encodings are refused. Decoded block by block as it is read, so a file with more text than
    `limits.max_text_chars` is refused once that much is read, not after the whole file is in
    memory (a 200 MB single line took 481 MB before it was refused)."""
    check_size(path, limits)
    pieces: list[str] = []
    chars = offset = 0
    with path.open("rb") as f:
        block = f.read(BLOCK_BYTES)
        utf16 = block.startswith(_UTF16_MARKS)
        if not utf16 and b"\x00" in block[:8192]:
            raise IngestError(f"{path}: binary data, not text")
        decoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8-sig")()
        while True:
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                raise _undecodable(path, exc, utf16, offset - pending) from exc
            pieces.append(text)
            chars += len(text)
            if chars > limits.max_text_chars:
                raise IngestError(
                    f"{path}: more than {limits.max_text_chars:,} characters of text; "
                    "split the file"
                )
            if not block:
                break
            offset += len(block)
            block = f.read(BLOCK_BYTES)
    text = "".join(pieces)
    if not text.strip():
        raise IngestError(f"{path}: empty file, nothing to index")
    return text


def _undecodable(path: Path, exc: UnicodeDecodeError, utf16: bool, offset: int) -> IngestError:
    if utf16:
        return IngestError(f"{path}: broken UTF-16 text ({exc.reason})")
    return IngestError(
        f"{path}: not UTF-8 text (byte {offset + exc.start}); convert it, e.g. `iconv -t UTF-8`"
    )


def _lines(path: Path, limits: Limits) -> list[str]:
    text = read_text(path, limits).replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _paragraphs(builder: TextBuilder, lines: list[str], markdown: bool) -> Iterator[Progress]:
    deadline = Deadline(builder.path, builder.limits.max_seconds)
    para: list[str] = []
    first = 0
    fenced = False
    styles: list[tuple[str, bool]] = []

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
        if not markdown and (underlined := _underlined(para, line)):
            style = (line[0], len(para) == 2)  # an overlined title is a style of its own
            if style not in styles:
                styles.append(style)
            level = min(styles.index(style) + 1, 6)
            builder.heading(level, underlined, line_start=i, line_end=i + 1)
            para.clear()
            continue
        if not line.strip():
            flush(i)
            continue
        if not para:
            first = i
        para.append(line.rstrip())
    flush(len(lines))


def _underlined(para: list[str], line: str) -> str | None:
    """The title `line` underlines: a one-line paragraph (or one under an overline of the same
    mark) no longer than the underline; else None."""
    if not ADORNMENT.match(line) or not para or len(para) > 2:
        return None
    title = para[-1].strip()
    if len(para) == 2 and para[0].strip() != line.strip():
        return None
    if not title or ADORNMENT.match(title) or len(title) > len(line.strip()):
        return None
    return title


def read_txt(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    builder = TextBuilder(path, limits)
    yield from _paragraphs(builder, _lines(path, limits), markdown=False)
    yield builder.build()


def read_md(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    builder = TextBuilder(path, limits)
    yield from _paragraphs(builder, _lines(path, limits), markdown=True)
    yield builder.build(builder.first_heading())
