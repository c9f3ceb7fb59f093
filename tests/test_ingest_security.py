"""Security item 16 through the real pipeline: ingesting writes no text, transcript or vector
anywhere but the encrypted vault (no caches, no temporary files, no logs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from audio_synth import encode
from docmaker import make_docx, make_pdf

from localrag.embed import HashingEmbedder
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.store.store import text_sha256
from localrag.transcribe import SAMPLE_RATE

MARKER = "QX7INGESTMARKERZEBRA"
PASS = b"correct horse battery"

# In a child process: SQLite reads TMPDIR once, at start. An audit hook records every file
# Python opens for writing (a temporary file unlinked at once would escape a folder scan).
CHILD = f"""
import json, os, sys
from pathlib import Path

written = []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(os.path.realpath(os.fsdecode(args[0])))

sys.addaudithook(hook)
from localrag.embed import HashingEmbedder
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.transcribe import FakeTranscriber

parts = dict(embedder=HashingEmbedder(), transcriber=FakeTranscriber("Say {MARKER} twice."))
with Assistant.create(Settings.load(), bytearray({PASS!r}), answer_model=False, **parts) as a:
    status = {{Path(e.path).name: e.status for e in a.add([Path(sys.argv[1])]) if e.final}}
    hits = len(a.search("{MARKER}", mode="keyword"))
print(json.dumps({{"status": status, "hits": hits, "written": written}}))
"""


def _documents(folder: Path) -> Path:
    folder.mkdir()
    (folder / "note.txt").write_text(f"The code word is {MARKER}.\n", encoding="utf-8")
    make_pdf(folder / "report.pdf", [["Cover"], [f"The report's code word is {MARKER}."]])
    make_docx(folder / "policy.docx", [("Heading1", "Codes"), (None, f"It is {MARKER}.")])
    tone = 0.3 * np.sin(np.arange(3 * SAMPLE_RATE) * 2 * np.pi * 440 / SAMPLE_RATE)
    (folder / "memo.m4a").write_bytes(encode(tone.astype(np.float32), ".m4a"))
    return folder


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _holding(files: dict[Path, bytes], needles: list[bytes]) -> list[str]:
    return [p.name for p, data in files.items() if any(n in data for n in needles)]


def test_ingesting_writes_nothing_readable_outside_the_vault(
    settings: Settings, tmp_path: Path
) -> None:
    docs = _documents(tmp_path / "docs")
    originals = _files(docs)
    tmpdir, user_home = tmp_path / "tmp", tmp_path / "user"
    tmpdir.mkdir()
    user_home.mkdir()
    env = os.environ | {"TMPDIR": str(tmpdir), "SQLITE_TMPDIR": str(tmpdir), "HOME": str(user_home)}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(docs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert set(report["status"].values()) == {"added"} and len(report["status"]) == 4
    assert report["hits"] == 4  # the marker really was indexed from every file

    home = settings.home.resolve()
    # (The PDF parser is spawned, and spawning opens /dev/null: no file is written there.)
    outside = [p for p in report["written"] if Path(p).parent != home and p != os.devnull]
    assert outside == []
    assert _files(tmpdir) == {} and _files(user_home) == {}
    assert _files(docs) == originals  # no cache or sidecar beside the sources
    vault = _files(settings.home)
    assert {p.name for p in vault} == {settings.vault_path.name, settings.key_path.name}

    with Assistant.open(settings, bytearray(PASS), embedder=HashingEmbedder()) as a:
        chunks = [c for d in a.documents() for c in a.store.document_chunks(d.id)]
        keys = {(text_sha256(c.text), c.span.heading) for c in chunks}
        vectors = a.store.vectors_by_text_and_heading(keys)
    assert len(vectors) == len(keys) >= 3
    marker = [MARKER.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be")]
    assert _holding(vault, marker + [v.tobytes() for v in vectors.values()]) == []
