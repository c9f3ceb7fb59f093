"""Which embedder made the vault's vectors, and the switch to another one.

The vault records the embedder of its vectors (meta `embedder`: name, fingerprint, dim) so that
it is never searched with a query from another one: the result would rank garbage, silently.

Switching the embedder re-embeds every chunk into a staging area inside the vault: float
vectors in `staged_vectors`, their int8 codes in the `vec0` table of the next generation
(`vectors.table`). Each batch is its own transaction, so a kill loses at most the batch in
flight. Meanwhile the old vectors, and the old embedder for queries, keep serving search. When
every chunk has its new vector, one transaction swaps them in: `staged_vectors` is renamed to
`chunk_vectors`, the next generation's codes become the searched ones, the old tables are
dropped (their pages overwritten: `secure_delete`) and the new embedder is recorded. Chunks
added meanwhile (with the old embedder) are simply more chunks without a staged vector; chunks
deleted meanwhile take their staged vector with them (`forget`).

Every function here runs inside the caller's transaction (see `Store`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localrag.records import EmbedderInfo
from localrag.store import vectors as vec

if TYPE_CHECKING:
    import apsw
    import numpy as np

EMBEDDER_META = "embedder"
SWITCH_META = "embedder_switch"
DIM_META = "vector_dim"
STAGED = "staged_vectors"
_STAGED_TABLE = f"""
CREATE TABLE IF NOT EXISTS {STAGED} (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id),
    vector BLOB NOT NULL
)"""
"""The same columns as `chunk_vectors`, which it becomes at the swap."""


@dataclass(frozen=True)
class VectorSet:
    """The vectors that search reads now."""

    dim: int | None
    """None until the first vector is stored."""
    scale: float
    """Codes per unit of a component (see `vectors.py`)."""
    generation: int
    """Which `vec0` table holds the codes (`vectors.table`)."""
    embedder: EmbedderInfo | None
    """Who made them; None in a vault written before localrag recorded it."""

    @property
    def table(self) -> str:
        return vec.table(self.generation)


@dataclass(frozen=True)
class Staging:
    """A switch under way, as the vault records it."""

    to: EmbedderInfo
    started_at: str
    generation: int
    """The generation its codes are staged in (the current one plus one)."""
    scale: float

    @property
    def table(self) -> str:
        return vec.table(self.generation)


def _meta(conn: apsw.Connection, *keys: str) -> dict[str, str]:
    marks = ",".join("?" * len(keys))
    rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
    return {str(k): str(v) for k, v in rows}


def _set(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def info_json(info: EmbedderInfo) -> str:
    return json.dumps(dataclasses.asdict(info), sort_keys=True)


def info_from(data: dict[str, Any]) -> EmbedderInfo:
    return EmbedderInfo(str(data["name"]), str(data["fingerprint"]), int(data["dim"]))


def current(conn: apsw.Connection) -> VectorSet:
    m = _meta(conn, DIM_META, vec.SCALE_META, vec.GENERATION_META, EMBEDDER_META)
    return VectorSet(
        dim=int(m[DIM_META]) if DIM_META in m else None,
        scale=float(m.get(vec.SCALE_META, 0.0)),
        generation=int(m.get(vec.GENERATION_META, 0)),
        embedder=info_from(json.loads(m[EMBEDDER_META])) if EMBEDDER_META in m else None,
    )


def record(conn: apsw.Connection, info: EmbedderInfo) -> None:
    """Record the embedder of the vault's vectors (its first ones, or an older vault's)."""
    _set(conn, EMBEDDER_META, info_json(info))


def staging(conn: apsw.Connection) -> Staging | None:
    raw = _meta(conn, SWITCH_META).get(SWITCH_META)
    if raw is None:
        return None
    data = json.loads(raw)
    return Staging(info_from(data["to"]), data["started_at"], data["generation"], data["scale"])


def start(conn: apsw.Connection, to: EmbedderInfo, now: str) -> Staging:
    """Begin a switch to `to` (dropping any staged for another embedder)."""
    old = staging(conn)
    if old is not None:
        drop(conn, old)
    generation = current(conn).generation + 1
    conn.execute(_STAGED_TABLE)
    scale = vec.create(conn, to.dim, vec.table(generation), record=False)
    switch = Staging(to, now, generation, scale)
    data = {"to": dataclasses.asdict(to), "started_at": now, "generation": generation}
    _set(conn, SWITCH_META, json.dumps({**data, "scale": scale}))
    return switch


def drop(conn: apsw.Connection, switch: Staging) -> None:
    """Cancel a switch: its staged vectors and codes are deleted (pages overwritten)."""
    conn.execute(f"DROP TABLE IF EXISTS {STAGED}")
    conn.execute(f"DROP TABLE IF EXISTS {switch.table}")
    conn.execute("DELETE FROM meta WHERE key = ?", (SWITCH_META,))


def counts(conn: apsw.Connection) -> tuple[int, int]:
    """(chunks with a staged vector, chunks), during a switch."""
    row = conn.execute(f"SELECT (SELECT count(*) FROM {STAGED}), (SELECT count(*) FROM chunks)")
    done, total = next(iter(row))
    return int(done), int(total)


def todo(conn: apsw.Connection, after_id: int, limit: int) -> list[tuple[int, str, str | None]]:
    """Up to `limit` chunks after `after_id` that have no staged vector: (id, text, heading).

    By id, so a run reads the vault once; chunks added later have larger ids (AUTOINCREMENT).
    """
    rows = conn.execute(
        f"SELECT c.id, c.text, c.heading FROM chunks c WHERE c.id > ? AND NOT EXISTS"
        f" (SELECT 1 FROM {STAGED} s WHERE s.chunk_id = c.id) ORDER BY c.id LIMIT ?",
        (after_id, limit),
    )
    return [(int(i), str(t), h) for i, t, h in rows]


def staged_by_key(
    conn: apsw.Connection, keys: Iterable[tuple[str, str | None]]
) -> dict[tuple[str, str | None], bytes]:
    """Staged vectors by (text hash, heading) of their chunks: a chunk repeated in another
    document is embedded once."""
    rows = conn.execute(
        "WITH wanted(sha, heading) AS"
        " (SELECT DISTINCT value ->> 0, value ->> 1 FROM json_each(:keys))"
        f" SELECT w.sha, w.heading, s.vector FROM wanted w"
        " JOIN chunks c ON c.text_sha256 = w.sha AND c.heading IS w.heading"
        f" JOIN {STAGED} s ON s.chunk_id = c.id",
        {"keys": json.dumps(list(keys))},
    )
    found: dict[tuple[str, str | None], bytes] = {}
    for sha, heading, blob in rows:
        found.setdefault((sha, heading), bytes(blob))
    return found


def stage(conn: apsw.Connection, switch: Staging, ids: Sequence[int], vectors: np.ndarray) -> int:
    """Store the new vectors (and codes) of these chunks; those deleted since they were read are
    left out. Returns how many were stored."""
    import numpy as np

    marks = ",".join("?" * len(ids))
    alive = {int(r[0]) for r in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", ids)}
    keep = [i for i, chunk_id in enumerate(ids) if chunk_id in alive]
    if not keep:
        return 0
    kept_ids = [ids[i] for i in keep]
    kept = np.ascontiguousarray(vectors[keep], dtype=np.float32)
    conn.executemany(
        f"INSERT INTO {STAGED} (chunk_id, vector) VALUES (?, ?)",
        zip(kept_ids, (v.tobytes() for v in kept), strict=True),
    )
    vec.insert(conn, kept_ids, kept, switch.scale, switch.table)
    return len(kept_ids)


def forget(conn: apsw.Connection, chunk_ids: Sequence[int]) -> None:
    """Delete the staged vectors of chunks being deleted (inside their document's transaction)."""
    switch = staging(conn)
    if switch is None or not chunk_ids:
        return
    conn.executemany(f"DELETE FROM {STAGED} WHERE chunk_id = ?", ((i,) for i in chunk_ids))
    vec.delete(conn, chunk_ids, switch.table)


def swap(conn: apsw.Connection, switch: Staging) -> bool:
    """Make the staged vectors the searched ones, if every chunk has one; False if not yet."""
    done, total = counts(conn)
    if done < total:
        return False
    old = current(conn)
    conn.execute("DROP TABLE chunk_vectors")
    conn.execute(f"ALTER TABLE {STAGED} RENAME TO chunk_vectors")
    conn.execute(f"DROP TABLE IF EXISTS {old.table}")
    _set(conn, DIM_META, str(switch.to.dim))
    _set(conn, vec.SCALE_META, repr(switch.scale))
    _set(conn, vec.GENERATION_META, str(switch.generation))
    record(conn, switch.to)
    conn.execute("DELETE FROM meta WHERE key = ?", (SWITCH_META,))
    return True


def problems(conn: apsw.Connection) -> dict[str, str]:
    """Row-link checks of a switch under way, as `Store.integrity_problems` runs them."""
    switch = staging(conn)
    if switch is None:
        return {}
    return {
        "staged vectors without a chunk": f"SELECT count(*) FROM {STAGED} s"
        " WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = s.chunk_id)",
        "staged vectors without staged codes": f"SELECT (SELECT count(*) FROM {STAGED})"
        f" - (SELECT count(*) FROM {switch.table})",
        "staged codes without a staged vector": f"SELECT count(*) FROM {switch.table} t"
        f" WHERE NOT EXISTS (SELECT 1 FROM {STAGED} s WHERE s.chunk_id = t.rowid)",
    }
