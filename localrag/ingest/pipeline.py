"""Adding files to the vault: find, hash, read, chunk, embed, store; a stream of `IngestEvent`s.

Incremental: a file whose hash is stored under its path is unchanged; a file whose hash is stored
under a path that no longer exists was moved (only the path is updated); a changed file is
replaced in one transaction; chunks already stored with the same text and heading reuse their
vectors. A file that cannot be read fails alone, with one line naming it and the reason; the batch
goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrag import ingest
from localrag.chunk import ChunkSettings, chunk, embedding_text
from localrag.embed import identity
from localrag.errors import IngestError
from localrag.ingest.base import Extracted, Limits, Progress
from localrag.models import sha256_file
from localrag.records import Document, EmbedderInfo, IngestEvent, NewChunk, NewDocument
from localrag.store.store import text_sha256

log = logging.getLogger(__name__)

EMBED_GROUP = 128
"""Chunks embedded per call between two progress events."""
BATCH_CHUNKS = 64
"""Files are read ahead until this many chunks wait, then embedded together."""


@dataclass(frozen=True)
class IngestOptions:
    """How files are read and cut."""

    limits: Limits = field(default_factory=Limits)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)


def expand(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """Each file under `paths` (folders recursively, hidden entries skipped), with a reason
    to skip it or None."""
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield from _check(Path(root) / name)
        else:
            yield from _check(path)


def _check(path: Path) -> Iterator[tuple[Path, str | None]]:
    if not path.exists():
        yield path, f"{path}: no such file or folder"
    elif not path.is_file():
        yield path, f"{path}: not a regular file"
    elif ingest.format_of(path) is None:
        yield path, f"{path}: unsupported format {path.suffix or '(no extension)'}"
    else:
        yield path, None


VectorKey = tuple[str, str | None]
"""What decides a chunk's vector: the hash of its text and its heading path."""


def vector_key(c: NewChunk) -> VectorKey:
    """`embedding_text` reads the chunk's text and its heading path, so the same text under
    another heading is another vector; the store can match both (`vectors_by_text_and_heading`)."""
    return text_sha256(c.text), c.span.heading


def _embed_new(
    store: Any, embedder: Any, chunks: list[NewChunk], keys: list[VectorKey]
) -> Iterator[tuple[set[VectorKey], dict[VectorKey, np.ndarray]]]:
    """Vectors by `vector_key`: stored ones reused, each distinct new chunk embedded once.

    Yields the keys embedded by each call with all the vectors known so far.
    """
    known = store.vectors_by_text_and_heading(keys) if keys else {}
    text_of = {k: embedding_text(c) for k, c in zip(keys, chunks, strict=True)}
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    yield set(), known
    for start in range(0, len(todo), EMBED_GROUP):
        group = todo[start : start + EMBED_GROUP]
        known.update(zip(group, embedder.embed_documents([text_of[k] for k in group]), strict=True))
        yield set(group), known


