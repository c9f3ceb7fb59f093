"""Switching the vault's embedder: every chunk re-embedded, resumable, swapped in at once.

`reembed(store, embedder)` is a generator of `ReembedProgress`: the caller owns the progress bar
and cancellation (stop iterating, Ctrl-C or a kill all leave every finished batch stored).
Chunks are read by id in batches of `BATCH_CHUNKS`; each batch is embedded (a text repeated
under the same heading once) and stored in the vault's staging area in its own transaction
(`store/embeddings.py`). Running it again resumes with the chunks that have no new vector yet,
including those added meanwhile. When none is left, one transaction swaps the new vectors in
and records the new embedder; until then search and add use the old embedder and its vectors.
Running it with the embedder the vectors already come from cancels a switch under way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from localrag.chunk import text_under_heading
from localrag.embed import Embedder, identity
from localrag.records import EmbedderInfo, EmbedderSwitch, ReembedProgress
from localrag.store.store import text_sha256

log = logging.getLogger(__name__)

BATCH_CHUNKS = 128
"""Chunks per transaction: a kill loses at most this many (about 2 s of work here with the
default embedder), and each commit's sync costs little next to embedding them."""

Key = tuple[str, str | None]
"""(text hash, heading path): what decides a chunk's vector (see `ingest.pipeline.vector_key`)."""


class SwitchingStore(Protocol):
    """What re-embedding needs of the vault (`Store`)."""

    @property
    def vector_dim(self) -> int | None: ...

    def embedder_switch(self) -> EmbedderSwitch | None: ...

    def start_switch(self, to: EmbedderInfo) -> EmbedderSwitch | None: ...

    def chunks_to_reembed(self, after_id: int, limit: int) -> list[tuple[int, str, str | None]]: ...

    def staged_vectors_by_text_and_heading(self, keys: Iterable[Key]) -> dict[Key, np.ndarray]: ...

    def stage_vectors(self, to: EmbedderInfo, ids: Sequence[int], vectors: np.ndarray) -> int: ...

    def finish_switch(self, to: EmbedderInfo) -> bool: ...


def reembed(
    store: SwitchingStore, embedder: Embedder, batch_chunks: int = BATCH_CHUNKS
) -> Iterator[ReembedProgress]:
    """Re-embed every chunk of the vault with `embedder` and swap the new vectors in (or resume
    doing so); see the module's docstring."""
    to = identity(embedder)
    before = store.embedder_switch()
    switch = store.start_switch(to)
    if switch is None:
        status = "empty" if store.vector_dim is None else "current"
        yield ReembedProgress(status, to, cancelled=before is not None)
        return
    started = time.perf_counter()
    embedded = 0

    def event(status: str, done: int, total: int) -> ReembedProgress:
        elapsed = time.perf_counter() - started
        rate = embedded / elapsed if elapsed > 0 else 0.0
        return ReembedProgress(status, to, done, total, elapsed, rate)

    total = switch.chunks_total
    yield event("started", switch.chunks_done, total)
    while True:
        after = 0
        while batch := store.chunks_to_reembed(after, batch_chunks):
            after = batch[-1][0]
            vectors = _embed(store, embedder, batch)
            store.stage_vectors(to, [chunk_id for chunk_id, _, _ in batch], vectors)
            embedded += len(batch)
            now = store.embedder_switch()
            done, total = (now.chunks_done, now.chunks_total) if now else (0, total)
            yield event("progress", done, total)
        # Chunks added by another process after the last batch keep the swap from happening:
        # they are read on the next turn.
        if store.finish_switch(to):
            break
    log.info("embedder switched to %s: %d chunks re-embedded", to.name, embedded)
    yield event("done", total, total)


def _embed(
    store: SwitchingStore, embedder: Embedder, batch: list[tuple[int, str, str | None]]
) -> np.ndarray:
    """The new vectors of a batch: a (text, heading) already staged, or twice in the batch,
    is embedded once."""
    keys: list[Key] = [(text_sha256(text), heading) for _, text, heading in batch]
    known = store.staged_vectors_by_text_and_heading(keys)
    todo: dict[Key, str] = {}
    for key, (_, text, heading) in zip(keys, batch, strict=True):
        if key not in known:
            todo.setdefault(key, text_under_heading(text, heading))
    if todo:
        made = embedder.embed_documents(list(todo.values()))
        known.update(zip(todo, made, strict=True))
    return np.stack([known[k] for k in keys]).astype(np.float32)
