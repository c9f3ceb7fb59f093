"""`localrag bench retrieval --chunks N`: search as users feel it, on real text and real vectors.

The data: SciFact's abstracts cut into their sentences, then their titles, then windows of 16
words over each abstract, in that order, until there are N (about 170,000 at most); every one
is embedded for real by the default embedder. They are built once into a bench vault, a localrag
home of its own under `HOME/bench/retrieval-N` (encrypted like any vault; its passphrase is
`BENCH_PASSPHRASE`, since the data is public), and reused by later runs; a vector that another
bench vault already holds is reused by its text's hash, so a 10,000-chunk vault costs nothing
once the 100,000 one exists. No vector is written anywhere but into these vaults.

Measured in one run, side by side:
- a fresh process: `localrag --home H search -k 10 QUERY --json` run as a child, each with
  another SciFact query, timed from spawn to exit (Python start, imports, unlock with Argon2id,
  embedder start, the search, printing) with its peak RSS; `localrag --version` as a child the
  same way, as the floor that any command pays. Both read compiled bytecode, as an installed
  localrag does. The OS file cache holds the vault (it was just
  used), as it does for someone who searches now and then.
- warm: the same search (`retrieve()`: embed the query, vector KNN and BM25, fuse, fetch) over
  `--queries` queries in this process, p50/p95 in all and per step.
- the vector KNN's recall@10 against exact search over every float vector of the vault (loaded
  here only to be the reference), and the time of each, query by query.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from localrag.bench import cli_child
from localrag.cli import common

BENCH_PASSPHRASE = "localrag bench: public SciFact data"
COLD_GOAL_S = {10_000: 0.6, 100_000: 0.8}
"""The issue's goals for a fresh `localrag search`: 0.6 s up to about 10,000 chunks (SciFact added
as files is 14,479), 0.8 s at 100,000."""
WARM_P95_GOAL_MS = 30.0
RECALL_GOAL = 0.95
RSS_GOAL_MB = 300.0
DEFAULT_BEIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"
EMBED_BATCH = 2048
SWEEP = (10, 20, 40, 80, 160, 320)
"""Candidate counts whose recall@10 and time are reported beside the default."""
WINDOW_WORDS = 16
SENTENCE = re.compile(r"(?<=[a-z%)\]][.!?])\s*(?=[A-Z])")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrieval", help="search in a fresh process and warm, KNN recall, on real vectors"
    )
    p.add_argument("--chunks", type=int, default=100_000, help="chunks in the vault")
    p.add_argument("--queries", type=int, default=200, help="queries timed warm")
    p.add_argument("--cold", type=int, default=5, help="fresh `localrag search` processes")
    p.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR folder (SciFact)")
    p.add_argument(
        "--vault",
        type=Path,
        help="measure this bench home instead (e.g. HOME/bench/eval-scifact of `eval retrieval"
        " --cache`: SciFact added through the ingest chunker)",
    )
    common.add_json(p)
    p.set_defaults(func=run)


def units(folder: Path, n: int) -> list[tuple[str, str, list[str]]]:
    """(document id, title, texts) of the first `n` texts: every abstract's sentences, then the
    titles, then windows of `WINDOW_WORDS` words (half overlapping) over each abstract.

    Short texts keep the embedding affordable here (about 25 tokens each: 100,000 of them take
    about 20 minutes of two cores); their vectors are more spread than those of longer chunks,
    which makes the quantized search's job harder, not easier.
    """
    from localrag.evaluate.retrieval import _jsonl

    corpus = {
        str(d["_id"]): (d.get("title", ""), d.get("text", ""))
        for d in _jsonl(folder / "corpus.jsonl")
    }
    sentences = {
        d: [s.strip() for s in SENTENCE.split(text) if len(s.split()) >= 3]
        for d, (_, text) in corpus.items()
    }
    step = WINDOW_WORDS // 2
    windows = {}
    for d, (_, text) in corpus.items():
        words = text.split()
        windows[d] = [
            " ".join(words[i : i + WINDOW_WORDS]) for i in range(0, len(words) - step, step)
        ]
    levels: list[dict[str, list[str]]] = [
        sentences,
        {d: [title] for d, (title, _) in corpus.items() if title},
        windows,
    ]
    chosen: dict[str, list[str]] = {}
    left = n
    for level in levels:
        for d, texts in level.items():
            take = texts[:left]
            chosen.setdefault(d, []).extend(take)
            left -= len(take)
            if left == 0:
                return [(d, corpus[d][0], t) for d, t in chosen.items() if t]
    raise SystemExit(f"{folder} has only {n - left} texts; ask for fewer --chunks")


def base_texts(folder: Path, n: int, queries: int) -> tuple[list[str], list[str]]:
    """`n` real abstracts and `queries` queries from a BEIR folder, else generated ones (used by
    `bench ingest`)."""
    if (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file():
        with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
            docs = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
        with (folder / "queries.jsonl").open(encoding="utf-8") as f:
            qs = [json.loads(line)["text"] for _, line in zip(range(queries), f, strict=False)]
        return [f"{d.get('title', '')}. {d['text']}" for d in docs], qs
    import numpy as np

    from localrag.bench.vault import synthetic_texts

    texts = synthetic_texts(np.random.default_rng(7), n)
    return texts, [" ".join(t.split()[5:12]) for t in texts[:queries]]


def bench_home(settings: Any, n: int) -> Path:
    return settings.home / "bench" / f"retrieval-{n}"


def _cached_vectors(settings: Any, keys: list[tuple[str, None]], made_by: Any) -> dict[Any, Any]:
    """Vectors of these texts that bench vaults of the same embedder already hold (a half-built
    one too)."""
    from localrag.settings import Settings
    from localrag.store import open_vault

    found: dict[Any, Any] = {}
    for home in sorted((settings.home / "bench").glob("retrieval-*")):
        wanted = [k for k in keys if k not in found]
        if not wanted:
            break
        if (home / "vault.db").exists():
            with open_vault(Settings(home, settings.models_dir), _passphrase()) as store:
                if store.embedder_info() in (None, made_by):  # None: a vault from before
                    found.update(store.vectors_by_text_and_heading(wanted))
    return found


def _passphrase() -> bytearray:
    return bytearray(BENCH_PASSPHRASE.encode())


def build(settings: Any, n: int, beir: Path, embedder: Any) -> Path:
    """The bench vault of `n` chunks, made if it is not there yet.

    Texts are embedded in batches and stored as they go, so an interrupted build loses at most
    one batch: the next one finds the vectors in the half-built vault.
    """
    import numpy as np

    from localrag.embed import identity
    from localrag.records import NewChunk, NewDocument, Span
    from localrag.settings import Settings
    from localrag.store import create_vault, open_vault
    from localrag.store.store import text_sha256

    home = bench_home(settings, n)
    bench = Settings(home, settings.models_dir)
    if (home / "vault.db").exists():
        with open_vault(bench, _passphrase()) as store:
            if store.counts()["chunks"] == n:
                return home
    docs = units(beir, n)
    made_by = identity(embedder)  # recorded, so that a search of the bench vault trusts it
    keys = [(text_sha256(t), None) for _, _, ts in docs for t in ts]
    cached = _cached_vectors(settings, keys, made_by)
    if home.exists():
        for f in home.iterdir():
            f.unlink()
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    embedded = 0
    with create_vault(bench, _passphrase()) as store:
        pending: list[tuple[str, str, list[str]]] = []
        for i, doc in enumerate(docs):
            pending.append(doc)
            missing = [
                t for _, _, ts in pending for t in ts if (text_sha256(t), None) not in cached
            ]
            if len(missing) < EMBED_BATCH and i + 1 < len(docs):
                continue
            if missing:
                for text, vector in zip(missing, embedder.embed_documents(missing), strict=True):
                    cached[(text_sha256(text), None)] = vector
                embedded += len(missing)
                rate = embedded / max(time.perf_counter() - started, 1e-9)
                print(f"embedded {embedded} texts ({rate:.0f}/s)", file=sys.stderr, flush=True)
            for doc_id, title, ts in pending:
                chunks = [
                    NewChunk(t, Span(line_start=j + 1, line_end=j + 1), 0) for j, t in enumerate(ts)
                ]
                vectors = np.stack([cached[(text_sha256(t), None)] for t in ts])
                path = f"scifact/{doc_id}.txt"
                new = NewDocument(path, text_sha256("\n".join(ts)), "txt", 0, title)
                store.add_document(new, chunks, vectors, embedder=made_by)
            pending = []
        store.checkpoint()
    return home


def queries(beir: Path, n: int) -> list[str]:
    with (beir / "queries.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f, strict=False)]


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """`python -m localrag ARGV` as a fresh process: (wall s, its own peak RSS in MB, stdout)."""
    finished = cli_child.run(argv, env)
    if finished.returncode != 0:
        raise SystemExit(f"`localrag {' '.join(argv[:3])}` failed: {finished.stderr[-500:]}")
    return finished.wall_s, finished.peak_rss_bytes / 2**20, finished.stdout


def cold_runs(home: Path, texts: list[str]) -> dict[str, Any]:
    """Fresh `localrag search` processes, each after a fresh `localrag --version` (the floor
    every command pays: Python starting and the CLI's own imports).

    The children read compiled bytecode, as an installed localrag does: a first search, not
    counted, writes it, and PYTHONDONTWRITEBYTECODE (set on some build machines) is left out of
    their environment; with it every child compiled localrag again (0.3-0.4 s more here).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["LOCALRAG_PASSPHRASE"] = BENCH_PASSPHRASE
    child(["--home", str(home), "search", "-k", "10", "--json", texts[0]], env)
    search: list[float] = []
    floor: list[float] = []
    rss: list[float] = []
    answered = 0
    for text in texts:
        floor.append(child(["--version"], env)[0])
        wall, peak, out = child(["--home", str(home), "search", "-k", "10", "--json", text], env)
        search.append(wall)
        rss.append(peak)
        answered += len(json.loads(out)) > 0
    return {
        "runs": len(texts),
        "search_s": _spread(search),
        "version_s": _spread(floor),
        "peak_rss_mb": round(max(rss), 1),
        "answered": answered,
    }


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": round(ordered[0], 3),
        "median": round(ordered[len(ordered) // 2], 3),
        "max": round(ordered[-1], 3),
    }


def _ms(values: list[float]) -> dict[str, float]:
    import numpy as np

    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
    }


def _all_vectors(store: Any) -> tuple[Any, Any]:
    import numpy as np

    rows = store.conn.execute("SELECT chunk_id, vector FROM chunk_vectors").fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(ids), -1)


