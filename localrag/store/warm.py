"""Vector candidates held in memory for a long-lived process (the app, a benchmark's warm loop).

A fresh process searches the vault's `vec0` int8 codes (`vectors.py`) and loads nothing. A
process that searches again and again can afford a compact copy of every vector in memory:
3 bits per component (14 MB at 100,000 chunks of 384 dimensions, where the float vectors take
150 MB), scanned in numpy for the `n` nearest by Hamming distance. Their float vectors are then
read from the vault and rescored exactly, as on the `vec0` path, so both paths rank by the same
cosine similarity and differ only in which candidates reach the rescoring.

Why not `vec0`'s own bit vectors: sqlite-vec 0.1.9 selects its top k in O(rows x k) per query,
and sign bits (`bit[384]`) need about 2 % of a corpus as candidates for a recall@10 of 0.95 on
real sentence embeddings; its int8 scan reads every code through SQLite's blob API (38 MB at
100,000 chunks) and sums them without SIMD. Measured side by side in `bench retrieval`.

The code: each component is centred on the vault's mean and divided by its spread (sentence
embeddings share a large common direction), then compared with the thresholds `LEVELS`: a
thermometer code, so the Hamming distance between two codes is the L1 distance between the
components' levels (0..3). The words are stored transposed (one row per 64-bit word), so the
scan is a few whole-array numpy operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVELS = (-0.8, 0.0, 0.8)
"""Thresholds, in spreads around the mean: four levels per component. On 10,000 real SciFact
chunks, 80 candidates by this code gave a recall@10 of 0.99 after rescoring (sign bits: 0.92)."""
CANDIDATE_FACTOR = 2
"""Candidates per vector wanted, beyond `vectors.EXTRA`: see `candidates`."""
BATCH = 5000
"""Float vectors read from the vault per statement while the codes are built."""


@dataclass(frozen=True)
class WarmVectors:
    """Every vector of one state of the vault as a thermometer code, for candidate search."""

    ids: np.ndarray
    """Chunk ids (int64), in the order of the codes' columns."""
    words: np.ndarray
    """uint64, (words per code, chunks): the codes, transposed."""
    center: np.ndarray
    spread: np.ndarray
    state: tuple[Any, ...]
    """What the vault was when the codes were read (see `Store`): stale once it differs."""

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def nearest(self, query: np.ndarray, n: int) -> np.ndarray:
        """Ids of the `n` chunks whose codes are nearest the query's (unordered)."""
        if len(self) == 0:
            return self.ids
        code = encode(query[None, :], self.center, self.spread)[0]
        distance = np.zeros(len(self), dtype=np.uint16)
        for row, word in zip(self.words, code, strict=True):
            distance += np.bitwise_count(row ^ word)
        if n >= len(self):
            return self.ids
        return self.ids[np.argpartition(distance, n)[:n]]


def encode(vectors: np.ndarray, center: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Thermometer codes of float vectors (rows): uint64 words, one row per vector."""
    z = (np.asarray(vectors, dtype=np.float32) - center) / spread
    bits = np.concatenate([z > level for level in LEVELS], axis=1)
    pad = (-bits.shape[1]) % 64
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.packbits(bits, axis=1).view(np.uint64)


def candidates(k: int) -> int:
    """How many chunks the codes give to the exact rescoring for the best `k`: twice what the
    int8 codes of `vec0` give (their ranking is finer), for the same recall."""
    from localrag.store import vectors

    return CANDIDATE_FACTOR * vectors.candidates(k)


Batches = Callable[[int], list[Any]]
"""`batch(after_id)`: up to `BATCH` rows (chunk_id, float32 vector bytes) past that id, by id."""


def build(batches: Batches, dim: int, state: tuple[Any, ...]) -> WarmVectors:
    """Codes of every vector the vault holds, read a batch at a time (each its own statement,
    so a search in another thread waits for one batch, not for all).

    The vectors are kept as int8 while they are read (a quarter of the floats) because the mean
    and spread that the codes need are known only at the end.
    """
    from localrag.store import vectors

    scale = vectors.default_scale(dim)
    ids: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    sums = np.zeros(dim)
    squares = np.zeros(dim)
    for batch_ids, floats in _read(batches, dim):
        ids.append(batch_ids)
        codes.append(vectors.codes(floats, scale))
        sums += floats.sum(axis=0, dtype=np.float64)
        squares += np.square(floats, dtype=np.float64).sum(axis=0)
    count = sum(len(i) for i in ids)
    if not count:
        empty = np.zeros(dim, dtype=np.float32)
        return WarmVectors(np.zeros(0, np.int64), np.zeros((0, 0), np.uint64), empty, empty, state)
    mean = sums / count
    spread = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    center = mean.astype(np.float32)
    spread = np.where(spread > 0, spread, 1.0).astype(np.float32)
    words = [encode(part.astype(np.float32) / np.float32(scale), center, spread) for part in codes]
    transposed = np.ascontiguousarray(np.concatenate(words).T)
    return WarmVectors(np.concatenate(ids), transposed, center, spread, state)


def _read(batches: Batches, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    last = 0
    while True:
        rows = batches(last)
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        floats = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        yield ids, floats.reshape(len(rows), dim)
        last = int(ids[-1])
