"""The vault's schema, as migrations registered in order.

Each migration runs in one transaction together with the row that records it, so a vault is
always at exactly one version. A vault written by a newer localrag is refused, never altered.
The `vec0` table is not here: its dimension comes from the embedder, so the store creates it on
first use (see `Store._ensure_vectors` and `vectors.py`); a migration may rebuild it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw

from localrag.errors import VaultError

log = logging.getLogger(__name__)

V1 = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}',
    chunk_count INTEGER NOT NULL DEFAULT 0,
    added_at TEXT NOT NULL
);
CREATE INDEX documents_sha256 ON documents(sha256);

CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    page INTEGER,
    line_start INTEGER,
    line_end INTEGER,
    char_start INTEGER,
    char_end INTEGER,
    heading TEXT,
    start_s REAL,
    end_s REAL,
    token_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (doc_id, ordinal)
);
CREATE INDEX chunks_text_sha256 ON chunks(text_sha256);

-- The float vectors, for exact rescoring and for reuse by text hash; vec0 holds their signs.
CREATE TABLE chunk_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id),
    vector BLOB NOT NULL
);

CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading);
END;
CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading);
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;

CREATE TABLE transcripts (
    doc_id INTEGER PRIMARY KEY REFERENCES documents(id),
    segments TEXT NOT NULL
);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);
CREATE INDEX turns_conversation ON turns(conversation_id, id);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Adapters and merged models: stored in parts of at most 1 MiB so they stream in and out.
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE TABLE blob_parts (
    blob_id INTEGER NOT NULL REFERENCES blobs(id),
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (blob_id, seq)
);
"""


def v2_vector_codes(conn: apsw.Connection) -> None:
    """Vector search moves into sqlite-vec: int8 codes (`vec_codes`) replace the sign bits
    (`vec_chunks`), made from the float vectors the vault holds."""
    from localrag.store import vectors

    dim = conn.execute("SELECT value FROM meta WHERE key = 'vector_dim'").get
    conn.execute("DROP TABLE IF EXISTS vec_chunks")
    if dim is None:
        return  # no vector yet: the store makes the table with the first one
    import numpy as np

    scale = vectors.create(conn, int(dim))
    last = 0
    while True:
        rows: list[Any] = conn.execute(
            "SELECT chunk_id, vector FROM chunk_vectors WHERE chunk_id > ? ORDER BY chunk_id"
            " LIMIT 5000",
            (last,),
        ).fetchall()
        if not rows:
            return
        ids = [int(r[0]) for r in rows]
        floats = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        vectors.insert(conn, ids, floats.reshape(len(ids), -1), scale)
        last = ids[-1]


# Question sets made from the vault, and the answers of `eval compare` kept as they come so that
# an interrupted compare resumes. `IF NOT EXISTS`: a vault taken back to an older schema by hand
# (a test does) still upgrades.
V3_EVALUATIONS = """
CREATE TABLE IF NOT EXISTS qa_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS qa_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES qa_sets(id),
    ordinal INTEGER NOT NULL,
    question TEXT NOT NULL,
    answers TEXT NOT NULL DEFAULT '[]',
    kind TEXT NOT NULL,
    doc_id INTEGER,
    chunk_id INTEGER,
    held_out INTEGER NOT NULL DEFAULT 0,
    UNIQUE (set_id, ordinal)
);
CREATE INDEX IF NOT EXISTS qa_items_doc ON qa_items(doc_id);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS eval_records (
    run_id INTEGER NOT NULL REFERENCES eval_runs(id),
    config TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, config, ordinal)
);
"""


def v4_speakers(conn: apsw.Connection) -> None:
    """Who speaks: the speaker label of each chunk of a recording ("Speaker 2", fixed when it is
    stored) and the names the user gives them per document (`localrag speakers rename`). A
    chunk of a recording keeps its speaker's name in `heading` too, so keyword search finds it.
    Written to run again on a vault taken back to an older schema by hand (a test does)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(chunks)")}
    if "speaker" not in columns:
        conn.execute("ALTER TABLE chunks ADD COLUMN speaker TEXT")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS speaker_names (doc_id INTEGER NOT NULL REFERENCES"
        " documents(id), label TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (doc_id, label))"
    )


def v5_partial_windows(conn: apsw.Connection) -> None:
    """The finished windows of recordings whose transcription was interrupted (`partials.py`)."""
    from localrag.store.partials import V5_PARTIAL_WINDOWS

    conn.execute(V5_PARTIAL_WINDOWS)


Step = str | Callable[[apsw.Connection], None]
"""A migration: SQL, or a function of the connection."""

MIGRATIONS: list[tuple[int, Step]] = [
    (1, V1),
    (2, v2_vector_codes),
    (3, V3_EVALUATIONS),
    (4, v4_speakers),
    (5, v5_partial_windows),
]
"""(version, step), in order. Append; never edit a released one."""

LATEST = MIGRATIONS[-1][0]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_version(conn: apsw.Connection) -> int:
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type='table' AND name='schema_migrations'"
    ).fetchone()
    if not has_table:
        return 0
    return int(conn.execute("SELECT max(version) FROM schema_migrations").get or 0)


def _apply(conn: apsw.Connection, version: int, step: Step) -> None:
    """One migration and the row that records it, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if callable(step):
            step(conn)
        else:
            conn.execute(step)
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, now())
        )
        conn.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back after some errors (disk full, a failed COMMIT).
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        raise


def migrate(conn: apsw.Connection, path: Path) -> int:
    """Bring the vault to the latest schema; return the version it was at."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at TEXT)"
    )
    start = current_version(conn)
    if start > LATEST:
        raise VaultError(
            f"{path}: this vault was written by a newer localrag (schema {start}, this one knows "
            f"{LATEST}); upgrade localrag to open it"
        )
    at = start
    for version, step in MIGRATIONS:
        if version <= at:
            continue
        try:
            _apply(conn, version, step)
        except (apsw.SQLError, apsw.ConstraintError) as exc:
            # A broken migration is our bug, not the user's: say so, and that nothing was lost.
            raise VaultError(
                f"{path}: upgrading the vault to schema {version} failed ({exc}); it was left "
                f"intact at schema {at}; use the previous localrag and report this bug"
            ) from exc
        at = version
        log.info("%s: schema migrated to version %d", path, version)
    return start
