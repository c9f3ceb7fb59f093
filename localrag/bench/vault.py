"""`localrag bench vault`: the encrypted vault against a plain SQLite file, same code, one run.

Both sides are a `Store` (same schema, pragmas, sqlite-vec and FTS5); only the key differs: the
encrypted side is opened with a random data key (AEGIS-256 pages), the plain side with
none. Each side inserts N chunks with vectors and FTS rows (documents of 50 chunks, one
transaction each), then runs the same KNN (sqlite-vec over int8 codes, rescored with the
floats: the search path itself) and keyword queries; both are open at once and every
insert and query runs on one side then the other, so the ratio is side by side. Warm: the
queries on the open connection. Cold: each side's connection closed and opened again (its page
cache empty, the OS file cache warm), then one KNN and one keyword query, as the first search
of a fresh process does. It also measures the unlock (Argon2id + key check + open) and the
KNN's recall@10 against exact float search.

Data: `--real N` takes the texts and vectors of the bench vault `bench retrieval --chunks N`
built (real SciFact text embedded by the default embedder) and real SciFact queries embedded
here; else synthetic unit vectors shaped like sentence embeddings (a shared direction plus one
of many topics plus noise) and generated text, or `--vectors FILE.npy` (and `--query-vectors`).
Goals: encryption costs at most 10 %; unlock at most 1 s; KNN p95 at most 50 ms with recall@10
at least 0.95 at 100,000 chunks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from localrag.cli import common
from localrag.errors import UsageError
from localrag.records import NewChunk, NewDocument, Span
from localrag.store.sample import embedding_like_vectors

CHUNKS_PER_DOC = 50
COST_GOAL = 1.10
UNLOCK_GOAL_S = 1.0
KNN_P95_GOAL_MS = 50.0
RECALL_GOAL = 0.95


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vault", help="encrypted vault vs plain SQLite: insert, KNN, keyword, unlock"
    )
    p.add_argument("--n", type=int, default=20000, help="chunks to insert (default 20000)")
    p.add_argument("--queries", type=int, default=200, help="queries of each kind (default 200)")
    p.add_argument("--dim", type=int, default=384, help="vector dimensions (default 384)")
    p.add_argument("--vectors", type=Path, help="real chunk vectors (.npy, float32, n x dim)")
    p.add_argument("--query-vectors", type=Path, help="real query vectors for --vectors (.npy)")
    p.add_argument("--real", type=int, metavar="N", help="data of `bench retrieval --chunks N`")
    p.add_argument("--beir", type=Path, help="SciFact folder for --real's queries")
    p.add_argument("--cold", type=int, default=5, help="reopen-then-search rounds (default 5)")
    p.add_argument("--seed", type=int, default=0)
    common.add_json(p)
    p.set_defaults(func=run)


def synthetic_texts(rng: np.random.Generator, n: int, words: int = 80) -> list[str]:
    """Texts over a 20,000-word vocabulary with Zipf-like frequencies."""
    vocabulary = np.array([f"w{i:x}" for i in range(20000)])
    ranks = np.minimum(rng.zipf(1.2, size=(n, words)) - 1, len(vocabulary) - 1)
    return [" ".join(row) for row in vocabulary[ranks]]


def _batches(texts: list[str], vectors: np.ndarray) -> list[tuple[NewDocument, list, np.ndarray]]:
    docs = []
    for start in range(0, len(texts), CHUNKS_PER_DOC):
        part = texts[start : start + CHUNKS_PER_DOC]
        chunks = [
            NewChunk(t, Span(line_start=i + 1, line_end=i + 1), 80) for i, t in enumerate(part)
        ]
        doc = NewDocument(f"/bench/doc{start}.txt", f"{start:064x}", "txt", 1000 * len(part))
        docs.append((doc, chunks, vectors[start : start + len(part)]))
    return docs


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
    }


class Side:
    """One store of the pair, with the time each of its operations took."""

    def __init__(self, folder: Path, encrypted: bool) -> None:
        from localrag.store import Store
        from localrag.store.keys import new_data_key

        self.encrypted = encrypted
        self.path = folder / ("encrypted.db" if encrypted else "plain.db")
        self.key = new_data_key() if encrypted else None
        self.store = Store.open(self.path, self.key, create=True)
        self.insert_s = 0.0
        self.knn_times: list[float] = []
        self.keyword_times: list[float] = []
        self.cold_times: list[float] = []
        self.results: list = []

    def cold(self, query: np.ndarray, words: list[str], k: int) -> None:
        """Close and reopen (an empty page cache), then one KNN and one keyword query."""
        from localrag.store import Store

        self.store.close()
        started = time.perf_counter()
        self.store = Store.open(self.path, self.key)
        self.store.knn(query, k)
        self.store.keyword(words, k)
        self.cold_times.append(time.perf_counter() - started)

    def insert(self, doc: NewDocument, chunks: list[NewChunk], vectors: np.ndarray) -> None:
        started = time.perf_counter()
        self.store.add_document(doc, chunks, vectors)
        self.insert_s += time.perf_counter() - started

    def knn(self, query: np.ndarray, k: int) -> None:
        started = time.perf_counter()
        self.results.append(self.store.knn(query, k))
        self.knn_times.append(time.perf_counter() - started)

    def keyword(self, words: list[str], k: int) -> None:
        started = time.perf_counter()
        self.store.keyword(words, k)
        self.keyword_times.append(time.perf_counter() - started)

    def close(self, chunks: int) -> dict[str, Any]:
        self.store.close()
        with open(self.path, "rb") as f:
            plaintext = f.read(16) == b"SQLite format 3\0"
        if plaintext == self.encrypted:
            raise AssertionError(f"the {'encrypted' if self.encrypted else 'plain'} side is not")
        return {
            "insert_s": round(self.insert_s, 3),
            "insert_chunks_per_s": round(chunks / self.insert_s),
            "knn": _percentiles_ms(self.knn_times),
            "cold_open_knn_keyword": _percentiles_ms(self.cold_times),
            "keyword": _percentiles_ms(self.keyword_times),
            "file_mb": round(self.path.stat().st_size / 1e6, 1),
        }


def run_pair(
    folder: Path,
    docs: list,
    queries: np.ndarray,
    keywords: list[list[str]],
    k: int = 10,
    cold: int = 5,
) -> tuple[dict[str, dict[str, Any]], list]:
    """Both sides at once, each operation on one then the other, the first side alternating.

    On a shared 2-core machine the speed drifts by 20 % within a minute; interleaving puts both
    sides through the same drift, where whole runs one after the other measured it instead.
    """
    pair = [Side(folder, encrypted=False), Side(folder, encrypted=True)]
    try:
        for i, (doc, chunks, vectors) in enumerate(docs):
            for side in pair[:: 1 - 2 * (i % 2)]:
                side.insert(doc, chunks, vectors)
        for i, query in enumerate(queries):
            for side in pair[:: 1 - 2 * (i % 2)]:
                side.knn(query, k)
        for i, words in enumerate(keywords):
            for side in pair[:: 1 - 2 * (i % 2)]:
                side.keyword(words, k)
        for i in range(cold):
            for side in pair[:: 1 - 2 * (i % 2)]:
                side.cold(queries[i % len(queries)], keywords[i % len(keywords)], k)
    except BaseException:
        for side in pair:
            side.store.close()
        raise
    n = sum(len(c) for _, c, _ in docs)
    results = pair[1].results
    return {"plain": pair[0].close(n), "encrypted": pair[1].close(n)}, results


def unlock_seconds(runs: int = 3) -> float:
    """Median time to unlock a vault made with the default Argon2id parameters."""
    from localrag.settings import Settings
    from localrag.store import create_vault, open_vault

    with tempfile.TemporaryDirectory(prefix="localrag-bench-") as folder:
        settings = Settings(Path(folder), Path(folder))
        create_vault(settings, bytearray(b"bench passphrase")).close()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            open_vault(settings, bytearray(b"bench passphrase")).close()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def recall_at_k(
    corpus: np.ndarray, queries: np.ndarray, results: list, ids: np.ndarray, k: int
) -> float:
    """Share of the exact top-k (float dot product) that the store's KNN returned."""
    exact = np.argsort(-(queries @ corpus.T), axis=1)[:, :k]
    found = [{int(i) for i, _ in r} for r in results]
    return float(
        np.mean([len({int(ids[j]) for j in e} & f) / k for e, f in zip(exact, found, strict=True)])
    )