def _matrix(known: dict[VectorKey, np.ndarray], keys: list[VectorKey], dim: int) -> np.ndarray:
    if not keys:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def embed_chunks(
    store: Any, embedder: Any, chunks: list[NewChunk]
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Vectors for the chunks of one document: (chunks done, None) as it goes, then
    (total, the vectors)."""
    keys = [vector_key(c) for c in chunks]
    known: dict[VectorKey, np.ndarray] = {}
    for _, known in _embed_new(store, embedder, chunks, keys):
        yield sum(1 for k in keys if k in known), None
    yield len(chunks), _matrix(known, keys, embedder.dim)


@dataclass
class _Pending:
    """A file read and chunked, waiting for its vectors."""

    path: Path
    sha: str
    replaces: bool
    kind: str
    extracted: Extracted
    chunks: list[NewChunk]
    keys: list[VectorKey]


def add_paths(
    store: Any,
    embedder: Any,
    paths: Iterable[Path],
    options: IngestOptions | None = None,
    **parts: Callable[[], Any],
) -> Iterator[IngestEvent]:
    """Add files and folders; yields events per file, each file ending in a final status.

    Small files are read ahead until `BATCH_CHUNKS` chunks wait, then embedded together (the
    embedder batches texts of similar length across files) and stored one transaction each.
    `parts` give the readers that need them a part of the assistant, built only when asked
    (`transcriber=lambda: ...` loads Whisper only if there is audio).
    """
    rewritten = False
    for event in _add(store, embedder, paths, options or IngestOptions(), parts):
        rewritten = rewritten or event.status in ("updated", "moved")
        yield event
    if rewritten:
        # The old pages of replaced documents (or an old path) would linger in the WAL until
        # SQLite checkpoints by itself; delete checkpoints at once, and so does this.
        store.checkpoint()


def _add(
    store: Any,
    embedder: Any,
    paths: Iterable[Path],
    options: IngestOptions,
    parts: dict[str, Callable[[], Any]],
) -> Iterator[IngestEvent]:
    pending: list[_Pending] = []
    for path, problem in expand(paths):
        where = str(path.resolve()) if path.exists() else str(path)
        if problem:
            yield IngestEvent(where, "skipped" if "unsupported" in problem else "failed", problem)
            continue
        try:
            ready = yield from _prepare(store, embedder, path.resolve(), options, parts)
        except IngestError as exc:
            yield IngestEvent(where, "failed", exc.message)
            continue
        except OSError as exc:
            yield IngestEvent(where, "failed", f"{where}: cannot read ({exc.strerror or exc})")
            continue
        if ready is not None:
            pending.append(ready)
        if sum(len(p.chunks) for p in pending) >= BATCH_CHUNKS:
            yield from _store(store, embedder, pending)
            pending = []
    yield from _store(store, embedder, pending)


def _prepare(
    store: Any,
    embedder: Any,
    path: Path,
    options: IngestOptions,
    parts: dict[str, Callable[[], Any]],
) -> Generator[IngestEvent, None, _Pending | None]:
    """Hash, then skip, move, or read and chunk a file; the chunks to embed, if any."""
    where = str(path)
    sha = sha256_file(path)
    existing = store.document(where)
    if existing is not None and existing.sha256 == sha:
        yield IngestEvent(where, "unchanged", doc_id=existing.id)
        return None
    moved = _moved_from(store, sha) if existing is None else None
    if moved is not None:
        store.move_document(moved.id, where)
        yield IngestEvent(where, "moved", moved.path, doc_id=moved.id)
        return None
    yield IngestEvent(where, "started")
    # A recording resumes by its content's hash (`recording.py`).
    parts = {**parts, "sha256": lambda: sha}
    fmt = ingest.format_of(path)  # once: a file without an extension is known by its bytes
    if fmt is None:
        raise IngestError(f"{where}: no longer text (changed since it was listed)")
    extracted = yield from _read(path, options.limits, fmt, parts)
    chunks = chunk(extracted, embedder, options.chunking)
    if not chunks and not extracted.meta.get("notice"):
        raise IngestError(f"{where}: no text to index")
    keys = [vector_key(c) for c in chunks]
    return _Pending(path, sha, existing is not None, fmt.kind, extracted, chunks, keys)


def _moved_from(store: Any, sha: str) -> Document | None:
    """A stored document with this content whose file is gone: the one this file was moved from
    (identical files share a hash, so any of them may be the one that moved)."""
    return next((d for d in store.documents_by_hash(sha) if not Path(d.path).exists()), None)


def _store(store: Any, embedder: Any, pending: list[_Pending]) -> Iterator[IngestEvent]:
    """Embed the chunks of the waiting files together, then store each file in its transaction."""
    if not pending:
        return
    chunks = [c for p in pending for c in p.chunks]
    keys = [k for p in pending for k in p.keys]
    known: dict[VectorKey, np.ndarray] = {}
    for group, known in _embed_new(store, embedder, chunks, keys):
        for p in pending:
            if group & set(p.keys):
                done = sum(1 for k in p.keys if k in known)
                yield IngestEvent(
                    str(p.path), "progress", chunks_done=done, chunks_total=len(p.chunks)
                )
    made_by = identity(embedder)
    for p in pending:
        yield _save(store, p, _matrix(known, p.keys, embedder.dim), made_by)


def _save(store: Any, p: _Pending, vectors: np.ndarray, made_by: EmbedderInfo) -> IngestEvent:
    meta = p.extracted.meta
    doc = NewDocument(
        path=str(p.path),
        sha256=p.sha,
        kind=p.kind,
        size_bytes=p.path.stat().st_size,
        title=p.extracted.title or p.path.name,
        meta={k: v for k, v in meta.items() if k != "segments"},
    )
    doc_id = store.add_document(doc, p.chunks, vectors, meta.get("segments"), embedder=made_by)
    n = len(p.chunks)
    status = "updated" if p.replaces else "added"
    return IngestEvent(
        str(p.path), status, meta.get("notice", ""), doc_id=doc_id, chunks_done=n, chunks_total=n
    )


def _read(
    path: Path, limits: Limits, fmt: ingest.Format, parts: dict[str, Callable[[], Any]]
) -> Generator[IngestEvent, None, Extracted]:
    """Run the reader, turning its progress into events; returns the `Extracted`."""
    try:
        for item in ingest.read(path, limits, fmt=fmt, **parts):
            if isinstance(item, Progress):
                yield IngestEvent(
                    str(path), "progress", fraction=item.fraction, rtf=item.rtf, eta_s=item.eta_s
                )
            elif isinstance(item, Extracted):
                return item
    except IngestError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, UnicodeError, RecursionError) as exc:
        # A malformed file can trip a parser anywhere; the file fails, the batch goes on.
        log.debug("reader failed on %s", path, exc_info=True)
        raise IngestError(f"{path}: cannot parse it ({type(exc).__name__}: {exc})") from exc
    raise IngestError(f"{path}: the reader returned no text")