PATHS = ("memory", "vec0")
"""The two vector paths of a long-lived process, timed alternately: candidates from the codes
kept in memory (`Store.keep_vectors_warm`), and sqlite-vec's `vec0` scan (a fresh process's)."""


def _use(store: Any, path: str) -> None:
    store.use_warm_vectors = path == "memory"


def warm_runs(home: Path, embedder: Any, texts: list[str], settings: Any) -> dict[str, Any]:
    """`retrieve()` in this process by both vector paths, alternating query by query; then each
    path's KNN against exact search query by query."""
    from localrag.retrieve import retrieve
    from localrag.settings import Settings
    from localrag.store import open_vault, vectors, warm

    with open_vault(Settings(home, settings.models_dir), _passphrase()) as store:
        t0 = time.perf_counter()
        store.keep_vectors_warm()
        warm_build_s = time.perf_counter() - t0
        for q in texts[:5]:  # the page cache and the embedder, as in a long-lived app
            for path in PATHS:
                _use(store, path)
                retrieve(store, embedder, q, k=10)
        totals: dict[str, list[float]] = {p: [] for p in PATHS}
        steps: dict[str, dict[str, list[float]]] = {p: {} for p in PATHS}
        hits: dict[str, list[list[int]]] = {p: [] for p in PATHS}
        loads: list[float] = []
        for i, q in enumerate(texts):
            for path in PATHS if i % 2 == 0 else PATHS[::-1]:
                _use(store, path)
                t0 = time.perf_counter()
                result = retrieve(store, embedder, q, k=10)
                totals[path].append((time.perf_counter() - t0) * 1000)
                hits[path].append([h.chunk.id for h in result.hits])
                for name, ms in result.timings_ms.items():
                    steps[path].setdefault(name, []).append(ms)
            if i % 20 == 0:
                loads.append(_load())
        ids, floats = _all_vectors(store)
        exact_side = _ExactVectors(store, ids, floats)
        reference = [
            [h.chunk.id for h in retrieve(exact_side, embedder, q, k=10).hits] for q in texts
        ]
        knn_ms: dict[str, list[float]] = {p: [] for p in PATHS}
        recalls: dict[str, list[float]] = {p: [] for p in PATHS}
        exact_ms: list[float] = []
        sweeps: dict[str, dict[int, list[tuple[float, float]]]] = {p: {} for p in PATHS}
        for q in texts:
            qv = embedder.embed_query(q)
            t0 = time.perf_counter()
            exact = {i for i, _ in vectors.rescore(ids, floats, qv, 10)}
            exact_ms.append((time.perf_counter() - t0) * 1000)
            for path in PATHS:
                _use(store, path)
                t0 = time.perf_counter()
                found = store.knn(qv, 10)
                knn_ms[path].append((time.perf_counter() - t0) * 1000)
                recalls[path].append(len({i for i, _ in found} & exact) / 10)
                for n in SWEEP:  # how many candidates each path's codes must give
                    t0 = time.perf_counter()
                    some = store.knn(qv, 10, candidates=n)
                    took = (time.perf_counter() - t0) * 1000
                    recall = len({i for i, _ in some} & exact) / 10
                    sweeps[path].setdefault(n, []).append((recall, took))
        _use(store, "memory")
        size_mb = (home / "vault.db").stat().st_size / 1e6
        chunks = store.counts()["chunks"]
    import numpy as np

    def sweep(v: dict[int, list[tuple[float, float]]]) -> dict[str, Any]:
        return {
            str(n): {
                "recall@10": round(float(np.mean([r for r, _ in x])), 4),
                **_ms([t for _, t in x]),
            }
            for n, x in v.items()
        }

    by_path = {
        path: {
            "search": _ms(totals[path]),
            "steps": {name: _ms(values) for name, values in steps[path].items()},
            "knn": _ms(knn_ms[path]),
            "knn_recall@10": round(float(np.mean(recalls[path])), 4),
            "candidates_sweep": sweep(sweeps[path]),
        }
        for path in PATHS
    }
    return {
        "chunks": chunks,
        **by_path["memory"],
        "vec0": by_path["vec0"],
        "memory_candidates": warm.candidates(vectors_depth()),
        "memory_build_s": round(warm_build_s, 2),
        "same_hits_both_paths": _same(hits["memory"], hits["vec0"]),
        "same_hits_as_exact_vectors": {p: _same(hits[p], reference) for p in PATHS},
        "hybrid_recall@10_vs_exact_vectors": {
            p: round(
                float(
                    np.mean(
                        [
                            len(set(a) & set(b)) / max(len(b), 1)
                            for a, b in zip(hits[p], reference, strict=True)
                        ]
                    )
                ),
                4,
            )
            for p in PATHS
        },
        "exact_in_memory": _ms(exact_ms),
        "load_average": round(float(np.mean(loads)), 2) if loads else None,
        "vault_mb": round(size_mb, 1),
    }


