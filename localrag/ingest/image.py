"""Images (PNG, JPEG, TIFF, one page or many): their text read by OCR (`ocr.py`).

The image's size in pixels is checked from its header before anything decodes it: a small file
that claims a huge canvas (a decompression bomb) is refused. `page` is the TIFF page (1 for
other images); `line_start`/`line_end` are the OCR lines within it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localrag.errors import IngestError
from localrag.ingest import ocr
from localrag.ingest.base import Extracted, Limits, Progress, TextBuilder
from localrag.ingest.text import read_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
NO_TEXT = "OCR found no text; indexed with no text"
MAX_PIXELS = 100_000_000
"""A page scanned at 600 dpi is about 35 million pixels."""


def read_image(path: Path, limits: Limits) -> Iterator[Progress | Extracted]:
    data = read_bytes(path, limits)
    width, height = pixel_size(path, data)
    if width * height > MAX_PIXELS:
        raise IngestError(
            f"{path}: {width:,} x {height:,} pixels, more than {MAX_PIXELS:,}; scale it down"
        )
    started = time.monotonic()
    lines = ocr.recognize(data, limits.max_seconds, str(path))
    yield Progress(1.0)
    builder = TextBuilder(path, limits)
    ocr.add_lines(builder, lines)
    meta: dict[str, Any] = {
        "pages": max((line.page for line in lines), default=1),
        "ocr": ocr.engine().version,
        "ocr_seconds": round(time.monotonic() - started, 2),
    }
    if lines:
        meta["ocr_confidence"] = round(sum(line.confidence for line in lines) / len(lines), 1)
    if not builder.blocks:
        # An icon or a photo: kept (so adding its folder again does not read it again) and
        # said, as a recording with no speech is; not a failure of the batch.
        meta["notice"] = NO_TEXT
    yield builder.build("", **meta)


def pixel_size(path: Path, data: bytes) -> tuple[int, int]:
    """Width and height from the PNG, JPEG or TIFF header (the largest TIFF page's product is
    not read: Tesseract reads TIFF pages one at a time)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(path, data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(path, data)
    raise IngestError(f"{path}: not a PNG, JPEG or TIFF image")


def _jpeg_size(path: Path, data: bytes) -> tuple[int, int]:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise IngestError(f"{path}: damaged JPEG (no image size in its header)")


def _tiff_size(path: Path, data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
        size = {}
        for i in range(count):
            entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
                fmt = "H" if kind == 3 else "I"
                size[tag] = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
        return size[256], size[257]
    except (struct.error, KeyError) as exc:
        raise IngestError(f"{path}: damaged TIFF (no image size in its header)") from exc
