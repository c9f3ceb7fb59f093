"""A failed write at each of the first N writes of an ingest (a disk that fills up partway):
each must end in one clear line, leave the vault sound with every document whole or absent,
and a retry on a healthy disk must add the whole batch."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localrag.bench import corpus
from localrag.errors import LocalragError


@dataclass
class FaultReport:
    writes_in_clean_ingest: int = 0
    injected: int = 0
    clear_errors: int = 0
    unclear_errors: int = 0
    """Errors of more than one line, or not a localrag error (a traceback)."""
    no_error: int = 0
    """Ingests that finished although a write failed (SQLite may retry or not need the page)."""
    corrupt_vaults: int = 0
    partial_documents: int = 0
    retries_completed: int = 0
    example_error: str = ""
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def _ingest(
    home: Path, key: bytes, docs: list[Path], embedder: Any, vfs: Any, fail_from: int | None
) -> str:
    """Add `docs` to the vault of `home`; the error's message, or "" if it went through."""
    from localrag.ingest.pipeline import add_paths
    from localrag.store.faults import Faults

    if vfs is not None:
        vfs.faults = Faults(fail_from_write=fail_from)
    try:
        store = corpus.open_store(home, key, vfs.name if vfs else None)
    except LocalragError as exc:
        return exc.message
    try:
        events = list(add_paths(store, embedder, docs))
    except LocalragError as exc:
        return exc.message
    finally:
        # Closing checkpoints: on a full disk that fails too, and the WAL stays for the next open.
        with contextlib.suppress(LocalragError):
            store.close()
    failed = [e.detail for e in events if e.status == "failed"]
    return failed[0] if failed else ""


def run(
    work: Path, embedder: Any, writes: int, update: Callable[[int], None] = print
) -> dict[str, Any]:
    from localrag.store.faults import FaultyVFS

    started = time.monotonic()
    report = FaultReport()
    docs = [p for p in corpus.make_batch(work / "docs") if p.suffix != ".wav"]
    template = corpus.make_home(work / "template")
    home = work / "home"
    key = corpus.data_key(template)
    vfs = FaultyVFS("localrag-bench-faults")
    try:
        corpus.copy_home(template, home)
        if error := _ingest(home, key, docs, embedder, vfs, None):
            raise RuntimeError(f"a clean ingest of the bench batch failed: {error}")
        report.writes_in_clean_ingest = vfs.faults.writes
        reference = corpus.inspect(home, key=key).documents
        for n in range(min(writes, report.writes_in_clean_ingest)):
            corpus.copy_home(template, home)
            report.injected += 1
            try:
                error = _ingest(home, key, docs, embedder, vfs, n)
            except Exception as exc:  # a bug: what the user would see is a traceback
                report.unclear_errors += 1
                report.failures.append(f"write {n}: {type(exc).__name__}: {exc}"[:300])
                error = ""
            if error and "\n" not in error:
                report.clear_errors += 1
                report.example_error = report.example_error or error
            elif error:
                report.unclear_errors += 1
                report.failures.append(f"write {n}: {error[:300]}")
            else:
                report.no_error += 1
            state = corpus.inspect(home, reference, key)
            report.corrupt_vaults += state.corrupt
            report.partial_documents += len(state.partial)
            if state.corrupt or state.partial:
                report.failures.append(f"write {n}: {state.problems or state.partial}")
            retry = _ingest(home, key, docs, embedder, None, None)
            if not retry and corpus.inspect(home, reference, key).documents == reference:
                report.retries_completed += 1
            update(report.injected)
    finally:
        vfs.unregister()
    report.seconds = round(time.monotonic() - started, 1)
    return asdict(report)
