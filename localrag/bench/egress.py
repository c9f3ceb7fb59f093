"""The whole flow under a network guard, and a plaintext hunt after every step.

Every Python process of each command (and its children: the PDF parser, the model worker)
loads `probe/sitecustomize.py`, which refuses and records every `connect`, `sendto`, name
lookup; where strace works, every process (Tesseract and native libraries too) is also traced
and its network attempts counted. The batch has a scanned page, so OCR runs. After each step,
every file under the home folder's parent (the vault and its neighbours), `TMPDIR` and
`~/.cache` is searched for the documents' marker in UTF-8 and UTF-16.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localrag.bench import cli_child, corpus, tracing
from localrag.bench.docmaker import make_scanned_pdf, render_page

PROBE = Path(__file__).parent / "probe"
STEP_TIMEOUT_S = 300.0
NEEDLES = [corpus.MARKER.encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be")]


def steps(docs: Path) -> list[list[str]]:
    memo = str(docs / "memo.wav")
    return [
        ["init"],
        ["add", str(docs), "--json"],
        ["search", "how often is the valve checked"],
        ["ask", "How often is valve 3 checked?"],
        ["transcribe", memo],
        ["docs"],
        ["rekey"],
        ["rm", str(docs / "notes.txt")],
        ["doctor"],
    ]


def holding_marker(roots: list[Path]) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in NEEDLES):
                    found.append(str(path))
    return found


def _added(finished: cli_child.Finished) -> dict[str, Any]:
    """What `add --json` indexed (the scanned page among them: OCR ran)."""
    try:
        report = json.loads(finished.stdout)
    except json.JSONDecodeError:
        return {"documents_added": None}
    return {"documents_added": sorted(Path(d["path"]).name for d in report["added"])}


def run(work: Path, models_dir: Path, update: Callable[[int], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    docs = work / "docs"
    corpus.make_batch(docs)
    scanned = [f"Scanned: the code word is {corpus.MARKER}.", "Valve 9 is checked weekly."]
    make_scanned_pdf(docs / "scan.pdf", [render_page(scanned)])
    state = work / "state"
    home, user, tmp = state / "home", state / "user", state / "tmp"
    records = work / "probe"
    for folder in (user, tmp, records):
        folder.mkdir(parents=True)
    env = cli_child.child_env(
        home,
        corpus.PASSPHRASE,
        models_dir,
        {
            "HOME": str(user),
            "TMPDIR": str(tmp),
            "XDG_CACHE_HOME": str(user / ".cache"),
            "LOCALRAG_PROBE_DIR": str(records),
            "HF_HUB_OFFLINE": "0",  # a user's setting that must not turn the network on
        },
    )
    env["PYTHONPATH"] = f"{PROBE}:{env['PYTHONPATH']}"
    for key in [k for k in env if k.startswith(("ORT_", "TRANSFORMERS_"))]:
        del env[key]  # localrag must set what it needs itself
    traced = tracing.strace_works()
    trace = work / "strace.txt"  # outside the scanned state
    done: list[dict[str, Any]] = []
    for i, argv in enumerate(steps(docs)):
        wrapper = tracing.strace_prefix(trace) if traced else []
        finished = cli_child.run(argv, env, timeout_s=STEP_TIMEOUT_S, wrapper=wrapper)
        native = tracing.network_attempts(trace)
        trace.unlink(missing_ok=True)
        attempts, processes = [], 0
        for path in records.glob("*.json"):
            processes += 1
            try:
                attempts += json.loads(path.read_text())["attempts"]
            except json.JSONDecodeError:
                attempts.append(f"{path.name}: its record was being written after the step")
            path.unlink()
        done.append(
            {
                "step": " ".join(argv[:1]),
                "exit_code": finished.returncode,
                "processes": processes,
                "network_attempts": len(attempts) + len(native),
                "attempts": attempts,
                "native_attempts": native[:20],
                "files_with_marker": holding_marker([state]),
                "wall_s": round(finished.wall_s, 1),
                "error": cli_child.one_line_error(finished) if finished.returncode else None,
                **(_added(finished) if argv[0] == "add" else {}),
            }
        )
        update(i + 1)
    return {
        "steps": done,
        "failed_steps": sum(s["exit_code"] != 0 for s in done),
        "network_attempts": sum(s["network_attempts"] for s in done),
        "plaintext_markers": sum(len(s["files_with_marker"]) for s in done),
        "python_processes": sum(s["processes"] for s in done),
        "traced_with_strace": traced,
        "scanned": ["home folder's parent", "TMPDIR", "~/.cache"],
        "seconds": round(time.monotonic() - started, 1),
    }
