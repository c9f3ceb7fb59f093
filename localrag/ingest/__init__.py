"""Files to documents: one reader per format, chosen by file extension; plain text is also
known by its name (README.Debian, LICENSE) or, with no extension, by its content.

Add a format with one line at the end of this module: `register(Format(kind, reader), ".ext")`.
A reader yields `Progress` now and then and finally one `Extracted`; it raises `IngestError`
with a one-line reason for a file it cannot read. `needs` names parts of the assistant the
reader takes as keyword arguments (the audio reader needs the `transcriber`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrag.errors import IngestError
from localrag.ingest.audio import AUDIO_EXTENSIONS, read_audio_file
from localrag.ingest.base import Block, Extracted, Limits, Progress, TextBuilder
from localrag.ingest.docx import read_docx
from localrag.ingest.html import read_html
from localrag.ingest.image import IMAGE_EXTENSIONS, read_image
from localrag.ingest.pdf import read_pdf
from localrag.ingest.text import looks_like_text, read_md, read_txt

__all__ = [
    "FORMATS",
    "Block",
    "Extracted",
    "Format",
    "Limits",
    "Progress",
    "TextBuilder",
    "format_of",
    "register",
]


@dataclass(frozen=True)
class Format:
    """A kind of file localrag can read."""

    kind: str
    """Stored as the document's kind: txt, md, html, pdf, docx, audio, image."""
    reader: Callable[..., Iterator[Progress | Extracted]]
    """`reader(path, limits, **parts)`."""
    needs: tuple[str, ...] = ()
    """Parts of the assistant passed to the reader by name, e.g. ("transcriber",)."""


FORMATS: dict[str, Format] = {}
"""By lower-case extension with its dot."""


def register(fmt: Format, *extensions: str) -> None:
    for ext in extensions:
        FORMATS[ext.lower()] = fmt


TEXT_NAMES = frozenset(
    {"README", "LICENSE", "LICENCE", "COPYING", "NEWS", "INSTALL", "CHANGELOG", "CHANGES"}
    | {"AUTHORS", "TODO", "NOTES", "NOTICE", "HISTORY", "CONTRIBUTING"}
)
"""Plain-text files by a word of the name before its first dot, whatever follows it
(README.Debian, openssh-README.Debian)."""


def format_of(path: Path) -> Format | None:
    """The format of `path` by its extension; else plain text if its name says so (see
    `TEXT_NAMES`) or it has no extension, and its first bytes are UTF-8 text."""
    if fmt := FORMATS.get(path.suffix.lower()):
        return fmt
    named = not TEXT_NAMES.isdisjoint(re.split(r"[^A-Z]+", path.name.split(".")[0].upper()))
    if (named or not path.suffix) and looks_like_text(path):
        return FORMATS[".txt"]
    return None


def read(
    path: Path, limits: Limits, *, fmt: Format | None = None, **parts: Callable[[], Any]
) -> Iterator[Progress | Extracted]:
    """Run the reader for `path`'s format (`fmt`, if the caller found it already).

    `parts` build a part of the assistant on demand; only those the format needs are built.
    """
    fmt = fmt or format_of(path)
    if fmt is None:  # a file known by its bytes that changed since it was listed
        raise IngestError(f"{path}: unsupported format {path.suffix or '(no extension)'}")
    return fmt.reader(path, limits, **{name: parts[name]() for name in fmt.needs if name in parts})


register(Format("txt", read_txt), ".txt", ".text", ".rst", ".org", ".adoc", ".log")
register(Format("md", read_md), ".md", ".markdown")
register(Format("html", read_html), ".html", ".htm", ".xhtml")
register(Format("pdf", read_pdf), ".pdf")
register(Format("docx", read_docx), ".docx")
register(
    Format("audio", read_audio_file, ("transcriber", "speakers", "partials", "sha256")),
    *AUDIO_EXTENSIONS,
)
register(Format("image", read_image), *IMAGE_EXTENSIONS)