class _ExactVectors:
    """The store with its vector search replaced by exact search over every float vector: the
    reference that a hybrid search's hits are compared with."""

    def __init__(self, store: Any, ids: Any, floats: Any) -> None:
        self.store, self.ids, self.floats = store, ids, floats

    def knn(self, vector: Any, k: int, **_: Any) -> list[tuple[int, float]]:
        from localrag.store import vectors

        return vectors.rescore(self.ids, self.floats, vector, k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _same(a: list[list[int]], b: list[list[int]]) -> str:
    """How many queries got the same ten hits in the same order."""
    return f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(a)}"


def vectors_depth() -> int:
    """The vector side's depth in a hybrid search with the default settings."""
    from localrag.retrieve import SearchSettings

    return max(10, SearchSettings().vector_depth)


def _load() -> float:
    """The 1-minute load average: the benchmark shares the machine."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def run(args: argparse.Namespace) -> int:
    from localrag import embed

    settings = common.settings(args)
    embedder = embed.from_settings(settings)
    t0 = time.perf_counter()
    home = args.vault or build(settings, args.chunks, args.beir, embedder)
    build_s = time.perf_counter() - t0
    texts = queries(args.beir, max(args.queries, args.cold))
    cold = cold_runs(home, texts[: args.cold])
    warm = warm_runs(home, embedder, texts[: args.queries], settings)
    result: dict[str, Any] = {
        "chunks": warm["chunks"],
        "data": (
            f"{home}: an existing bench vault"
            if args.vault
            else f"{args.beir}: sentences, titles, 16-word windows; real embeddings"
        ),
        "vault": str(home),
        "build_s": round(build_s, 1),
        "fresh_process": cold,
        "warm": warm,
        "goals": {
            "fresh_search_s": cold_goal(warm["chunks"]),
            "warm_p95_ms": WARM_P95_GOAL_MS,
            "recall@10": RECALL_GOAL,
            "rss_mb": RSS_GOAL_MB,
        },
    }
    if args.json:
        common.print_json(result)
        return 0
    _print(result)
    return 0


def cold_goal(chunks: int) -> float:
    """The fresh-search goal of the nearest size the issue names."""
    size = min(COLD_GOAL_S, key=lambda n: abs(n - chunks))
    return COLD_GOAL_S[size]


def _print(r: dict[str, Any]) -> None:
    cold, warm = r["fresh_process"], r["warm"]
    s, h = cold["search_s"], cold["version_s"]
    print(f"{r['chunks']:,} real chunks (SciFact), encrypted vault {warm['vault_mb']} MB")
    print(
        f"fresh `localrag search` ({cold['runs']} runs): {s['min']}-{s['max']} s, median "
        f"{s['median']} s, peak RSS {cold['peak_rss_mb']} MB; `localrag --version`: median "
        f"{h['median']} s (goal <= {r['goals']['fresh_search_s']} s, <= {RSS_GOAL_MB:.0f} MB)"
    )
    print(
        f"warm search (embed + KNN + BM25 + fuse + fetch), {warm['same_hits_both_paths']} queries"
        f" with the same hits by both vector paths (as with exact vector search: memory "
        f"{warm['same_hits_as_exact_vectors']['memory']}, vec0 "
        f"{warm['same_hits_as_exact_vectors']['vec0']}), load average {warm['load_average']}:"
    )
    for label, w in (("codes in memory", warm), ("vec0 in the vault", warm["vec0"])):
        print(f"  {label}: {_times(w['search'])} (goal p95 <= {WARM_P95_GOAL_MS:.0f} ms)")
        for name, values in w["steps"].items():
            print(f"    {name:<8} {_times(values)}")
        print(
            f"    KNN alone {_times(w['knn'])}; recall@10 vs exact search {w['knn_recall@10']}"
            f" (goal >= {RECALL_GOAL})"
        )
        for n, v in w["candidates_sweep"].items():
            print(f"    {n:>4} candidates: recall@10 {v['recall@10']}, {_times(v)}")
    print(
        f"exact search over all float vectors in memory: {_times(warm['exact_in_memory'])};"
        f" codes in memory built in {warm['memory_build_s']} s"
        f" ({warm['memory_candidates']} candidates for the fusion's depth)"
    )


def _times(values: dict[str, float]) -> str:
    return f"p50 {values['p50_ms']} ms, p95 {values['p95_ms']} ms"
