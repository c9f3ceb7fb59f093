"""Synthetic documents with random unit vectors, for tests, the crash harness and the benchmark."""

from __future__ import annotations

import hashlib

import numpy as np

from localrag.records import NewChunk, NewDocument, Span

WORDS = [
    "vault",
    "key",
    "cipher",
    "page",
    "ledger",
    "meeting",
    "budget",
    "policy",
    "river",
    "signal",
    "model",
    "adapter",
    "citation",
    "harbor",
    "quarterly",
    "contract",
    "patient",
    "audit",
    "window",
    "lantern",
    "orbit",
    "copper",
    "meadow",
]


def unit_vectors(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def embedding_like_vectors(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    """Unit vectors shaped like sentence embeddings: a shared direction, many topics, noise."""
    shared = rng.standard_normal(dim).astype(np.float32) * 0.8
    topics = rng.standard_normal((max(n // 100, 10), dim)).astype(np.float32)
    labels = rng.integers(0, len(topics), n)
    vectors = shared + topics[labels] + rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def sample_document(
    rng: np.random.Generator, name: str, n_chunks: int = 4, dim: int = 384, marker: str = ""
) -> tuple[NewDocument, list[NewChunk], np.ndarray]:
    """A document `name` with `n_chunks` chunks of random words (the marker in each, if given)."""
    chunks = []
    for i in range(n_chunks):
        words = " ".join(rng.choice(WORDS, size=40))
        text = f"{words} {marker} {name} part {i}".strip()
        chunks.append(NewChunk(text, Span(line_start=i * 10 + 1, line_end=i * 10 + 10), 50))
    digest = hashlib.sha256("".join(c.text for c in chunks).encode()).hexdigest()
    doc = NewDocument(f"/docs/{name}.txt", digest, "txt", 1000 * n_chunks, name)
    return doc, chunks, unit_vectors(rng, n_chunks, dim)
