"""Tesseract (the OCR localrag uses) against an ONNX OCR model, side by side on the same pages.

    python packaging/compare_ocr.py ONNX_PYTHON [--pages 10]

ONNX_PYTHON is a Python with `rapidocr-onnxruntime` installed (PP-OCRv4 detection and
recognition models run with onnxruntime; its wheel carries the models), kept out of localrag's
own environment: `python -m venv /tmp/ocrvenv && /tmp/ocrvenv/bin/pip install
rapidocr-onnxruntime==1.4.4`. The pages are those of `localrag bench ocr` (SciFact abstracts
drawn at about 150 dpi, clean and as a scan). Both engines read each page with one thread, in
alternating order; Tesseract's time includes starting its process per page, as localrag runs it,
the ONNX model is loaded once before timing (so it is favoured). Prints character error rates and
pages per second of both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from localrag.bench.docmaker import png_bytes, render_page
from localrag.bench.ocr import as_scanned, cer, page_lines
from localrag.bench.retrieval import DEFAULT_BEIR, base_texts
from localrag.ingest import ocr

# Reads PNG paths on stdin, answers one JSON line per page: its lines top to bottom, and seconds.
ONNX_CHILD = """
import json, sys, time
from rapidocr_onnxruntime import RapidOCR
engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
engine(sys.argv[1])
print("ready", flush=True)
for path in sys.stdin:
    t0 = time.perf_counter()
    found, _ = engine(path.strip())
    seconds = time.perf_counter() - t0
    boxes = sorted(found or [], key=lambda f: (f[0][0][1], f[0][0][0]))
    print(json.dumps({"text": "\\n".join(f[1] for f in boxes), "seconds": seconds}), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx_python", help="a Python with rapidocr-onnxruntime installed")
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    texts, _ = base_texts(DEFAULT_BEIR, args.pages, 0)
    ocr.OMP_THREADS = 1
    errors: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {"tesseract": [], "onnx": []}
    with tempfile.TemporaryDirectory(prefix="compare-ocr-") as folder:
        pages = []
        for n, text in enumerate(texts):
            lines = page_lines(text)
            clean = render_page(lines)
            for variant, image in (("clean", clean), ("scanned", as_scanned(clean, n))):
                path = Path(folder) / f"{n}-{variant}.png"
                path.write_bytes(png_bytes(image))
                pages.append((variant, "\n".join(lines), path))
        child = subprocess.Popen(
            [args.onnx_python, "-c", ONNX_CHILD, str(pages[0][2])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "ready"

        def read_onnx(path: Path) -> str:
            child.stdin.write(f"{path}\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
            reply = json.loads(child.stdout.readline())  # type: ignore[union-attr]
            seconds["onnx"].append(reply["seconds"])
            return str(reply["text"])

        def read_tesseract(path: Path) -> str:
            t0 = time.perf_counter()
            found = ocr.recognize(path.read_bytes(), 300, path.name)
            seconds["tesseract"].append(time.perf_counter() - t0)
            return "\n".join(line.text for line in found)

        for n, (variant, truth, path) in enumerate(pages):
            engines = [("tesseract", read_tesseract), ("onnx", read_onnx)]
            for name, read in engines if n % 2 == 0 else engines[::-1]:
                errors.setdefault(f"{name} {variant}", []).append(cer(truth, read(path)))
        child.stdin.close()
        child.wait()
    result = {"pages": len(texts), "engine": ocr.engine().version}
    for key, values in errors.items():
        result[f"cer {key}"] = round(statistics.mean(values), 4)
        result[f"cer {key} worst"] = round(max(values), 4)
    for name, times in seconds.items():
        result[f"{name} pages/s"] = round(len(times) / sum(times), 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
