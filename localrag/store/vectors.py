"""Vector search inside the vault: sqlite-vec's `vec0` KNN over int8 codes, rescored exactly.

Every chunk's vector is kept twice in the encrypted file: as float32 in `chunk_vectors` (exact)
and as int8 codes in the `vec0` table `vec_codes` (384 bytes for 384 dims, a quarter of the
floats). A search asks `vec0` for the `k + EXTRA` nearest codes by L1 distance
(`MATCH ... AND k = ...`, a scan of the codes inside SQLite, no vector loaded into Python), then
reads the float vectors of those candidates alone and ranks them by exact cosine similarity.
So a fresh process answers its first query after reading ~40 MB of codes at 100,000 chunks,
where loading every float vector meant ~150 MB and seconds.

Why int8 codes and L1:
- sign bits (`bit[384]`) rank too roughly: real sentence embeddings need about 2 % of the corpus
  as candidates for a recall@10 of 0.95 (measured on SciFact before), and sqlite-vec 0.1.9's
  top-k selection costs O(rows * k) (about 400 ms at k = 1000 over 100,000 rows); fetching
  2,000 candidates' floats at random from the encrypted file costs 35-90 ms more.
- int8 codes rank nearly like the floats: on 10,000 real SciFact chunks, 20 candidates gave a
  recall@10 of 0.99 and 40 gave 1.0 (`bench retrieval`'s sweep). sqlite-vec's L1 over int8
  sums integers, which the compiler vectorizes; its int8 L2 and cosine add floats one element
  at a time: over 100,000 codes, L1 took 36 ms and L2 131 ms (p50, k = 40, side by side on
  a loaded machine).

Switching the embedder builds a whole new set beside the old one (`switch.py`): each set of
codes is its own `vec0` table, named by its generation (meta `vector_generation`: `vec_codes`,
then `vec_codes_1`, ...), because a `vec0` table cannot be renamed (its shadow tables keep the
old name) and copying 100,000 codes took a minute here.

Codes are `round(x * scale)` clipped to [-127, 127]; `scale` is fixed per vault (meta
`vector_code_scale`) so codes written at different times compare. For unit vectors it is
127 / (6 / sqrt(dim)): a component past six times the typical size is clipped (rare; the exact
rescoring puts such a vector back where it belongs if it is among the candidates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import apsw
    import numpy as np

TABLE = "vec_codes"
EXTRA = 30
"""Candidates beyond the `k` wanted that the codes give to the exact rescoring: the best ten
come out as exact search ranks them (recall@10 1.0 on 10,000 real chunks with 40 candidates,
0.99 with 20; see `bench retrieval`'s sweep), and sqlite-vec's top-k selection costs
O(rows * candidates), so a search for the fusion's 50 asks for 80, not 4 x 50."""
SCALE_META = "vector_code_scale"
GENERATION_META = "vector_generation"


def table(generation: int) -> str:
    """The `vec0` table of the codes of this generation of vectors."""
    return TABLE if generation == 0 else f"{TABLE}_{generation}"


def default_scale(dim: int) -> float:
    """Codes per unit of a component: six typical components of a unit vector map to 127."""
    return 127.0 / (6.0 / math.sqrt(dim))


def create(conn: apsw.Connection, dim: int, name: str = TABLE, *, record: bool = True) -> float:
    """The `vec0` table of codes for `dim`-dimensional vectors; returns the scale it uses
    (recorded as the vault's unless `record` is False: a staged table's waits for its swap)."""
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING vec0("
        f"codes int8[{dim}] distance_metric=l1)"
    )
    scale = default_scale(dim)
    if record:
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (SCALE_META, repr(scale))
        )
    return scale


def codes(vectors: np.ndarray, scale: float) -> np.ndarray:
    """int8 codes of float vectors (rows), as stored in `vec_codes`."""
    import numpy as np

    scaled = np.rint(np.asarray(vectors, dtype=np.float32) * np.float32(scale))
    return np.clip(scaled, -127, 127).astype(np.int8)


def insert(
    conn: apsw.Connection,
    ids: Sequence[int],
    vectors: np.ndarray,
    scale: float,
    name: str = TABLE,
) -> None:
    """Add the codes of these chunks' vectors (inside the caller's transaction)."""
    conn.executemany(
        f"INSERT INTO {name} (rowid, codes) VALUES (?, vec_int8(?))",
        zip(ids, (c.tobytes() for c in codes(vectors, scale)), strict=True),
    )


def delete(conn: apsw.Connection, ids: Sequence[int], name: str = TABLE) -> None:
    """Remove these chunks' codes (sqlite-vec zeroes their bytes in its chunk blobs)."""
    conn.executemany(f"DELETE FROM {name} WHERE rowid = ?", ((i,) for i in ids))


def candidates(k: int) -> int:
    return k + EXTRA


def knn(
    read: Any,
    query: np.ndarray,
    k: int,
    scale: float,
    n: int | None = None,
    name: str = TABLE,
) -> list[tuple[int, float]]:
    """The `k` nearest chunks by cosine similarity: `vec0` candidates, rescored exactly.

    `read(sql, bindings)` runs one statement under the store's lock. `n` overrides the number
    of candidates (the benchmark's recall sweep).
    """
    import numpy as np

    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    rows = read(
        f"WITH near AS (SELECT rowid FROM {name} WHERE codes MATCH vec_int8(:q) AND k = :n)"
        " SELECT v.chunk_id, v.vector FROM near JOIN chunk_vectors v ON v.chunk_id = near.rowid",
        {"q": codes(query[None, :], scale)[0].tobytes(), "n": n or candidates(k)},
    )
    return _rescore_rows(rows, query, k)


def knn_among(
    read: Any, ids: Sequence[int] | np.ndarray, query: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """The `k` of these chunks nearest `query` by cosine similarity (their float vectors read
    from the vault): the rescoring of candidates found in memory (`warm.py`)."""
    import json

    import numpy as np

    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    # The ids drive the join (CROSS JOIN keeps that order), each a primary-key probe, in
    # ascending order so that neighbouring probes share pages.
    rows = read(
        "SELECT v.chunk_id, v.vector FROM json_each(:ids) AS j"
        " CROSS JOIN chunk_vectors AS v ON v.chunk_id = j.value",
        {"ids": json.dumps(sorted(int(i) for i in ids))},
    )
    return _rescore_rows(rows, query, k)


def _rescore_rows(rows: list[Any], query: np.ndarray, k: int) -> list[tuple[int, float]]:
    import numpy as np

    if not rows:
        return []
    return rescore(
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1),
        query,
        k,
    )


def rescore(
    ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """The best `k` of `ids` by exact cosine similarity to `query`, best first (ties by id)."""
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
    scores = vectors @ query / np.where(norms == 0, 1.0, norms)
    best = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in best]
