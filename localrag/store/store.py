"""`Store`: everything the vault holds, behind methods; the only module that writes SQL for it.

One document is one transaction over its row, chunks, float vectors, their int8 codes (`vec0`),
FTS5 rows (kept by triggers) and transcript. Both searches run inside the encrypted file: the
vector KNN in sqlite-vec (`vectors.py`), the keyword search in FTS5 (`keywords.py`); a
long-lived process may keep the vectors' codes in memory for the KNN's candidates (`warm.py`).
The vault records which embedder made its vectors and refuses vectors or queries from another
one; a switch of embedder re-embeds into a staging area and swaps it in at once
(`embeddings.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from localrag.errors import UsageError, VaultError
from localrag.records import (
    Chunk,
    Conversation,
    Document,
    EmbedderInfo,
    EmbedderSwitch,
    NewChunk,
    NewDocument,
    Segment,
    Span,
    Turn,
)
from localrag.store import conversations, db, embeddings, evaluations, partials, schema, warm
from localrag.store import vectors as vec
from localrag.store.keywords import KEYWORD_ROW_BUDGET, KeywordIndex

log = logging.getLogger(__name__)

BLOB_PART_BYTES = 1 << 20
"""Largest row of a stored blob: big files stream in and out 1 MiB at a time."""
_CHUNK_COLUMNS = (
    "c.id, c.doc_id, d.path, c.ordinal, c.text, c.page, c.line_start, c.line_end, "
    "c.char_start, c.char_end, c.heading, c.start_s, c.end_s, d.kind, "
    # The speaker's name if the user gave one, else the label diarization gave.
    "coalesce((SELECT n.name FROM speaker_names n WHERE n.doc_id = c.doc_id"
    " AND n.label = c.speaker), c.speaker)"
)
_DOC_COLUMNS = "id, path, sha256, kind, size_bytes, title, chunk_count, added_at, meta"


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob (an adapter or a merged model), without its bytes."""

    name: str
    size_bytes: int
    sha256: str
    """Hash of the whole content."""
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)


def _chunk(row: Sequence[Any]) -> Chunk:
    page, line_start, line_end, char_start, char_end, heading, start_s, end_s = row[5:13]
    span = Span(page, line_start, line_end, char_start, char_end, heading, start_s, end_s, row[14])
    return Chunk(row[0], row[1], row[2], row[3], row[4], span, row[13])


def _blob_info(row: Sequence[Any]) -> BlobInfo:
    return BlobInfo(row[0], row[1], row[2], row[3], json.loads(row[4]))


def _document(row: Sequence[Any]) -> Document:
    return Document(*row[:8], meta=json.loads(row[8]))  # type: ignore[misc]


class VectorsChanged(VaultError):
    """The vault's vectors are not the query embedder's: another embedder's were swapped in (by
    another process, or a thread) since the caller chose its embedder. Choose again."""


