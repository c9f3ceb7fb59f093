"""Small documents made in code: PDF pages of text lines, DOCX paragraphs (tests and benches)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(path: Path, pages: list[list[str]], *, compress: bool = True) -> Path:
    """A PDF with one page per list of lines (Helvetica, one text line per entry)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
        for line in lines:
            ops += [f"({_escape(line)}) Tj", "T*"]
        ops.append("ET")
        content = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_ids[i] + 1} 0 R"
            " /Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(stream(content, compress))
    return write_pdf(path, objects)


def stream(data: bytes, compress: bool = True) -> bytes:
    if compress:
        packed = zlib.compress(data, 9)
        head = f"<< /Length {len(packed)} /Filter /FlateDecode >>".encode()
        return head + b"\nstream\n" + packed + b"\nendstream"
    return f"<< /Length {len(data)} >>".encode() + b"\nstream\n" + data + b"\nendstream"


def write_pdf(path: Path, objects: list[bytes]) -> Path:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(bytes(out))
    return path


def make_pdf_bomb(path: Path, inflated_bytes: int = 120_000_000) -> Path:
    """One page whose content stream inflates to `inflated_bytes` of spaces."""
    c = zlib.compressobj(9)
    block = b" " * (1 << 20)
    packed = b"".join(c.compress(block) for _ in range(inflated_bytes >> 20)) + c.flush()
    head = f"<< /Length {len(packed)} /Filter /FlateDecode >>".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        head + b"\nstream\n" + packed + b"\nendstream",
    ]
    return write_pdf(path, objects)


W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_docx(path: Path, paragraphs: list[tuple[str | None, str]]) -> Path:
    """A DOCX of (style, text) paragraphs; style like "Heading1", or None for body text."""
    body = []
    for style, text in paragraphs:
        ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
        body.append(
            f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{_xml_escape(text)}</w:t></w:r></w:p>'
        )
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}">'
        f"<w:body>{''.join(body)}</w:body></w:document>"
    )
    return write_docx(path, document.encode())


def write_docx(path: Path, document_xml: bytes, numbering_xml: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("word/document.xml", document_xml)
        if numbering_xml is not None:
            z.writestr("word/numbering.xml", numbering_xml)
    return path


def _font_file() -> str:
    """DejaVu Sans, which matplotlib (a dependency) ships: the same glyphs on every machine."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    assert spec is not None and spec.origin is not None
    return str(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")


def render_page(lines: list[str], width: int = 1240, font_px: int = 30) -> Any:
    """A white page with `lines` in black (a PIL grayscale image): a scan of known text, at
    about 150 dpi for an A4 width of 1240 pixels."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(_font_file(), font_px)
    step = int(font_px * 1.6)
    image = Image.new("L", (width, max(step * (len(lines) + 4), width * 7 // 5)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((font_px * 3, step * (i + 2)), line, font=font, fill=0)
    return image


def png_bytes(image: Any) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_scanned_pdf(path: Path, pages: list[Any]) -> Path:
    """A PDF whose pages are images (grayscale PIL images) with no text layer, as a scanner
    writes them; a page given as a list of lines is typed text instead."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for page in pages:
        kids.append(f"{len(objects) + 1} 0 R")
        if isinstance(page, list):
            text = " ".join(f"({_escape(line)}) Tj T*" for line in page)
            objects.append(
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                f"{len(objects) + 2} 0 R /Resources << /Font << /F1 3 0 R >> >> >>".encode()
            )
            objects.append(stream(f"BT /F1 11 Tf 14 TL 72 760 Td {text} ET".encode("latin-1")))
            continue
        width, height = (n * 72 // 150 for n in page.size)
        image_id, content_id = len(objects) + 3, len(objects) + 2
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Resources "
            f"<< /XObject << /Im0 {image_id} 0 R >> >> /Contents {content_id} 0 R >>".encode()
        )
        objects.append(stream(f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))
        pixels = zlib.compress(page.tobytes())
        objects.append(
            f"<< /Type /XObject /Subtype /Image /Width {page.size[0]} /Height {page.size[1]} "
            f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
            f"/Length {len(pixels)} >>\nstream\n".encode()
            + pixels
            + b"\nendstream"
        )
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    return write_pdf(path, objects)
