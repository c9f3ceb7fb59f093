"""HTML: visible text by block element, headings as the heading path, source line numbers.

A page with a `<main>` element is read inside it only: documentation generators (mdBook,
rustdoc, MkDocs, Docusaurus) put the page's own text there and the site's chrome (menus, search
boxes, a keyboard-help popup) outside; menus (`<nav>`) are skipped everywhere.
The standard library's parser fetches nothing: no external entity, stylesheet or image.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from html.parser import HTMLParser
from pathlib import Path

from localrag.errors import IngestError
from localrag.ingest.base import Deadline, Extracted, Limits, Progress, TextBuilder
from localrag.ingest.text import read_bytes

BLOCKS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "table", "tr", "td", "th",
    "section", "article", "header", "footer", "main", "nav", "aside", "figure", "figcaption",
    "br", "hr", "form", "details", "summary", "caption", "address",
}  # fmt: skip
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
HIDDEN = {"script", "style", "template", "noscript", "svg", "head", "iframe", "object", "nav"}
_MAIN = re.compile(r"<main[\s>]", re.IGNORECASE)


class _Parser(HTMLParser):
    def __init__(self, builder: TextBuilder, main_only: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = builder
        self.main_only = main_only
        self.outside_main = main_only
        """Whether the text is outside the page's `<main>` (only on a page that has one)."""
        self.words: list[str] = []
        self.has_text = False
        """Whether `words` holds more than white space (kept so data is not joined each time)."""
        self.line = 1
        self.hidden = 0
        self.heading = 0
        self.pre = 0
        self.title: list[str] = []
        self.in_title = False

    def flush(self) -> None:
        raw = "".join(self.words)
        self.words = []
        self.has_text = False
        text = raw if self.pre else " ".join(raw.split())
        if not text.strip():
            return
        end = self.line + raw.strip().count("\n")
        if self.heading:
            self.builder.heading(self.heading, text, line_start=self.line, line_end=end)
        else:
            self.builder.add(text, line_start=self.line, line_end=end)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag == "main" and self.outside_main:
            self.flush()
            self.outside_main = False
        if tag in HIDDEN:
            self.hidden += 1
        elif tag in BLOCKS or tag in HEADINGS:
            self.flush()
            self.heading = HEADINGS.get(tag, self.heading)
            self.pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag == "main" and self.main_only and not self.outside_main:
            self.flush()
            self.outside_main = True
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCKS or tag in HEADINGS:
            self.flush()
            if tag in HEADINGS:
                self.heading = 0
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.hidden or self.outside_main:
            return
        if not self.has_text:
            lead = data[: len(data) - len(data.lstrip())]
            self.line = self.getpos()[0] + lead.count("\n")
            self.has_text = bool(data.strip())
        self.words.append(data)


def decode_html(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old pages are often Windows-1252; every byte maps to some character.
        return data.decode("cp1252", errors="replace")


def read_html(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    data = read_bytes(path, limits)
    deadline = Deadline(path, limits.max_seconds)
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path}: binary data, not HTML")
    text = decode_html(data)
    parser = yield from _parse(text, TextBuilder(path, limits), deadline, bool(_MAIN.search(text)))
    if parser.main_only and not parser.builder.blocks:
        # "<main" in a script or a comment, or a <main> that a script fills: read it all.
        parser = yield from _parse(text, TextBuilder(path, limits), deadline, False)
    if not parser.builder.blocks:
        raise IngestError(f"{path}: no visible text in this HTML file")
    yield parser.builder.build(" ".join("".join(parser.title).split()))


def _parse(
    text: str, builder: TextBuilder, deadline: Deadline, main_only: bool
) -> Generator[Progress, None, _Parser]:
    parser = _Parser(builder, main_only)
    step = 1 << 16  # a few milliseconds of parsing between two checks of the time limit
    for i in range(0, len(text), step):
        deadline.check()
        parser.feed(text[i : i + step])
        if i % (16 * step) == 0:
            yield Progress(min(1.0, (i + step) / len(text)))
    parser.close()
    parser.flush()
    return parser
