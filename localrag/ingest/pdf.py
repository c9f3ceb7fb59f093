"""PDF: text page by page with pypdf, in a child process that is stopped at the time limit; a
page without a text layer (a scan) is read by OCR from its largest image.

pypdf's caps on what one stream may inflate to (PDF bombs) are set to
`Limits.max_decompressed_bytes` (its own default is 75 MB); the page count is limited here; a child
process makes the time limit real even if one page makes the parser spin. The text comes back
through a pipe, never through a file. `page` is 1-based; `line_start`/`line_end` count the lines of
the extracted text within that page.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localrag.errors import IngestError
from localrag.ingest import ocr
from localrag.ingest.base import Extracted, Limits, Progress, TextBuilder
from localrag.ingest.text import read_bytes

log = logging.getLogger(__name__)

_PYPDF_OUTPUT_CAPS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "jbig2_maximum_output_length",
    "array_based_stream_maximum_output_length",
    "stream_decoding_work_maximum_length",
)
"""pypdf's settings for how many bytes a stream may decode to, one per filter and in all."""


def _pages(path: Path, limits: Limits, conn: Any) -> None:
    """In the child: send ("page", n, total, text) per page, then ("done", title)."""
    try:
        import pypdf
        from pypdf.errors import LimitReachedError, PyPdfError

        logging.getLogger("pypdf").setLevel(logging.ERROR)
        cap = limits.max_decompressed_bytes
        caps: dict[str, Any] = dict.fromkeys(_PYPDF_OUTPUT_CAPS, cap)
        try:
            with pypdf.apply_configuration(**caps):
                _send_pages(pypdf.PdfReader(str(path), strict=False), limits, conn)
        except LimitReachedError:
            conn.send(("error", f"a stream inflates to more than {cap:,} bytes (PDF bomb?)"))
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            conn.send(("error", f"damaged or unreadable PDF ({type(exc).__name__}: {exc})"))
        except RecursionError:
            conn.send(("error", "damaged PDF (objects nest without end)"))
        except MemoryError:
            conn.send(("error", "PDF needs more memory than is available (PDF bomb?)"))
    finally:
        conn.close()


def _send_pages(reader: Any, limits: Limits, conn: Any) -> None:
    """The pages' text down the pipe, or one ("error", reason) for a PDF beyond the limits."""
    if reader.is_encrypted:
        conn.send(("error", "encrypted PDF; save an unprotected copy to index it"))
        return
    total = len(reader.pages)
    if total > limits.max_pages:
        conn.send(("error", f"{total:,} pages, more than the limit of {limits.max_pages:,}"))
        return
    chars = 0
    for n, page in enumerate(reader.pages, start=1):
        content = _content_bytes(page)
        if content > limits.max_page_content_bytes:
            conn.send(
                (
                    "error",
                    f"page {n}'s content inflates to {content:,} bytes, more than the limit of "
                    f"{limits.max_page_content_bytes:,} (PDF bomb?)",
                )
            )
            return
        text = page.extract_text() or ""
        chars += len(text)
        if chars > limits.max_text_chars:
            conn.send(("error", f"more than {limits.max_text_chars:,} characters of text"))
            return
        if text.strip():
            conn.send(("page", n, total, text))
        else:
            conn.send(("scan", n, total, _page_image(page)))
    meta = reader.metadata
    conn.send(("done", str(meta.title or "") if meta else ""))


def _content_bytes(page: Any) -> int:
    """How many bytes the page's content streams inflate to (each within pypdf's cap)."""
    contents = page.get("/Contents")
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, list) else [contents]
    return sum(len(s.get_object().get_data()) for s in streams)


def _page_image(page: Any) -> bytes | None:
    """The largest image of a page without text, as PNG (what a scanner puts on a page), or
    None if it has none or it cannot be decoded."""
    import io

    try:
        images = [image.image for image in page.images if image.image is not None]
    except Exception:  # pypdf raises what its image decoders raise; the page just has no text
        log.debug("no image decoded on a page", exc_info=True)
        return None
    if not images:
        return None
    largest = max(images, key=lambda image: image.size[0] * image.size[1])
    out = io.BytesIO()
    largest.save(out, "PNG")
    return out.getvalue()


def _add_page(builder: TextBuilder, n: int, text: str) -> None:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    para: list[str] = []
    first = 0
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            if not para:
                first = i
            para.append(line.rstrip())
        elif para:
            builder.add("\n".join(para), page=n, line_start=first + 1, line_end=i)
            para = []


def _parser_context() -> Any:
    """Where the parser child comes from: a fresh interpreter, never a fork of this process.

    A fork would copy this process's memory (the data key, decrypted text) into a child that
    parses hostile input. A spawned child costs about a third of a second more per PDF.
    """
    return multiprocessing.get_context("spawn")


def read_pdf(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    data = read_bytes(path, limits)
    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF-" not in data[:1024]:
        raise IngestError(f"{path}: not a PDF file (no %PDF header)")
    del data
    context = _parser_context()
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_pages, args=(path, limits, child), daemon=True)
    process.start()
    child.close()
    builder = TextBuilder(path, limits)
    end = time.monotonic() + limits.max_seconds
    pages = 0
    title = ""
    unread: list[str] = []  # why scanned pages could not be read, one entry per page
    scanned = 0
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0 or not parent.poll(left):
                raise IngestError(
                    f"{path}: gave up after {limits.max_seconds:.0f} s (parser time limit)"
                )
            try:
                message = parent.recv()
            except EOFError as exc:
                raise IngestError(f"{path}: the PDF parser stopped (damaged PDF?)") from exc
            if message[0] == "error":
                raise IngestError(f"{path}: {message[1]}")
            if message[0] == "done":
                title = message[1]
                break
            kind, n, total, content = message
            pages = total
            if kind == "page":
                _add_page(builder, n, content)
            elif content is not None:
                try:
                    lines = ocr.recognize(content, end - time.monotonic(), f"{path}, page {n}")
                except ocr.Unavailable as exc:
                    unread.append(exc.message)
                else:
                    ocr.add_lines(builder, lines, page=n)
                    scanned += 1
            yield Progress(n / max(total, 1))
    finally:
        parent.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if not builder.blocks:
        reason = unread[0] if unread else "its text is undecodable"
        raise IngestError(f"{path}: no extractable text ({reason})")
    meta: dict[str, Any] = {"pages": pages}
    if scanned:
        meta["ocr_pages"] = scanned
    if unread:
        meta["notice"] = f"{len(unread)} scanned pages not read: {unread[0]}"
    yield builder.build(title, **meta)
