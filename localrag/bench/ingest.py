"""`localrag bench ingest`: tokens per second of `add` against the raw ONNX embedder, one run.

Ours is the whole pipeline of `localrag add` over a folder of text files: hash, read, chunk,
embed, store in a throwaway encrypted vault. Raw is `OnnxEmbedder.embed_documents` over the
very chunk texts the pipeline stored, in one call (sorted by length, batched): the cost of the
model alone. Both sides count the same tokens, so the ratio is raw time over pipeline time.
The sides alternate and each keeps its best of `--rounds`. Goal: at least 85 %.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from localrag.bench.retrieval import DEFAULT_BEIR, base_texts
from localrag.cli import common

GOAL = 0.85


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="tokens/s of add (read, chunk, embed, store) vs raw ONNX")
    p.add_argument(
        "--docs", type=int, default=200, help="documents (SciFact abstracts or generated)"
    )
    p.add_argument("--rounds", type=int, default=2, help="runs of each side (best kept)")
    p.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR folder for real texts")
    common.add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag import embed
    from localrag.ingest.pipeline import add_paths
    from localrag.store import Store
    from localrag.store.keys import new_data_key, wipe

    embedder = embed.from_settings(common.settings(args))
    texts, _ = base_texts(args.beir, args.docs, 0)
    folder = Path(tempfile.mkdtemp(prefix="localrag-bench-"))
    docs = folder / "docs"
    docs.mkdir()
    for i, text in enumerate(texts):
        (docs / f"doc{i:05d}.txt").write_text(text + "\n", encoding="utf-8")
    embedder.embed_documents(texts[:8])  # warm up
    ours: list[float] = []
    raw: list[float] = []
    tokens = chunks = 0
    chunk_texts: list[str] = []
    try:
        for n in range(args.rounds):
            key = new_data_key()
            try:
                store = Store.open(folder / f"bench{n}.db", key, create=True)
                t0 = time.perf_counter()
                events = list(add_paths(store, embedder, [docs]))
                ours.append(time.perf_counter() - t0)
                failed = [e for e in events if e.status == "failed"]
                if failed:
                    raise RuntimeError(f"bench documents failed: {failed[0].detail}")
                stored = [c for d in store.documents() for c in store.document_chunks(d.id)]
                chunk_texts = [c.text for c in stored]
                store.close()
            finally:
                wipe(key)
            t0 = time.perf_counter()
            embedder.embed_documents(chunk_texts)
            raw.append(time.perf_counter() - t0)
        counts = embedder.count_tokens(chunk_texts)
        tokens = sum(min(c + 2, embedder.max_tokens) for c in counts)
        chunks = len(chunk_texts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ours_tps, raw_tps = tokens / min(ours), tokens / min(raw)
    result: dict[str, Any] = {
        "documents": len(texts),
        "chunks": chunks,
        "tokens": tokens,
        "pipeline_tokens_per_s": round(ours_tps),
        "raw_onnx_tokens_per_s": round(raw_tps),
        "ratio": round(ours_tps / raw_tps, 3),
        "pipeline_s": [round(s, 2) for s in ours],
        "raw_s": [round(s, 2) for s in raw],
        "goal": GOAL,
        "met": ours_tps / raw_tps >= GOAL,
    }
    if args.json:
        common.print_json(result)
        return 0
    print(f"{len(texts)} documents, {chunks} chunks, {tokens:,} tokens")
    print(f"pipeline (hash, read, chunk, embed, store): {ours_tps:,.0f} tokens/s")
    print(f"raw ONNX embedder on the same chunks:       {raw_tps:,.0f} tokens/s")
    print(f"ratio {result['ratio']:.1%} (goal {GOAL:.0%}: {'met' if result['met'] else 'NOT met'})")
    return 0