def real_data(args: argparse.Namespace) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Texts, vectors, query texts and query vectors of the bench vault of `--real N`."""
    from localrag import embed
    from localrag.bench import retrieval
    from localrag.settings import Settings
    from localrag.store import open_vault

    settings = common.settings(args)
    home = retrieval.bench_home(settings, args.real)
    if not (home / "vault.db").exists():
        raise UsageError(
            f"{home}: no bench vault; run `localrag bench retrieval --chunks {args.real}`"
        )
    with open_vault(Settings(home, settings.models_dir), retrieval._passphrase()) as store:
        rows: list[Any] = store.conn.execute(
            "SELECT c.text, v.vector FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id"
            " ORDER BY c.id"
        ).fetchall()
    texts = [str(r[0]) for r in rows]
    corpus = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    questions = retrieval.queries(args.beir or retrieval.DEFAULT_BEIR, args.queries)
    embedder = embed.from_settings(settings)
    query_vectors = np.stack([embedder.embed_query(q) for q in questions])
    return texts, corpus.copy(), questions, query_vectors


def run(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    real_texts: list[str] | None = None
    if args.real:
        real_texts, corpus, questions, queries = real_data(args)
        n, dim = corpus.shape
    elif args.vectors:
        corpus = np.load(args.vectors).astype(np.float32)
        corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
        n, dim = corpus.shape
    else:
        n, dim = args.n, args.dim
        corpus = embedding_like_vectors(rng, n, dim)
    if n < 1 or args.queries < 1:
        raise UsageError("--n and --queries must be at least 1")
    if real_texts is not None:
        from localrag.retrieve import terms

        texts = real_texts
        keywords = [terms(q) for q in questions]
    else:
        if args.query_vectors:
            queries = np.load(args.query_vectors).astype(np.float32)[: args.queries]
        else:
            noise = rng.standard_normal((args.queries, dim)).astype(np.float32)
            queries = corpus[rng.integers(0, n, args.queries)] + noise * 0.05
        texts = synthetic_texts(rng, n)
        keywords = [
            list(rng.choice(t.split(), 2, replace=False)) for t in rng.choice(texts, args.queries)
        ]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    docs = _batches(texts, corpus)

    with tempfile.TemporaryDirectory(prefix="localrag-bench-") as folder:
        sides, results = run_pair(Path(folder), docs, queries, keywords, cold=args.cold)
    # Chunk ids are 1..n in insert order on a fresh vault.
    recall = recall_at_k(corpus, queries, results, np.arange(1, n + 1), 10)
    plain, enc = sides["plain"], sides["encrypted"]
    ratios = {
        "insert": round(enc["insert_s"] / plain["insert_s"], 3),
        "knn_p50": round(enc["knn"]["p50_ms"] / plain["knn"]["p50_ms"], 3),
        "cold_p50": round(
            enc["cold_open_knn_keyword"]["p50_ms"] / plain["cold_open_knn_keyword"]["p50_ms"], 3
        ),
        "keyword_p50": round(enc["keyword"]["p50_ms"] / max(plain["keyword"]["p50_ms"], 1e-6), 3),
    }
    unlock_s = unlock_seconds()
    result = {
        "chunks": n,
        "dim": dim,
        "vectors": (
            f"real: bench retrieval --chunks {args.real}"
            if args.real
            else str(args.vectors)
            if args.vectors
            else "synthetic"
        ),
        "queries": len(queries),
        "plain": plain,
        "encrypted": enc,
        "encrypted_over_plain": ratios,
        "knn_recall_at_10": round(recall, 4),
        "unlock_s": round(unlock_s, 3),
        "goals": {
            "encryption_cost_ok": all(r <= COST_GOAL for r in ratios.values()),
            "unlock_ok": unlock_s <= UNLOCK_GOAL_S,
            "knn_p95_ok": enc["knn"]["p95_ms"] <= KNN_P95_GOAL_MS,
            "recall_ok": recall >= RECALL_GOAL,
        },
    }
    if args.json:
        common.print_json(result)
        return 0
    source = result["vectors"]
    print(f"vault bench: {n} chunks x {dim} dims ({source} vectors), {len(queries)} queries")
    header = (
        f"{'insert chunks/s':>16}{'knn p50/p95 ms':>18}{'keyword p50/p95 ms':>21}{'file MB':>9}"
    )
    print(f"{'':<12}{header}")
    for name, side in sides.items():
        knn, kw = side["knn"], side["keyword"]
        print(
            f"{name:<12}{side['insert_chunks_per_s']:>16}"
            f"{knn['p50_ms']:>10.2f} /{knn['p95_ms']:>6.2f}"
            f"{kw['p50_ms']:>13.2f} /{kw['p95_ms']:>6.2f}{side['file_mb']:>9}"
        )
    print(
        f"encrypted / plain: insert {ratios['insert']:.2f}x, knn {ratios['knn_p50']:.2f}x, "
        f"keyword {ratios['keyword_p50']:.2f}x (goal <= {COST_GOAL:.2f}x)"
    )
    pc, ec = plain["cold_open_knn_keyword"], enc["cold_open_knn_keyword"]
    print(
        f"cold (open, then one KNN and one keyword query): plain p50 {pc['p50_ms']:.0f} ms, "
        f"encrypted p50 {ec['p50_ms']:.0f} ms ({ratios['cold_p50']:.2f}x)"
    )
    print(f"knn recall@10 vs exact float search: {recall:.3f} (goal >= {RECALL_GOAL})")
    goal_ms = UNLOCK_GOAL_S * 1000
    print(f"unlock (Argon2id + open): {unlock_s * 1000:.0f} ms (goal <= {goal_ms:.0f} ms)")
    return 0