class Store:
    """One open vault, safe to share between threads (one transaction at a time); close it."""

    def __init__(self, conn: apsw.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        # One connection serves every thread (the TUI's workers): one transaction at a time.
        self._lock = threading.RLock()
        self._keywords = KeywordIndex(self._read, conn)
        self._warm: warm.WarmVectors | None = None
        """Every vector's code in memory, once `keep_vectors_warm` asked for it."""
        self._keep_warm = False
        self._warming: threading.Thread | None = None
        self.use_warm_vectors = True
        """Whether searches use the codes kept in memory, once built (False: always `vec0`;
        the benchmark compares both paths this way)."""
        self.evaluations = evaluations.Evaluations(self._write, self._read)
        """Question sets made from the vault and the answers of `eval compare`."""
        self.partials = partials.PartialWindows(self._write, self._read)
        """The finished windows of recordings still being transcribed (so they resume)."""
        try:
            with self._errors():
                schema.migrate(conn, path)
        except BaseException:
            conn.close()  # the caller gets no Store to close, so the file would stay open
            raise

    @classmethod
    def open(
        cls, path: Path, data_key: bytearray | None, *, create: bool = False, vfs: str | None = None
    ) -> Store:
        """Open (or create) the vault at `path` with its raw data key (None: a plain file)."""
        return cls(db.connect(path, data_key, create=create, vfs=vfs), path)

    # -- transactions and errors -------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's failures into errors a user can act on."""
        try:
            yield
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            raise VaultError(
                f"{self.path}: the vault is damaged or was altered ({exc}); "
                "restore it from a backup"
            ) from exc
        except apsw.BusyError as exc:
            raise VaultError(
                f"{self.path}: the vault is busy (another localrag is writing to it); "
                "nothing was changed; retry when it is done"
            ) from exc
        except (apsw.FullError, apsw.IOError, apsw.CantOpenError, apsw.ReadOnlyError) as exc:
            raise VaultError(
                f"{self.path}: could not write the vault ({exc}); nothing was changed; "
                "free disk space or check the folder's permissions, then retry"
            ) from exc

    @contextmanager
    def _write(self) -> Iterator[apsw.Connection]:
        """One write transaction: everything in it is stored, or nothing."""
        with self._lock, self._errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back after some errors (a failed COMMIT, disk full).
                if not self.conn.get_autocommit():
                    self.conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _write_beside_search(self) -> Iterator[apsw.Connection]:
        """A write transaction that leaves the searched vectors as they are (a switch's start and
        staged vectors): codes kept in memory that were current before it stay current, instead
        of being rebuilt after every batch. No other writer commits inside the transaction."""
        with self._write() as conn:
            searched = embeddings.current(conn)
            before = self._vault_state(conn, searched)
            yield conn
            index = self._warm
            if index is not None and index.state == before and embeddings.current(conn) == searched:
                self._warm = replace(index, state=self._vault_state(conn, searched))

    def _read(self, sql: str, bindings: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._lock, self._errors():
            return self.conn.execute(sql, bindings).fetchall()

    @contextmanager
    def _snapshot(self) -> Iterator[apsw.Connection]:
        """Reads that see one state of the vault, even while another process writes (WAL)."""
        with self._lock, self._errors():
            outside = self.conn.get_autocommit()  # inside a write transaction already: its own
            if outside:
                self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if outside and not self.conn.get_autocommit():
                    self.conn.execute("COMMIT")

    # -- documents ---------------------------------------------------------------------------

    @property
    def vector_dim(self) -> int | None:
        """Dimension of the searched vectors; None until the first document is added."""
        with self._snapshot() as conn:
            return embeddings.current(conn).dim

    def _ensure_vectors(self, dim: int, embedder: EmbedderInfo | None) -> embeddings.VectorSet:
        """The vectors new ones join (made with the first ones), inside a write transaction;
        a VaultError for vectors of another embedder, which would be searched as garbage."""
        now = embeddings.current(self.conn)
        if now.dim is None:
            vec.create(self.conn, dim, now.table)
            self.conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_dim', ?)", (str(dim),)
            )
            if embedder is not None:
                embeddings.record(self.conn, embedder)
            return embeddings.current(self.conn)
        made_by = now.embedder
        other = embedder is not None and made_by is not None and made_by != embedder
        if now.dim != dim or other:
            was = f"{made_by.name}, " if made_by else ""
            given = f"{embedder.name}, " if embedder else ""
            was, given = f"{was}{now.dim}-dimensional", f"{given}{dim}-dimensional"
            raise VaultError(
                f"{self.path}: the vault's vectors are from another embedder ({was}) than these"
                f" ({given}); nothing was stored. Use the vault's embedder, or switch the vault"
                " with `localrag models use NAME --role embedder`"
            )
        # A vault from before the record keeps none here: `embedder_choice` adopts an embedder
        # only once it has checked that it remakes the stored vectors.
        return now

    def add_document(
        self,
        doc: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: np.ndarray,
        transcript: list[Segment] | None = None,
        embedder: EmbedderInfo | None = None,
    ) -> int:
        """Store a document with its chunks and vectors in one transaction; return its id.

        A document already stored under the same path is replaced in that same transaction.
        `embedder` made the vectors: the vault records it with its first vectors and refuses
        another's (None: vectors made up by a test or a benchmark; only their size is checked).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise ValueError(
                f"{len(chunks)} chunks need {len(chunks)} vectors, got {vectors.shape}"
            )
        chunk_ids: list[int] = []
        with self._write() as conn:
            target = self._ensure_vectors(vectors.shape[1], embedder) if len(chunks) else None
            old = conn.execute("SELECT id FROM documents WHERE path = ?", (doc.path,)).get
            if old is not None:
                self._delete(old)
            doc_id = conn.execute(
                "INSERT INTO documents (path, sha256, kind, size_bytes, title, meta, chunk_count,"
                " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    doc.path,
                    doc.sha256,
                    doc.kind,
                    doc.size_bytes,
                    doc.title,
                    json.dumps(doc.meta),
                    len(chunks),
                    schema.now(),
                ),
            ).get
            for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
                s = chunk.span
                chunk_id = conn.execute(
                    "INSERT INTO chunks (doc_id, ordinal, text, text_sha256, page, line_start,"
                    " line_end, char_start, char_end, heading, start_s, end_s, token_count,"
                    " speaker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        doc_id,
                        ordinal,
                        chunk.text,
                        text_sha256(chunk.text),
                        s.page,
                        s.line_start,
                        s.line_end,
                        s.char_start,
                        s.char_end,
                        s.heading,
                        s.start_s,
                        s.end_s,
                        chunk.token_count,
                        s.speaker,
                    ),
                ).get
                conn.execute(
                    "INSERT INTO chunk_vectors (chunk_id, vector) VALUES (?, ?)",
                    (chunk_id, vector.tobytes()),
                )
                chunk_ids.append(chunk_id)
            if chunk_ids and target is not None:
                vec.insert(conn, chunk_ids, vectors, target.scale, target.table)
            if transcript is not None:
                conn.execute(
                    "INSERT INTO transcripts (doc_id, segments) VALUES (?, ?)",
                    (doc_id, json.dumps([_segment_row(s) for s in transcript])),
                )
            partials.forget(conn, doc.sha256)  # the document is whole: no window waits
        log.info("stored document %d (%d chunks)", doc_id, len(chunks))
        return int(doc_id)

    def _delete(self, doc_id: int) -> list[int]:
        """Delete every row of a document (inside a transaction); return its chunk ids."""
        conn = self.conn
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
        now = embeddings.current(conn)
        if ids and now.dim is not None:
            vec.delete(conn, ids, now.table)
        embeddings.forget(conn, ids)
        conn.execute(
            "DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
            (doc_id,),
        )
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))  # triggers clear FTS5
        conn.execute("DELETE FROM transcripts WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM speaker_names WHERE doc_id = ?", (doc_id,))
        conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return ids

    def delete_document(self, doc_id: int, history: str = "scrub") -> int:
        """Remove a document completely: chunks, vectors, FTS entries, transcript, the
        conversation turns that quote or cite it (`history`: "scrub" or "delete" them, see
        `conversations.py`), the questions made from it and the stored compares (see
        `evaluations.py`); returns how many turns that was.

        Freed pages are overwritten (`secure_delete`), FTS5 runs in `secure-delete` mode, and the
        WAL is checkpointed so the old pages do not linger in it.
        """
        with self._write() as conn:
            row = conn.execute("SELECT path FROM documents WHERE id = ?", (doc_id,)).fetchone()
            rows = conn.execute("SELECT text FROM chunks WHERE doc_id = ?", (doc_id,))
            texts = [r[0] for r in rows]
            path = row[0] if row else ""
            turns = conversations.forget_document(conn, doc_id, path, texts, history)
            evaluations.forget_document(conn, doc_id)
            self._delete(doc_id)
        self.checkpoint()
        return turns

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and empty it (so no old page lingers there)."""
        with self._lock, self._errors():
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def move_document(self, doc_id: int, new_path: str) -> None:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM documents WHERE path = ?", (new_path,)).fetchone():
                raise VaultError(f"{new_path}: another document is stored under this path")
            conn.execute("UPDATE documents SET path = ? WHERE id = ?", (new_path, doc_id))

    def documents_by_hash(self, sha256: str) -> list[Document]:
        """The documents with this content hash (identical files share one), oldest first."""
        rows = self._read(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE sha256 = ? ORDER BY id", (sha256,)
        )
        return [_document(r) for r in rows]

    def document(self, id_or_path: int | str) -> Document | None:
        """A document by id (an int, or a string of digits) or by path."""
        key = str(id_or_path)
        rows = self._read(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (key,))
        if not rows and key.isdigit():
            rows = self._read(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (int(key),))
        return _document(rows[0]) if rows else None

    def documents(self) -> list[Document]:
        return [
            _document(r) for r in self._read(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY path")
        ]

    def transcript(self, doc_id: int) -> list[Segment]:
        """The segments of a recording, each with its speaker's name (see `speaker_names`)."""
        rows = self._read("SELECT segments FROM transcripts WHERE doc_id = ?", (doc_id,))
        if not rows:
            return []
        names = self.speaker_names(doc_id)
        segments = [Segment(*s) for s in json.loads(rows[0][0])]
        return [
            replace(s, speaker=names.get(s.speaker, s.speaker)) if s.speaker else s
            for s in segments
        ]

    def speaker_names(self, doc_id: int) -> dict[str, str]:
        """The names the user gave the speakers of a recording, by label ("Speaker 2")."""
        rows = self._read("SELECT label, name FROM speaker_names WHERE doc_id = ?", (doc_id,))
        return {str(label): str(name) for label, name in rows}

    def rename_speaker(
        self, doc_id: int, label: str, name: str, chunk_ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Call the speaker `label` of a recording `name`, in one transaction: the name table,
        the heading of their chunks (so keyword search finds the name) and those chunks'
        vectors, which `vectors` holds re-embedded under the new name, in `chunk_ids` order."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO speaker_names (doc_id, label, name) VALUES (?, ?, ?)"
                " ON CONFLICT (doc_id, label) DO UPDATE SET name = excluded.name",
                (doc_id, label, name),
            )
            conn.execute(
                "UPDATE chunks SET heading = ? WHERE doc_id = ? AND speaker = ?",
                (name, doc_id, label),
            )
            if not chunk_ids:
                return
            target = embeddings.current(conn)
            for chunk_id, vector in zip(chunk_ids, vectors, strict=True):
                conn.execute(
                    "UPDATE chunk_vectors SET vector = ? WHERE chunk_id = ?",
                    (vector.tobytes(), chunk_id),
                )
            if target.dim is not None:
                vec.delete(conn, list(chunk_ids), target.table)
                vec.insert(conn, list(chunk_ids), vectors, target.scale, target.table)

    # -- chunks and search -------------------------------------------------------------------

    def vectors_by_text_and_heading(
        self, keys: Iterable[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], np.ndarray]:
        """Stored vectors by (text hash, heading path) of their chunks: the embedder reads a
        chunk behind its heading, so only a chunk with both the same can lend its vector."""
        rows = self._read(
            "WITH wanted(sha, heading) AS"
            " (SELECT DISTINCT value ->> 0, value ->> 1 FROM json_each(:keys))"
            " SELECT w.sha, w.heading, v.vector FROM wanted w"
            " JOIN chunks c ON c.text_sha256 = w.sha AND c.heading IS w.heading"
            " JOIN chunk_vectors v ON v.chunk_id = c.id",
            {"keys": json.dumps(list(keys))},
        )
        found: dict[tuple[str, str | None], np.ndarray] = {}
        for sha, heading, blob in rows:
            found.setdefault((sha, heading), np.frombuffer(blob, dtype=np.float32).copy())
        return found

    def knn(
        self,
        vector: np.ndarray,
        k: int,
        candidates: int | None = None,
        fingerprint: str | None = None,
    ) -> list[tuple[int, float]]:
        """The `k` nearest chunks by cosine similarity (for unit vectors: the dot product).

        sqlite-vec finds candidates by the int8 codes inside the vault, then their float vectors
        rescore them exactly (see `vectors.py`); nothing else is loaded into memory. A process
        that asked to `keep_vectors_warm` finds them in memory instead, while its codes are
        current (`warm.py`); the rescoring is the same. `candidates` overrides how many are
        rescored (for the benchmark's sweep).
        `fingerprint` is the query embedder's: `VectorsChanged` if the vault's vectors are
        another's (a switch swapped them in since the caller chose), checked in the same
        snapshot as the search.
        """
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        # The scan of the codes in memory needs no lock: it runs while another thread's
        # statement (the keyword search) holds the vault; the codes are checked below.
        index = self._warm if self.use_warm_vectors else None
        near = None
        if index is not None and k > 0 and query.shape[0] == index.center.shape[0]:
            near = index.nearest(query, candidates or warm.candidates(k))
        with self._snapshot() as conn:
            now = embeddings.current(conn)
            if now.dim is None or k <= 0:
                return []
            made_by = now.embedder
            if made_by is not None and fingerprint not in (None, made_by.fingerprint):
                raise VectorsChanged(
                    f"{self.path}: the vault's vectors are from the embedder {made_by.name},"
                    " not the one this query was embedded with; search again"
                )
            if query.shape[0] != now.dim:
                raise VaultError(
                    f"{self.path}: a {query.shape[0]}-dimensional query against {now.dim}-"
                    "dimensional vectors; use the embedder the vault was made with"
                )

            def read(sql: str, bindings: Any) -> list[Any]:
                return conn.execute(sql, bindings).fetchall()

            fresh = self._warm is not None and self._warm.state == self._vault_state(conn, now)
            if near is not None and fresh and index is self._warm:
                return vec.knn_among(read, near, query, k)
            if self._keep_warm and not fresh:
                self._rebuild_warm()
            return vec.knn(read, query, k, now.scale, candidates, now.table)

    # -- vectors kept in memory by a long-lived process -----------------------------------------

    def keep_vectors_warm(self, on: bool = True, *, wait: bool = True) -> int:
        """Keep a code of every vector in memory for faster searches (`warm.py`): for a process
        that searches many times. Returns how many vectors it holds (0 until built, when
        `wait` is False: it is built in the background and searches use `vec0` meanwhile).

        It is rebuilt in the background whenever the vault changed (this connection's writes or
        another process's); until then searches use `vec0`, so a result is never stale.
        """
        self._keep_warm = on
        if not on:
            self._warm = None
            return 0
        if not wait:
            if not self.vectors_in_memory:
                self._rebuild_warm()
            return self.vectors_in_memory
        if self._warming is not None:
            self._warming.join()
        if not self.vectors_in_memory:
            self._warm = self._build_warm()
        return self.vectors_in_memory

    @property
    def vectors_in_memory(self) -> int:
        """How many vectors' codes are held in memory and current (0: searches use `vec0`)."""
        with self._snapshot() as conn:
            now = embeddings.current(conn)
            index = self._warm
            if index is None or now.dim is None or index.state != self._vault_state(conn, now):
                return 0
            return len(index)

    def _vault_state(self, conn: apsw.Connection, now: embeddings.VectorSet) -> tuple[Any, ...]:
        """Changes whenever the searched vectors may have: this connection's row changes, another
        connection's commits (`data_version`), the set of vectors searched."""
        version = conn.execute("PRAGMA data_version").get
        return (now.table, now.dim, conn.total_changes(), version)

    def _build_warm(self) -> warm.WarmVectors | None:
        with self._snapshot() as conn:
            now = embeddings.current(conn)
            state = self._vault_state(conn, now)
        if now.dim is None:
            return None

        stopped = threading.Event()

        def batch(after: int) -> list[Any]:
            if not self._keep_warm:  # closing, or no longer wanted: stop reading
                stopped.set()
                return []
            return self._read(
                "SELECT chunk_id, vector FROM chunk_vectors WHERE chunk_id > ?"
                " ORDER BY chunk_id LIMIT ?",
                (after, warm.BATCH),
            )

        built = warm.build(batch, now.dim, state)
        return None if stopped.is_set() else built

    def _rebuild_warm(self) -> None:
        """Build the codes again in a background thread, unless one is building them."""
        if self._warming is not None and self._warming.is_alive():
            return

        def work() -> None:
            try:
                built = self._build_warm()
            except Exception as exc:  # a closed vault, a damaged page: searches keep `vec0`
                log.warning("%s: vectors not kept in memory (%s)", self.path, exc)
                return
            if self._keep_warm:
                self._warm = built

        self._warming = threading.Thread(target=work, name="warm vectors", daemon=True)
        self._warming.start()

    def keyword(
        self, words: Sequence[str], k: int, row_budget: int = KEYWORD_ROW_BUDGET
    ) -> list[tuple[int, float]]:
        """The `k` best chunks holding any of `words`, by FTS5's BM25 (higher is better).

        Each word is quoted, so no user text is read as FTS5 syntax; see `keywords.py`.
        """
        return self._keywords.search(words, k, row_budget)

    def chunks(self, ids: Sequence[int]) -> list[Chunk]:
        """The chunks with these ids, in the order given (missing ids are left out)."""
        found: dict[int, Chunk] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self._read(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id"
                f" WHERE c.id IN ({marks})",
                part,
            ):
                found[row[0]] = _chunk(row)
        return [found[i] for i in ids if i in found]

    def neighbours(self, chunk_id: int, before: int = 1, after: int = 1) -> list[Chunk]:
        """The chunk with up to `before` chunks before it and `after` after it, in order."""
        return [
            _chunk(row)
            for row in self._read(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id"
                " JOIN chunks me ON me.id = ? AND c.doc_id = me.doc_id"
                " WHERE c.ordinal BETWEEN me.ordinal - ? AND me.ordinal + ? ORDER BY c.ordinal",
                (chunk_id, before, after),
            )
        ]

    # -- the embedder of the vectors, and a switch to another (see `embeddings.py`) ---------

    def embedder_info(self) -> EmbedderInfo | None:
        """The embedder that made the searched vectors; None before the first vector, or in a
        vault written before localrag recorded it."""
        with self._snapshot() as conn:
            return embeddings.current(conn).embedder

    def sample_vectors(self, n: int) -> list[tuple[str, str | None, np.ndarray]]:
        """The first `n` chunks with their searched vectors: (text, heading path, vector)."""
        rows = self._read(
            "SELECT c.text, c.heading, v.vector FROM chunks c"
            " JOIN chunk_vectors v ON v.chunk_id = c.id ORDER BY c.id LIMIT ?",
            (n,),
        )
        return [(t, h, np.frombuffer(v, dtype=np.float32)) for t, h, v in rows]

    def record_embedder(self, info: EmbedderInfo) -> None:
        """Record the embedder of a vault written before localrag recorded it (adopt)."""
        with self._write() as conn:
            now = embeddings.current(conn)
            if now.embedder is None and now.dim == info.dim:
                embeddings.record(conn, info)

    def embedder_switch(self) -> EmbedderSwitch | None:
        """The switch under way, with its progress; None if there is none."""
        with self._snapshot() as conn:
            switch = embeddings.staging(conn)
            if switch is None:
                return None
            done, total = embeddings.counts(conn)
        return EmbedderSwitch(switch.to, done, total, switch.started_at)

    def start_switch(self, to: EmbedderInfo) -> EmbedderSwitch | None:
        """Begin (or keep, to resume) a switch to `to`. A switch to another embedder is dropped
        first; a switch to the embedder of the vectors already searched is just that: None."""
        with self._write_beside_search() as conn:
            now = embeddings.current(conn)
            pending = embeddings.staging(conn)
            if now.embedder == to or now.dim is None:
                if pending is not None:
                    embeddings.drop(conn, pending)
                return None
            if pending is None or pending.to != to:
                embeddings.start(conn, to, schema.now())
        if pending is not None and pending.to != to:
            self.checkpoint()  # the dropped vectors' pages do not linger in the WAL
        return self.embedder_switch()

    def cancel_switch(self) -> bool:
        """Drop a switch under way and everything it staged; False if there was none."""
        with self._write() as conn:
            pending = embeddings.staging(conn)
            if pending is not None:
                embeddings.drop(conn, pending)
        if pending is not None:
            self.checkpoint()
        return pending is not None

    def _staging_to(self, conn: apsw.Connection, to: EmbedderInfo) -> embeddings.Staging:
        pending = embeddings.staging(conn)
        if pending is None or pending.to != to:
            raise VaultError(
                f"{self.path}: the switch to the embedder {to.name} was cancelled or changed by"
                " another localrag; nothing more was stored"
            )
        return pending

    def chunks_to_reembed(self, after_id: int, limit: int) -> list[tuple[int, str, str | None]]:
        """Chunks after `after_id` without a staged vector, by id: (id, text, heading path)."""
        with self._snapshot() as conn:
            return embeddings.todo(conn, after_id, limit)

    def staged_vectors_by_text_and_heading(
        self, keys: Iterable[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], np.ndarray]:
        """Staged vectors by (text hash, heading path) of their chunks (see
        `vectors_by_text_and_heading`)."""
        with self._snapshot() as conn:
            if embeddings.staging(conn) is None:
                return {}
            found = embeddings.staged_by_key(conn, keys)
        return {k: np.frombuffer(v, dtype=np.float32).copy() for k, v in found.items()}

    def stage_vectors(self, to: EmbedderInfo, ids: Sequence[int], vectors: np.ndarray) -> int:
        """Store the new vectors of these chunks, in one transaction; how many were stored
        (a chunk deleted since it was read is left out)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} chunks need {len(ids)} vectors, got {len(vectors)}")
        with self._write_beside_search() as conn:
            return embeddings.stage(conn, self._staging_to(conn, to), ids, vectors)

    def finish_switch(self, to: EmbedderInfo) -> bool:
        """Swap the staged vectors in and record `to`, in one transaction, if every chunk has
        its new vector; False if some do not (added since: re-embed them and call again)."""
        with self._write() as conn:
            done = embeddings.swap(conn, self._staging_to(conn, to))
        if done:
            self.checkpoint()  # the old vectors' pages do not linger in the WAL
        return done

    def chunk_ids(self) -> list[int]:
        """The id of every chunk, in order."""
        return [int(r[0]) for r in self._read("SELECT id FROM chunks ORDER BY id")]

    def document_chunks(self, doc_id: int) -> list[Chunk]:
        """All chunks of a document, in order."""
        return [
            _chunk(row)
            for row in self._read(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.doc_id"
                " WHERE c.doc_id = ? ORDER BY c.ordinal",
                (doc_id,),
            )
        ]

    # -- conversations -----------------------------------------------------------------------

    def new_conversation(self, title: str) -> int:
        now = schema.now()
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)"
                " RETURNING id",
                (title, now, now),
            ).get
        return int(row)

    def add_turn(
        self, conversation_id: int, role: str, text: str, citations: Sequence[dict[str, Any]] = ()
    ) -> int:
        now = schema.now()
        with self._write() as conn:
            if not conn.execute(
                "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone():
                raise UsageError(f"no conversation {conversation_id}")
            row = conn.execute(
                "INSERT INTO turns (conversation_id, role, text, citations, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (conversation_id, role, text, json.dumps(list(citations)), now),
            ).get
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return int(row)

    def conversations(self) -> list[Conversation]:
        return [
            Conversation(*row)
            for row in self._read(
                "SELECT c.id, c.title, c.created_at, c.updated_at,"
                " (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id)"
                " FROM conversations c ORDER BY c.updated_at DESC, c.id DESC"
            )
        ]

    def turns(self, conversation_id: int) -> list[Turn]:
        return [
            Turn(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))
            for row in self._read(
                "SELECT id, conversation_id, role, text, created_at, citations FROM turns"
                " WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            )
        ]

    def delete_conversation(self, conversation_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self.checkpoint()

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- blobs (adapters, merged models) -----------------------------------------------------

    def put_blob_stream(
        self, name: str, parts: Iterable[bytes], meta: dict[str, Any] | None = None
    ) -> BlobInfo:
        """Store a blob from an iterable of byte strings (any sizes), replacing one of that name."""
        digest = hashlib.sha256()
        size = 0
        created = schema.now()
        with self._write() as conn:
            self._delete_blob(name)
            blob_id = conn.execute(
                "INSERT INTO blobs (name, size_bytes, sha256, meta, created_at)"
                " VALUES (?, 0, '', ?, ?) RETURNING id",
                (name, json.dumps(meta or {}), created),
            ).get
            seq = 0
            pending = bytearray()
            for part in parts:
                digest.update(part)
                size += len(part)
                pending += part
                while len(pending) >= BLOB_PART_BYTES:
                    conn.execute(
                        "INSERT INTO blob_parts (blob_id, seq, data) VALUES (?, ?, ?)",
                        (blob_id, seq, bytes(pending[:BLOB_PART_BYTES])),
                    )
                    del pending[:BLOB_PART_BYTES]
                    seq += 1
            if pending or seq == 0:
                conn.execute(
                    "INSERT INTO blob_parts (blob_id, seq, data) VALUES (?, ?, ?)",
                    (blob_id, seq, bytes(pending)),
                )
            conn.execute(
                "UPDATE blobs SET size_bytes = ?, sha256 = ? WHERE id = ?",
                (size, digest.hexdigest(), blob_id),
            )
        return BlobInfo(name, size, digest.hexdigest(), created, dict(meta or {}))

    def put_blob(self, name: str, data: bytes, meta: dict[str, Any] | None = None) -> BlobInfo:
        return self.put_blob_stream(name, [data], meta)

    def iter_blob(self, name: str) -> Iterator[bytes]:
        """The blob's bytes, at most 1 MiB at a time."""
        rows = self._read("SELECT id FROM blobs WHERE name = ?", (name,))
        if not rows:
            raise VaultError(f"{self.path}: no stored blob named {name!r}")
        seq = 0
        while True:
            part = self._read(
                "SELECT data FROM blob_parts WHERE blob_id = ? AND seq = ?", (rows[0][0], seq)
            )
            if not part:
                return
            yield bytes(part[0][0])
            seq += 1

    def get_blob(self, name: str) -> bytes:
        return b"".join(self.iter_blob(name))

    def _delete_blob(self, name: str) -> bool:
        blob_id = self.conn.execute("SELECT id FROM blobs WHERE name = ?", (name,)).get
        if blob_id is not None:
            self.conn.execute("DELETE FROM blob_parts WHERE blob_id = ?", (blob_id,))
            self.conn.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))
        return blob_id is not None

    def set_meta_deleting_blobs(self, key: str, value: str, blobs: Sequence[str]) -> None:
        """Set a meta value and delete blobs in one transaction: a registry that stops naming
        files and the files themselves go together, or neither does."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            for name in blobs:
                self._delete_blob(name)
        self.checkpoint()

    def delete_blob(self, name: str) -> bool:
        """Delete a blob completely; False if there was none of that name."""
        with self._write():
            found = self._delete_blob(name)
        self.checkpoint()
        return found

    def blob(self, name: str) -> BlobInfo | None:
        rows = self._read(
            "SELECT name, size_bytes, sha256, created_at, meta FROM blobs WHERE name = ?", (name,)
        )
        return _blob_info(rows[0]) if rows else None

    def blobs(self) -> list[BlobInfo]:
        return [
            _blob_info(r)
            for r in self._read(
                "SELECT name, size_bytes, sha256, created_at, meta FROM blobs ORDER BY name"
            )
        ]

    # -- the whole vault ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        row = self._read(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),"
            " (SELECT count(*) FROM transcripts), (SELECT count(*) FROM conversations),"
            " (SELECT count(*) FROM turns), (SELECT count(*) FROM blobs),"
            " (SELECT coalesce(sum(size_bytes), 0) FROM blobs)"
        )[0]
        keys = (
            "documents",
            "chunks",
            "transcripts",
            "conversations",
            "turns",
            "blobs",
            "blob_bytes",
        )
        return dict(zip(keys, (int(v) for v in row), strict=True))

    def schema_version(self) -> int:
        with self._errors():
            return schema.current_version(self.conn)

    def integrity_problems(self) -> list[str]:
        """What `PRAGMA integrity_check`, FTS5's integrity check and the row links report."""
        problems = [r[0] for r in self._read("PRAGMA integrity_check") if r[0] != "ok"]
        try:
            self._read("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        except VaultError as exc:
            problems.append(f"fts5: {exc}")
        orphans = {
            "chunks without a document": "SELECT count(*) FROM chunks c"
            " WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.doc_id)",
            "chunks without a vector": "SELECT count(*) FROM chunks c"
            " WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id)",
            "vectors without a chunk": "SELECT count(*) FROM chunk_vectors v"
            " WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = v.chunk_id)",
            "documents with a wrong chunk count": "SELECT count(*) FROM documents d"
            " WHERE chunk_count != (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)",
            "transcripts without a document": "SELECT count(*) FROM transcripts t"
            " WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = t.doc_id)",
            "speaker names without a document": "SELECT count(*) FROM speaker_names n"
            " WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = n.doc_id)",
        }
        with self._snapshot() as conn:
            now = embeddings.current(conn)
            orphans.update(embeddings.problems(conn))
        if now.dim is not None:
            orphans["vector codes without a chunk"] = (
                f"SELECT count(*) FROM {now.table} v WHERE NOT EXISTS"
                " (SELECT 1 FROM chunks c WHERE c.id = v.rowid)"
            )
            orphans["chunks without vector codes"] = (
                f"SELECT (SELECT count(*) FROM chunks) - (SELECT count(*) FROM {now.table})"
            )
        for what, sql in orphans.items():
            n = self._read(sql)[0][0]
            if n:
                problems.append(f"{n} {what}")
        return problems

    def close(self) -> None:
        self._keep_warm = False
        if self._warming is not None:
            self._warming.join()
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _segment_row(s: Segment) -> list[Any]:
    """A transcript segment as stored: [start, end, text] and its speaker label if it has one."""
    row: list[Any] = [s.start_s, s.end_s, s.text]
    return [*row, s.speaker] if s.speaker else row


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
