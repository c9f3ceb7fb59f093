"""The document makers live in the package, where `localrag bench reliability` uses them too."""

from localrag.bench.docmaker import (
    CONTENT_TYPES,
    W,
    make_docx,
    make_pdf,
    make_pdf_bomb,
    make_scanned_pdf,
    png_bytes,
    render_page,
    stream,
    write_docx,
    write_pdf,
)

__all__ = [
    "CONTENT_TYPES",
    "W",
    "make_docx",
    "make_pdf",
    "make_pdf_bomb",
    "make_scanned_pdf",
    "png_bytes",
    "render_page",
    "stream",
    "write_docx",
    "write_pdf",
]
