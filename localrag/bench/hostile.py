"""Hostile files made in code, and the part of the reliability bench that feeds them to `add`.

Each is given to `localrag add` alone, as a child process with a wall-clock and memory budget:
it must be refused with one line naming the file (or read, if it is only odd), in bounded time
and memory. Then all of them go in one batch with good documents: the good ones must be indexed.
"""

from __future__ import annotations

import json
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localrag.bench import cli_child, corpus
from localrag.bench.docmaker import CONTENT_TYPES, W, make_docx, make_pdf, make_pdf_bomb, write_docx
from localrag.bench.sounds import encode, tone_in_noise

TIME_BUDGET_S = 120.0
"""Per hostile file, Python start-up included (the parsers' own limit is 300 s per file, but
none of these should come near it)."""
MEMORY_BUDGET_BYTES = 1_500_000_000


def _docx_bomb(path: Path, inflated_bytes: int) -> Path:
    """A DOCX whose document.xml inflates to `inflated_bytes` (spaces), written in a stream."""
    block = b" " * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>'.encode())
            for _ in range(inflated_bytes >> 20):
                f.write(block)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return path


def _billion_laughs() -> bytes:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return f'<!DOCTYPE w [<!ENTITY l0 "lol">{lol}]><w:document>&l9;</w:document>'.encode()


def make_hostile(folder: Path, single_line_bytes: int = 200_000_000) -> dict[str, Path]:
    """name: file. Sizes are real: a 120 MB PDF bomb, a 1 GB DOCX bomb, a 200 MB single line."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    good_pdf = make_pdf(folder / ".good.pdf", [["A page of text."]]).read_bytes()
    good_docx = make_docx(folder / ".good.docx", [(None, "A paragraph.")]).read_bytes()
    (folder / ".good.pdf").unlink()
    (folder / ".good.docx").unlink()
    files = {
        "pdf bomb": make_pdf_bomb(folder / "bomb.pdf"),
        "docx bomb": _docx_bomb(folder / "bomb.docx", 1 << 30),
        "billion laughs": write_docx(folder / "laughs.docx", _billion_laughs()),
        "deep html": folder / "deep.html",
        "deep docx": write_docx(
            folder / "deep.docx",
            f'<w:document xmlns:w="{W}">'.encode() + b"<w:x>" * 100_000 + b"</w:x>" * 100_000,
        ),
        "truncated pdf": folder / "truncated.pdf",
        "garbage pdf": folder / "garbage.pdf",
        "truncated docx": folder / "truncated.docx",
        "garbage docx": folder / "garbage.docx",
        "truncated audio": folder / "truncated.wav",
        "garbage audio": folder / "garbage.mp3",
        "binary .txt": folder / "binary.txt",
        "invalid utf-8": folder / "latin1.txt",
        "200 MB line": folder / "one-line.txt",
    }
    files["deep html"].write_bytes(
        b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000
    )
    files["truncated pdf"].write_bytes(good_pdf[: len(good_pdf) // 2])
    files["garbage pdf"].write_bytes(b"%PDF-1.4\n" + rng.randbytes(200_000))
    files["truncated docx"].write_bytes(good_docx[: len(good_docx) // 2])
    files["garbage docx"].write_bytes(b"PK\x03\x04" + rng.randbytes(200_000))
    wav = encode(tone_in_noise(2.0), ".wav")
    files["truncated audio"].write_bytes(wav[:60])
    files["garbage audio"].write_bytes(rng.randbytes(300_000))
    files["binary .txt"].write_bytes(b"\x7fELF\x02\x01\x01\x00" + rng.randbytes(100_000))
    files["invalid utf-8"].write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 100)
    with files["200 MB line"].open("wb") as f:
        words = b"valve pressure logged " * 47_662  # about 1 MB, no newline
        for _ in range(single_line_bytes // len(words)):
            f.write(words)
        f.write(words[: single_line_bytes % len(words)])
    return files


def _outcome(path: Path, finished: cli_child.Finished) -> tuple[str, str]:
    """("rejected" | "read" | "bad", the line shown)."""
    if finished.killed:
        return "bad", f"killed after {finished.wall_s:.0f} s (hang?)"
    if "Traceback" in finished.stderr:
        return "bad", finished.stderr.strip().splitlines()[-1]
    try:
        report = json.loads(finished.stdout)
    except json.JSONDecodeError:
        line = cli_child.one_line_error(finished)
        return ("rejected", line) if line and str(path) in line else ("bad", finished.stderr[-300:])
    if report["added"]:
        return "read", f"{report['added'][0]['chunks']} chunks"
    reasons = [f["reason"] for f in report["failed"] + report["skipped"]]
    if len(reasons) == 1 and "\n" not in reasons[0] and str(path) in reasons[0]:
        return "rejected", reasons[0]
    return "bad", repr(reasons)[:300]


def run(
    work: Path,
    models_dir: Path,
    single_line_bytes: int = 200_000_000,
    update: Callable[[int], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    hostile = make_hostile(work / "hostile", single_line_bytes)
    template = corpus.make_home(work / "template")
    home = work / "home"
    env = cli_child.child_env(home, corpus.PASSPHRASE, models_dir)
    files: dict[str, dict[str, Any]] = {}
    for i, (name, path) in enumerate(hostile.items()):
        corpus.copy_home(template, home)
        finished = cli_child.run(["add", str(path), "--json"], env, timeout_s=TIME_BUDGET_S)
        outcome, line = _outcome(path.resolve(), finished)
        if finished.peak_rss_bytes > MEMORY_BUDGET_BYTES:
            outcome = "bad"
        files[name] = {
            "outcome": outcome,
            "line": line,
            "wall_s": round(finished.wall_s, 2),
            "peak_rss_mb": round(finished.peak_rss_bytes / 1e6),
            "size_bytes": path.stat().st_size,
        }
        update(i + 1)
    # All of them at once, beside the good batch: the good ones must all be indexed.
    batch = work / "batch"
    good = corpus.make_batch(batch)
    for path in hostile.values():
        path.rename(batch / path.name)
    corpus.copy_home(template, home)
    finished = cli_child.run(["add", str(batch), "--json"], env, timeout_s=20 * TIME_BUDGET_S)
    state = corpus.inspect(home)
    indexed = sum(str(p.resolve()) in state.documents for p in good)
    return {
        "files": files,
        "rejected": sum(f["outcome"] == "rejected" for f in files.values()),
        "read": sum(f["outcome"] == "read" for f in files.values()),
        "bad": sum(f["outcome"] == "bad" for f in files.values()),
        "max_wall_s": max(f["wall_s"] for f in files.values()),
        "max_peak_rss_mb": max(f["peak_rss_mb"] for f in files.values()),
        "batch_good_indexed": indexed,
        "batch_good": len(good),
        "batch_exit_code": finished.returncode,
        "batch_wall_s": round(finished.wall_s, 1),
        "batch_corrupt": state.corrupt,
        "seconds": round(time.monotonic() - started, 1),
    }
