"""Adding files to the vault: find, hash, read, chunk, embed, store; a stream of `IngestEvent`s.

Incremental: a file whose hash is stored under its path is unchanged; a file whose hash is stored
under a path that no longer exists was moved (only the path is updated); a changed file is
replaced in one transaction; chunks whose text is already stored reuse their vectors. A file that
cannot be read fails alone, with one line naming it and the reason; the batch goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrag import ingest
from localrag.chunk import ChunkSettings, chunk, embedding_text
from localrag.errors import IngestError
from localrag.ingest.base import Extracted, Limits, Progress
from localrag.records import IngestEvent, NewChunk, NewDocument
from localrag.store.store import text_sha256

log = logging.getLogger(__name__)

EMBED_GROUP = 64
"""Chunks embedded per call between two progress events."""


@dataclass(frozen=True)
class IngestOptions:
    """How files are read and cut."""

    limits: Limits = field(default_factory=Limits)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


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


def embed_chunks(
    store: Any, embedder: Any, chunks: list[NewChunk]
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Vectors for `chunks`: stored ones reused, each distinct new text embedded once.

    The embedder reads each chunk behind its heading path (`embedding_text`); a stored vector
    is reused for the same chunk text (the store keys vectors by text alone).

    Yields (chunks done, None) as it goes, then (total, the vectors).
    """
    hashes = [text_sha256(c.text) for c in chunks]
    known = store.vectors_by_text_hash(hashes) if chunks else {}
    todo = list(dict.fromkeys(h for h in hashes if h not in known))
    text_of = {h: embedding_text(c) for h, c in zip(hashes, chunks, strict=True)}
    done = len(chunks) - sum(1 for h in hashes if h not in known)
    for start in range(0, len(todo), EMBED_GROUP):
        group = todo[start : start + EMBED_GROUP]
        vectors = embedder.embed_documents([text_of[h] for h in group])
        known.update(zip(group, vectors, strict=True))
        fresh = set(group)
        done += sum(1 for h in hashes if h in fresh)
        yield done, None
    matrix = (
        np.stack([known[h] for h in hashes]).astype(np.float32)
        if chunks
        else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    yield len(chunks), matrix


def add_paths(
    store: Any,
    embedder: Any,
    paths: Iterable[Path],
    options: IngestOptions | None = None,
    **parts: Callable[[], Any],
) -> Iterator[IngestEvent]:
    """Add files and folders; yields events per file, each file ending in a final status.

    `parts` give the readers that need them a part of the assistant, built only when asked
    (`transcriber=lambda: ...` loads Whisper only if there is audio).
    """
    options = options or IngestOptions()
    for path, problem in expand(paths):
        where = str(path.resolve()) if path.exists() else str(path)
        if problem:
            yield IngestEvent(where, "skipped" if "unsupported" in problem else "failed", problem)
            continue
        try:
            yield from _add_file(store, embedder, path.resolve(), options, parts)
        except IngestError as exc:
            yield IngestEvent(where, "failed", exc.message)
        except OSError as exc:
            yield IngestEvent(where, "failed", f"{where}: cannot read ({exc.strerror or exc})")


def _add_file(
    store: Any,
    embedder: Any,
    path: Path,
    options: IngestOptions,
    parts: dict[str, Callable[[], Any]],
) -> Iterator[IngestEvent]:
    where = str(path)
    sha = file_sha256(path)
    existing = store.document(where)
    if existing is not None and existing.sha256 == sha:
        yield IngestEvent(where, "unchanged", doc_id=existing.id)
        return
    same = store.find_by_hash(sha)
    if existing is None and same is not None and not Path(same.path).exists():
        store.move_document(same.id, where)
        yield IngestEvent(where, "moved", same.path, doc_id=same.id)
        return
    yield IngestEvent(where, "started")
    extracted = yield from _read(path, options.limits, parts)
    chunks = chunk(extracted, embedder, options.chunking)
    notice = extracted.meta.get("notice", "")
    if not chunks and not notice:
        raise IngestError(f"{where}: no text to index")
    vectors = None
    for done, vectors in embed_chunks(store, embedder, chunks):
        if vectors is None:
            yield IngestEvent(where, "progress", chunks_done=done, chunks_total=len(chunks))
    assert vectors is not None
    fmt = ingest.format_of(path)
    assert fmt is not None
    doc = NewDocument(
        path=where,
        sha256=sha,
        kind=fmt.kind,
        size_bytes=path.stat().st_size,
        title=extracted.title or path.name,
        meta={k: v for k, v in extracted.meta.items() if k != "segments"},
    )
    segments = extracted.meta.get("segments")
    doc_id = store.add_document(doc, chunks, vectors, segments)
    status = "updated" if existing is not None else "added"
    yield IngestEvent(
        where, status, notice, doc_id=doc_id, chunks_done=len(chunks), chunks_total=len(chunks)
    )


def _read(
    path: Path, limits: Limits, parts: dict[str, Callable[[], Any]]
) -> Generator[IngestEvent, None, Extracted]:
    """Run the reader, turning its progress into events; returns the `Extracted`."""
    try:
        for item in ingest.read(path, limits, **parts):
            if isinstance(item, Progress):
                yield IngestEvent(str(path), "progress", fraction=item.fraction)
            elif isinstance(item, Extracted):
                return item
    except IngestError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, UnicodeError, RecursionError) as exc:
        # A malformed file can trip a parser anywhere; the file fails, the batch goes on.
        log.debug("reader failed on %s", path, exc_info=True)
        raise IngestError(f"{path}: cannot parse it ({type(exc).__name__}: {exc})") from exc
    raise IngestError(f"{path}: the reader returned no text")
