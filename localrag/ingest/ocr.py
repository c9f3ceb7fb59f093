"""On-device OCR for scanned PDF pages and images: Tesseract, run as a child process.

Tesseract (LSTM engine, English `tessdata_fast` model) comes from the system's packages
(`apt install tesseract-ocr`, `brew install tesseract`); localrag runs it only after checking
its model file against the SHA-256 pinned here, the same way the other models are checked, and
points it at that very folder. Nothing leaves the machine: the image goes in on stdin, the text
comes back on stdout, no file is written. Tesseract's TSV output gives each word's page, block,
paragraph and line, so a citation can name the page and the OCR line numbers within it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localrag import models
from localrag.errors import IngestError
from localrag.ingest.base import TextBuilder

LANGUAGE = "eng"
PINNED_SHA256 = {
    "7d4322bd2a7749724879683fc3912cb542f19906c83bcc1a52132556427170b2": (
        "eng.traineddata of tessdata_fast 4.1.0 (Debian/Ubuntu tesseract-ocr-eng, Homebrew)"
    ),
}
INSTALL_HINT = "install Tesseract (apt install tesseract-ocr, or brew install tesseract)"
OMP_THREADS: int | None = 1
"""Threads Tesseract may use per page (None: as many as it likes; see `localrag bench ocr`)."""
MIN_CONFIDENCE = 0.0
"""Words Tesseract reports with a negative confidence are layout rows, not text."""


class Unavailable(IngestError):
    """No OCR engine that localrag may use on this machine (a page is skipped, not failed)."""


@dataclass(frozen=True)
class OcrLine:
    page: int
    """1-based, within the image (a multi-page TIFF) or the PDF page it came from."""
    paragraph: tuple[int, int]
    """(block, paragraph) as Tesseract found them: lines with the same one belong together."""
    text: str
    confidence: float
    """Mean word confidence, 0-100."""


@dataclass(frozen=True)
class Engine:
    program: str
    tessdata: Path
    version: str


_engine: Engine | None = None


def engine() -> Engine:
    """The verified Tesseract, found once per process; an `IngestError` saying what to install
    or why its model is refused."""
    global _engine
    if _engine is None:
        _engine = _find()
    return _engine


def _find() -> Engine:
    program = shutil.which("tesseract")
    if program is None:
        raise Unavailable(f"scanned pages and images need OCR: {INSTALL_HINT}")
    try:
        listed = subprocess.run(
            [program, "--list-langs"], capture_output=True, text=True, timeout=30, env=_env()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{program}: Tesseract does not run ({exc}); reinstall it") from exc
    found = re.search(r'languages in "([^"]+)"', listed.stdout + listed.stderr)
    if found is None or LANGUAGE not in listed.stdout.split():
        raise Unavailable(
            f"{program}: Tesseract has no English model; install tesseract-ocr-eng (or "
            "brew install tesseract)"
        )
    tessdata = Path(found.group(1))
    model = tessdata / f"{LANGUAGE}.traineddata"
    digest = _sha256(model)
    if digest not in PINNED_SHA256:
        raise Unavailable(
            f"{model}: SHA-256 {digest[:16]}… is not a model localrag knows; reinstall "
            "tesseract-ocr-eng (localrag checks OCR models like its other models)"
        )
    return Engine(program, tessdata, _version(program, tessdata))


def _version(program: str, tessdata: Path) -> str:
    """Tesseract's version as its hOCR output names it, from reading a blank image with the
    verified model. Not `tesseract --version`: printing libcurl's version line initialises
    OpenLDAP, which looks up the machine's own name (a DNS query where /etc/hosts lacks it)."""
    command = [
        program, "stdin", "stdout", "--tessdata-dir", str(tessdata), "-l", LANGUAGE, "hocr",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, input=_blank_png(), capture_output=True, timeout=30, env=_env()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{program}: Tesseract does not run ({exc}); reinstall it") from exc
    found = re.search(rb"name=.ocr-system. content=.([^'\"]+)", done.stdout)
    if done.returncode != 0 or found is None:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unavailable(
            f"{program}: Tesseract cannot read an image with its English model "
            f"({reason[-1] if reason else 'no output'}); reinstall tesseract-ocr"
        )
    return found.group(1).decode("ascii", "replace")


def _blank_png(side: int = 8) -> bytes:
    """A white greyscale square as PNG bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = (b"\x00" + b"\xff" * side) * side  # filter byte 0, then white pixels
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _sha256(path: Path) -> str:
    try:
        return models.sha256_file(path)
    except OSError as exc:
        raise Unavailable(f"{path}: cannot read the OCR model ({exc.strerror or exc})") from exc


def _env() -> dict[str, str]:
    """Only what Tesseract needs, nothing of ours."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    if OMP_THREADS is not None:
        env["OMP_THREAD_LIMIT"] = str(OMP_THREADS)
    return env


def recognize(image: bytes, timeout_s: float, where: str) -> list[OcrLine]:
    """The lines of text in `image` (PNG, JPEG or TIFF bytes), in reading order."""
    found = engine()
    command = [
        found.program, "stdin", "stdout", "--tessdata-dir", str(found.tessdata),
        "-l", LANGUAGE, "--psm", "3", "tsv",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, input=image, capture_output=True, timeout=max(timeout_s, 1.0), env=_env()
        )
    except subprocess.TimeoutExpired as exc:
        raise IngestError(f"{where}: OCR gave up after {timeout_s:.0f} s (time limit)") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise IngestError(
            f"{where}: OCR could not read the image ({reason[-1] if reason else 'no reason'})"
        )
    return list(parse_tsv(done.stdout.decode("utf-8", "replace")))


def parse_tsv(tsv: str) -> Iterator[OcrLine]:
    """Tesseract's TSV (one row per word, level 5) as lines of words."""
    key: tuple[int, int, int, int] | None = None
    words: list[str] = []
    confidences: list[float] = []

    def line() -> OcrLine:
        assert key is not None
        return OcrLine(key[0], key[1:3], " ".join(words), sum(confidences) / len(confidences))

    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5":
            continue
        text, confidence = cells[11].strip(), float(cells[10])
        if not text or confidence < MIN_CONFIDENCE:
            continue
        here = (int(cells[1]), int(cells[2]), int(cells[3]), int(cells[4]))
        if here != key and words:
            yield line()
            words, confidences = [], []
        key = here
        words.append(text)
        confidences.append(confidence)
    if words:
        yield line()


def add_lines(builder: TextBuilder, lines: list[OcrLine], page: int | None = None) -> None:
    """Each OCR paragraph as a block: its page (`page` for one PDF page, else the image's own
    page) and its OCR line numbers within that page."""
    number = 0
    group: list[OcrLine] = []
    for i, current in enumerate([*lines, None]):
        if group and (
            current is None
            or (current.page, current.paragraph) != (group[0].page, group[0].paragraph)
        ):
            first = number - len(group) + 1
            where = page if page is not None else group[0].page
            builder.add(
                "\n".join(g.text for g in group), page=where, line_start=first, line_end=number
            )
            group = []
        if current is None:
            break
        if i and current.page != lines[i - 1].page:
            number = 0
        number += 1
        group.append(current)
