"""`localrag bench ocr`: character error rate and pages per second of OCR, on pages rendered from
known text.

Each page is a real SciFact abstract (title and text, wrapped at 64 characters; generated text
without the data) drawn in DejaVu Sans at about 150 dpi. It is read twice: clean, and as a scan
(turned 0.6 degrees, blurred, with grey speckle). The character error rate is the edit distance
between the page's text and what OCR returned (spaces and line breaks collapsed), over the
page's length. Speed is measured three ways in one run: Tesseract alone per page with one
thread and with as many as it likes (alternating, so a noisy machine hurts both), and the whole
PDF reader on a scanned PDF of the same pages (pypdf, image decoding, OCR).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from localrag.bench.retrieval import DEFAULT_BEIR, base_texts
from localrag.cli import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ocr", help="character error rate and pages/s of OCR on rendered pages")
    p.add_argument("--pages", type=int, default=10, help="pages to render (default 10)")
    p.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR folder for real texts")
    common.add_json(p)
    p.set_defaults(func=run)


def page_lines(text: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), 64)[:40]


def as_scanned(image: Any, seed: int) -> Any:
    """The page as a flatbed scanner gives it back: slightly turned, soft, speckled."""
    import numpy as np
    from PIL import Image, ImageFilter

    turned = image.rotate(0.6, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    soft = turned.filter(ImageFilter.GaussianBlur(0.7))
    noise = np.random.default_rng(seed).normal(0, 14, (soft.size[1], soft.size[0]))
    pixels = np.clip(np.asarray(soft, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L")


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(truth: str, read: str) -> float:
    truth, read = " ".join(truth.split()), " ".join(read.split())
    return edit_distance(truth, read) / max(len(truth), 1)


def run(args: argparse.Namespace) -> int:
    from localrag.bench.docmaker import make_scanned_pdf, png_bytes, render_page
    from localrag.ingest import Extracted, Limits, ocr, read

    texts, _ = base_texts(args.beir, args.pages, 0)
    pages = [page_lines(t) for t in texts]
    clean = [render_page(lines) for lines in pages]
    scanned = [as_scanned(image, seed) for seed, image in enumerate(clean)]
    engine = ocr.engine()
    errors: dict[str, list[float]] = {"clean": [], "scanned": []}
    seconds: dict[str, list[float]] = {"one thread": [], "all threads": []}
    for n, lines in enumerate(pages):
        truth = "\n".join(lines)
        for variant, image in (("clean", clean[n]), ("scanned", scanned[n])):
            data = png_bytes(image)
            order = ["one thread", "all threads"]
            for threads in order if n % 2 == 0 else order[::-1]:
                ocr.OMP_THREADS = 1 if threads == "one thread" else None
                t0 = time.perf_counter()
                found = ocr.recognize(data, 300, f"page {n + 1}")
                seconds[threads].append(time.perf_counter() - t0)
            errors[variant].append(cer(truth, "\n".join(line.text for line in found)))
    ocr.OMP_THREADS = 1
    folder = Path(tempfile.mkdtemp(prefix="localrag-bench-ocr-"))
    try:
        pdf = make_scanned_pdf(folder / "scan.pdf", scanned)
        t0 = time.perf_counter()
        *_, doc = read(pdf, Limits())
        pdf_seconds = time.perf_counter() - t0
        assert isinstance(doc, Extracted) and doc.meta.get("ocr_pages") == len(pages)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result: dict[str, Any] = {
        "data": "SciFact abstracts" if (args.beir / "corpus.jsonl").is_file() else "generated",
        "pages": len(pages),
        "characters_per_page": round(statistics.mean(len("\n".join(p)) for p in pages)),
        "engine": engine.version,
        "cer_clean": round(statistics.mean(errors["clean"]), 4),
        "cer_scanned": round(statistics.mean(errors["scanned"]), 4),
        "cer_scanned_worst_page": round(max(errors["scanned"]), 4),
        "pages_per_s_one_thread": round(len(seconds["one thread"]) / sum(seconds["one thread"]), 2),
        "pages_per_s_all_threads": round(
            len(seconds["all threads"]) / sum(seconds["all threads"]), 2
        ),
        "pdf_pages_per_s": round(len(pages) / pdf_seconds, 2),
    }
    if args.json:
        common.print_json(result)
    else:
        for key, value in result.items():
            print(f"{key:>26}  {value}")
    return 0
