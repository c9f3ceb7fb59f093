"""`localrag eval retrieval --beir DIR`: nDCG@10, recall@10 and MRR@10 on a BEIR data set.

The corpus goes into a throwaway encrypted vault (a random key that is never written down, in a
temporary folder removed afterwards), through the same chunker, embedder and search code as
`localrag add` and `localrag search`; `--cache` keeps it instead as a bench vault under
`HOME/bench/` (public data, the bench passphrase) so that later runs skip the embedding. A
document's rank is that of its best chunk.

`--cv FOLDS` says how the default search settings would fare on queries they were not chosen
on: the queries are dealt into folds; for each fold the best of `GRID` on the other folds is
scored on it. Only SciFact's train split ships here, so this held-out figure, not the score of
the default on all queries (which chose it), is the honest one.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.chunk import ChunkSettings, chunk, embedding_text
from localrag.embed import identity
from localrag.errors import UsageError
from localrag.ingest.base import Limits, TextBuilder
from localrag.records import NewChunk, NewDocument
from localrag.retrieve import MODES, SearchSettings, retrieve

PREFIX = "beir:"
BATCH_DOCS = 256
GRID: list[SearchSettings] = [
    *(
        SearchSettings(vector_weight=w / 100, vector_depth=d, keyword_depth=d)
        for d in (30, 50)
        for w in range(30, 65, 5)
    ),
    *(SearchSettings(fusion="rrf", vector_weight=0.5, rrf_k=k) for k in (10, 30, 60)),
]
"""The settings `--cv` chooses among: score fusion at vector weights 0.30-0.60 with 30 or 50
candidates a side, and RRF (equal weights) with k = 10, 30, 60: 17 in all."""


@dataclass(frozen=True)
class BeirSet:
    """A BEIR-format data set: documents, queries and relevance judgements of one split."""

    corpus: dict[str, tuple[str, str]]
    """Document id to (title, text)."""
    queries: dict[str, str]
    """Query id to text, only the queries judged in the split."""
    qrels: dict[str, dict[str, int]]
    """Query id to {document id: relevance}."""
    name: str = "beir"
    """The folder's name (`scifact`)."""


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
    return BeirSet(corpus, queries, {q: qrels[q] for q in queries}, folder.resolve().name)


def _chunks(title: str, text: str, embedder: Any, cs: ChunkSettings) -> list[NewChunk]:
    builder = TextBuilder(Path("beir"), Limits())
    if title:
        builder.heading(1, title)
    builder.add(text)
    return chunk(builder.build(title), embedder, cs)


def build(store: Any, embedder: Any, data: BeirSet, cs: ChunkSettings) -> Iterator[int]:
    """Index the corpus; yields the number of documents done after each batch."""
    ids = list(data.corpus)
    made_by = identity(embedder)
    for start in range(0, len(ids), BATCH_DOCS):
        batch = ids[start : start + BATCH_DOCS]
        per_doc = [_chunks(*data.corpus[d], embedder, cs) for d in batch]
        flat = [embedding_text(c) for chunks in per_doc for c in chunks]
        vectors = embedder.embed_documents(flat) if flat else np.zeros((0, embedder.dim))
        at = 0
        for doc_id, chunks in zip(batch, per_doc, strict=True):
            title = data.corpus[doc_id][0]
            doc = NewDocument(f"{PREFIX}{doc_id}", doc_id, "txt", 0, title)
            store.add_document(doc, chunks, vectors[at : at + len(chunks)], embedder=made_by)
            at += len(chunks)
        yield start + len(batch)


