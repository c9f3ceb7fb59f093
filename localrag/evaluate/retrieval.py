"""`localrag eval retrieval --beir DIR`: nDCG@10, recall@10 and MRR@10 on a BEIR data set.

The corpus goes into a throwaway encrypted vault (a random key that is never written down, in a
temporary folder removed afterwards), through the same chunker, embedder and search code as
`localrag add` and `localrag search`. A document's rank is that of its best chunk.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.chunk import ChunkSettings, chunk, embedding_text
from localrag.errors import UsageError
from localrag.ingest.base import Limits, TextBuilder
from localrag.records import NewChunk, NewDocument
from localrag.retrieve import MODES, SearchSettings, retrieve

PREFIX = "beir:"
BATCH_DOCS = 256


@dataclass(frozen=True)
class BeirSet:
    """A BEIR-format data set: documents, queries and relevance judgements of one split."""

    corpus: dict[str, tuple[str, str]]
    """Document id to (title, text)."""
    queries: dict[str, str]
    """Query id to text, only the queries judged in the split."""
    qrels: dict[str, dict[str, int]]
    """Query id to {document id: relevance}."""


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    except FileNotFoundError as exc:
        raise UsageError(
            f"{path}: missing; a BEIR folder has corpus.jsonl and queries.jsonl"
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not JSON lines ({exc})") from exc


def load_beir(folder: Path, split: str = "test", limit: int | None = None) -> BeirSet:
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise UsageError(f"{qrels_path}: missing; choose the split with --split")
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (n == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {
        str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels
    }
    if limit:
        queries = dict(list(queries.items())[:limit])
    corpus = {
        str(d["_id"]): (d.get("title", ""), d.get("text", ""))
        for d in _jsonl(folder / "corpus.jsonl")
    }
    return BeirSet(corpus, queries, {q: qrels[q] for q in queries})


def _chunks(title: str, text: str, embedder: Any, cs: ChunkSettings) -> list[NewChunk]:
    builder = TextBuilder(Path("beir"), Limits())
    if title:
        builder.heading(1, title)
    builder.add(text)
    return chunk(builder.build(title), embedder, cs)


def build(store: Any, embedder: Any, data: BeirSet, cs: ChunkSettings) -> Iterator[int]:
    """Index the corpus; yields the number of documents done after each batch."""
    ids = list(data.corpus)
    for start in range(0, len(ids), BATCH_DOCS):
        batch = ids[start : start + BATCH_DOCS]
        per_doc = [_chunks(*data.corpus[d], embedder, cs) for d in batch]
        flat = [embedding_text(c) for chunks in per_doc for c in chunks]
        vectors = embedder.embed_documents(flat) if flat else np.zeros((0, embedder.dim))
        at = 0
        for doc_id, chunks in zip(batch, per_doc, strict=True):
            title = data.corpus[doc_id][0]
            doc = NewDocument(f"{PREFIX}{doc_id}", doc_id, "txt", 0, title)
            store.add_document(doc, chunks, vectors[at : at + len(chunks)])
            at += len(chunks)
        yield start + len(batch)


def ndcg(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def score(
    store: Any,
    embedder: Any,
    data: BeirSet,
    mode: str = "hybrid",
    settings: SearchSettings | None = None,
    k: int = 10,
) -> dict[str, Any]:
    """Run every query; the mean metrics at `k` and the query latency."""
    totals = {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
    latencies = []
    for qid, text in data.queries.items():
        t0 = time.perf_counter()
        result = retrieve(store, embedder, text, k=k * 3, mode=mode, settings=settings)
        latencies.append((time.perf_counter() - t0) * 1000)
        ranked = list(dict.fromkeys(h.chunk.path.removeprefix(PREFIX) for h in result.hits))[:k]
        relevant = {d: r for d, r in data.qrels[qid].items() if r > 0}
        totals["ndcg@10"] += ndcg(ranked, relevant, k)
        found = [d for d in ranked if d in relevant]
        totals["recall@10"] += len(found) / len(relevant) if relevant else 0.0
        first = next((i for i, d in enumerate(ranked) if d in relevant), None)
        totals["mrr@10"] += 1 / (first + 1) if first is not None else 0.0
    n = max(len(data.queries), 1)
    out: dict[str, Any] = {name: round(v / n, 4) for name, v in totals.items()}
    out["queries"] = len(data.queries)
    out["p50_ms"] = round(float(np.percentile(latencies, 50)), 1) if latencies else 0.0
    out["p95_ms"] = round(float(np.percentile(latencies, 95)), 1) if latencies else 0.0
    return out


def register(sub: argparse._SubParsersAction) -> None:
    from localrag.cli.common import add_json

    p = sub.add_parser("retrieval", help="nDCG@10, recall@10, MRR@10 on a BEIR-format data set")
    p.add_argument(
        "--beir", type=Path, required=True, help="folder with corpus.jsonl, queries.jsonl, qrels/"
    )
    p.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
    p.add_argument("--mode", default="hybrid", choices=MODES)
    p.add_argument("--limit", type=int, help="only the first N queries")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag import embed
    from localrag.cli.common import print_json, settings
    from localrag.evaluate.progress import progress_bar
    from localrag.store import Store
    from localrag.store.keys import new_data_key, wipe

    s = settings(args)
    data = load_beir(args.beir, args.split, args.limit)
    embedder = embed.from_settings(s)
    folder = Path(tempfile.mkdtemp(prefix="localrag-eval-"))
    key = new_data_key()
    try:
        store = Store.open(folder / "eval.db", key, create=True)
        t0 = time.perf_counter()
        with progress_bar("indexing", len(data.corpus)) as update:
            for done in build(store, embedder, data, ChunkSettings()):
                update(done)
        index_s = time.perf_counter() - t0
        result = score(store, embedder, data, args.mode)
        store.close()
    finally:
        wipe(key)
        shutil.rmtree(folder, ignore_errors=True)
    result = {"data": str(args.beir), "split": args.split, "mode": args.mode, **result}
    result["documents"] = len(data.corpus)
    result["index_s"] = round(index_s, 1)
    if args.json:
        print_json(result)
    else:
        for name, value in result.items():
            print(f"{name:<10} {value}")
    return 0
