"""The finished windows of a recording whose transcription has not finished, in the vault.

A transcript is the user's words and voice vectors are as telling (security.md 16), so what an
interrupted transcription has done waits here, encrypted with the rest, never in a file. Each
window is one row written in its own transaction (WAL, synchronous=FULL): once `keep` returns it
survives a kill. The rows are keyed by the file's hash, so the same file added again (even from
another path) resumes; they go in the transaction that stores the document (`forget`), and
when the same path is started with other content or another model (`finished`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import apsw
import numpy as np

from localrag.recording import WindowResult
from localrag.records import Segment
from localrag.speakers.diarize import Voices
from localrag.store import schema

Write = Callable[[], AbstractContextManager[apsw.Connection]]
Read = Callable[..., list[Any]]

V5_PARTIAL_WINDOWS = """
CREATE TABLE IF NOT EXISTS partial_windows (
    sha256 TEXT NOT NULL,
    recipe TEXT NOT NULL,
    path TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    segments TEXT NOT NULL,
    voice_regions TEXT,
    voice_vectors BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (sha256, ordinal)
);
CREATE INDEX IF NOT EXISTS partial_windows_path ON partial_windows(path);
"""
"""Schema 5. `IF NOT EXISTS`: a vault taken back to an older schema by hand still upgrades."""


def forget(conn: apsw.Connection, sha256: str) -> None:
    """Inside the caller's transaction (the one storing the document): its windows go."""
    conn.execute("DELETE FROM partial_windows WHERE sha256 = ?", (sha256,))


class PartialWindows:
    """`recording.SavedWindows` in one open vault."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    def finished(self, sha256: str, recipe: str, path: str) -> dict[int, WindowResult]:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM partial_windows WHERE (path = ? AND sha256 != ?)"
                " OR (sha256 = ? AND recipe != ?)",
                (path, sha256, sha256, recipe),
            )
        rows = self._read(
            "SELECT ordinal, start_s, end_s, segments, voice_regions, voice_vectors"
            " FROM partial_windows WHERE sha256 = ? ORDER BY ordinal",
            (sha256,),
        )
        return {int(r[0]): _result(r) for r in rows}

    def keep(self, sha256: str, recipe: str, path: str, result: WindowResult) -> None:
        regions, vectors = None, None
        if result.voices is not None:
            v = result.voices
            regions = json.dumps({"regions": v.regions, "described": v.described})
            vectors = np.ascontiguousarray(v.vectors, dtype=np.float32).tobytes()
        segments = [[s.start_s, s.end_s, s.text] for s in result.segments]
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO partial_windows (sha256, recipe, path, ordinal, start_s,"
                " end_s, segments, voice_regions, voice_vectors, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sha256,
                    recipe,
                    path,
                    result.index,
                    result.start_s,
                    result.end_s,
                    json.dumps(segments),
                    regions,
                    vectors,
                    schema.now(),
                ),
            )

    def drop(self, sha256: str) -> None:
        with self._write() as conn:
            forget(conn, sha256)

    def drop_path(self, path: str) -> int:
        """Forget the windows kept for a file by its path (`localrag rm` of a recording whose
        transcription never finished); how many there were."""
        with self._write() as conn:
            n = int(
                conn.execute("SELECT count(*) FROM partial_windows WHERE path = ?", (path,)).get
            )
            conn.execute("DELETE FROM partial_windows WHERE path = ?", (path,))
        return n

    def count(self) -> int:
        """How many windows wait for their document."""
        return int(self._read("SELECT count(*) FROM partial_windows")[0][0])


def _result(row: Any) -> WindowResult:
    ordinal, start_s, end_s, segments, regions, vectors = row
    voices = None
    if regions is not None:
        found = json.loads(regions)
        rows = len(found["described"])
        matrix = np.frombuffer(vectors, dtype=np.float32).reshape(rows, -1 if rows else 0)
        spans = [(int(a), int(b)) for a, b in found["regions"]]
        voices = Voices(spans, [int(i) for i in found["described"]], matrix)
    text = tuple(Segment(float(a), float(b), str(t)) for a, b, t in json.loads(segments))
    return WindowResult(int(ordinal), float(start_s), float(end_s), text, voices)