def ndcg(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def metrics(ranked: list[str], qrels: dict[str, int], k: int = 10) -> dict[str, float]:
    """nDCG, recall and MRR at `k` of one query's ranked document ids."""
    relevant = {d: r for d, r in qrels.items() if r > 0}
    found = [d for d in ranked[:k] if d in relevant]
    first = next((i for i, d in enumerate(ranked[:k]) if d in relevant), None)
    return {
        "ndcg@10": ndcg(ranked, relevant, k),
        "recall@10": len(found) / len(relevant) if relevant else 0.0,
        "mrr@10": 1 / (first + 1) if first is not None else 0.0,
    }


def cross_validate(
    store: Any, embedder: Any, data: BeirSet, folds: int = 2, k: int = 10
) -> dict[str, Any]:
    """Held-out nDCG@10 of choosing the settings among `GRID` on the other folds.

    Each query's two rankings are searched once per candidate depth (the same store calls as
    `retrieve()`), then fused for every setting with `retrieve`'s own fusion functions.
    """
    from localrag.retrieve import fuse, fuse_scores, terms

    doc_of = {
        c.id: c.path.removeprefix(PREFIX)
        for d in store.documents()
        for c in store.document_chunks(d.id)
    }
    depths = sorted({max(k * 3, s.vector_depth) for s in GRID})
    qids = sorted(data.queries)
    # per setting, per query: nDCG@10
    per_setting: list[list[float]] = [[] for _ in GRID]
    for qid in qids:
        text = data.queries[qid]
        vector = embedder.embed_query(text)
        words = terms(text)
        dense = {d: store.knn(vector, d) for d in depths}
        sparse = {d: store.keyword(words, d) for d in depths}
        for i, s in enumerate(GRID):
            d = max(k * 3, s.vector_depth)
            rankings = [(dense[d], s.vector_weight), (sparse[d], 1.0 - s.vector_weight)]
            fused = fuse(rankings, s.rrf_k) if s.fusion == "rrf" else fuse_scores(rankings)
            ranked = list(dict.fromkeys(doc_of[c] for c, _ in fused[: k * 3]))[:k]
            per_setting[i].append(metrics(ranked, data.qrels[qid], k)["ndcg@10"])
    fold_of = [n % folds for n in range(len(qids))]
    held_out = []
    chosen = []
    for f in range(folds):
        train = [n for n in range(len(qids)) if fold_of[n] != f]
        test = [n for n in range(len(qids)) if fold_of[n] == f]
        best = max(range(len(GRID)), key=lambda i: sum(per_setting[i][n] for n in train))
        chosen.append(_describe(GRID[best]))
        held_out.append(round(sum(per_setting[best][n] for n in test) / max(len(test), 1), 4))
    default = GRID.index(SearchSettings()) if SearchSettings() in GRID else None
    return {
        "folds": folds,
        "held_out_ndcg@10": held_out,
        "mean_held_out_ndcg@10": round(sum(held_out) / folds, 4),
        "chosen": chosen,
        "default_in_sample_ndcg@10": (
            round(sum(per_setting[default]) / len(qids), 4) if default is not None else None
        ),
        "best_in_sample": _describe(GRID[max(range(len(GRID)), key=lambda i: sum(per_setting[i]))]),
    }


def _describe(s: SearchSettings) -> str:
    if s.fusion == "rrf":
        return f"rrf k={s.rrf_k}"
    return f"scores {s.vector_weight:.2f}/{1 - s.vector_weight:.2f} depth {s.vector_depth}"


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
        for name, value in metrics(ranked, data.qrels[qid], k).items():
            totals[name] += value
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
    p.add_argument(
        "--cv", type=int, default=0, metavar="FOLDS", help="also cross-validate the settings"
    )
    p.add_argument(
        "--cache", action="store_true", help="keep the index in HOME/bench/ and reuse it"
    )
    add_json(p)
    p.set_defaults(func=run)


@contextmanager
def _index(settings: Any, data: BeirSet, embedder: Any, cache: bool) -> Iterator[Any]:
    """The corpus indexed in an encrypted vault: throwaway, or kept under HOME/bench/."""
    from localrag.evaluate.progress import progress_bar

    def fill(store: Any) -> None:
        with progress_bar("indexing", len(data.corpus)) as update:
            for done in build(store, embedder, data, ChunkSettings()):
                update(done)

    if cache:
        from localrag.bench.retrieval import BENCH_PASSPHRASE
        from localrag.settings import Settings
        from localrag.store import create_vault, open_vault

        home = settings.home / "bench" / f"eval-{data.name}"
        bench = Settings(home, settings.models_dir)
        passphrase = bytearray(BENCH_PASSPHRASE.encode())
        if (home / "vault.db").exists():
            store = open_vault(bench, passphrase)
            if store.get_meta("eval_documents") != str(len(data.corpus)):
                store.close()
                for f in home.iterdir():
                    f.unlink()
        if not (home / "vault.db").exists():
            home.mkdir(parents=True, exist_ok=True)
            store = create_vault(bench, passphrase)
            fill(store)
            store.set_meta("eval_documents", str(len(data.corpus)))
        try:
            yield store
        finally:
            store.close()
        return
    from localrag.evaluate.scratch import scratch_vault

    with scratch_vault("localrag-eval-") as (store, _):
        fill(store)
        yield store


def run(args: argparse.Namespace) -> int:
    from localrag import embed
    from localrag.cli.common import print_json, settings

    s = settings(args)
    data = load_beir(args.beir, args.split, args.limit)
    embedder = embed.from_settings(s)
    t0 = time.perf_counter()
    with _index(s, data, embedder, args.cache) as store:
        index_s = time.perf_counter() - t0
        result = score(store, embedder, data, args.mode)
        if args.cv > 1:
            result["cv"] = cross_validate(store, embedder, data, args.cv)
    result = {"data": str(args.beir), "split": args.split, "mode": args.mode, **result}
    result["documents"] = len(data.corpus)
    result["index_s"] = round(index_s, 1)
    if args.json:
        print_json(result)
    else:
        for name, value in result.items():
            print(f"{name:<10} {value}")
    return 0
