"""Question sets made from the vault, and the answers of `eval compare`, in the vault.

Both hold the user's text (questions made from their documents, answers quoting them), so they
live only here, encrypted with the rest, never in a file. A compare keeps each answer as soon
as it is scored (`add_record`), so that the same command run again after Ctrl-C resumes where
it stopped (`start_run` hands back the answers of an unfinished run with the same key).

Deleting a document deletes the questions made from it and every stored compare (whose answers
may quote it): `forget_document`, inside the deleting transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import apsw

from localrag.errors import UsageError
from localrag.records import QaItem, QaSet
from localrag.store import schema

Write = Callable[[], AbstractContextManager[apsw.Connection]]
Read = Callable[..., list[Any]]


def forget_document(conn: apsw.Connection, doc_id: int) -> None:
    """Inside the caller's transaction: the questions made from the document, and every stored
    compare, go with it."""
    conn.execute("DELETE FROM qa_items WHERE doc_id = ?", (doc_id,))
    conn.execute("DELETE FROM eval_records")
    conn.execute("DELETE FROM eval_runs")


class Evaluations:
    """The question sets and compare runs of one open vault."""

    def __init__(self, write: Write, read: Read) -> None:
        self._write = write
        self._read = read

    # -- question sets -----------------------------------------------------------------------

    def save_set(self, name: str, items: Sequence[QaItem], meta: dict[str, Any]) -> QaSet:
        """Store a set under a new name, with its questions, in one transaction."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM qa_sets WHERE name = ?", (name,)).fetchone():
                raise UsageError(
                    f"a question set named {name!r} exists; choose another name "
                    f"or delete it with `localrag eval sets --delete {name}`"
                )
            set_id = conn.execute(
                "INSERT INTO qa_sets (name, meta, created_at) VALUES (?, ?, ?) RETURNING id",
                (name, json.dumps(meta), schema.now()),
            ).get
            for ordinal, item in enumerate(items):
                conn.execute(
                    "INSERT INTO qa_items (set_id, ordinal, question, answers, kind, doc_id,"
                    " chunk_id, held_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        set_id,
                        ordinal,
                        item.question,
                        json.dumps(list(item.answers)),
                        item.kind,
                        item.doc_id,
                        item.chunk_id,
                        int(item.held_out),
                    ),
                )
        found = self.set_info(name)
        assert found is not None
        return found

    def sets(self) -> list[QaSet]:
        rows = self._read(
            "SELECT s.name, s.created_at, count(i.id), coalesce(sum(i.kind = 'unanswerable'), 0),"
            " coalesce(sum(i.held_out), 0), s.meta FROM qa_sets s"
            " LEFT JOIN qa_items i ON i.set_id = s.id GROUP BY s.id ORDER BY s.created_at, s.id"
        )
        return [QaSet(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), json.loads(r[5])) for r in rows]

    def set_info(self, name: str) -> QaSet | None:
        return next((s for s in self.sets() if s.name == name), None)

    def items(self, name: str) -> list[QaItem]:
        """The questions of a set, in order; a usage error names the sets there are."""
        if self.set_info(name) is None:
            known = ", ".join(s.name for s in self.sets()) or "none yet"
            raise UsageError(
                f"no question set named {name!r} (sets: {known}); make one with "
                "`localrag eval make-qa --name NAME`"
            )
        rows = self._read(
            "SELECT i.question, i.answers, i.kind, i.doc_id, i.chunk_id, i.held_out"
            " FROM qa_items i JOIN qa_sets s ON s.id = i.set_id WHERE s.name = ?"
            " ORDER BY i.ordinal",
            (name,),
        )
        return [QaItem(r[0], tuple(json.loads(r[1])), r[2], r[3], r[4], bool(r[5])) for r in rows]

    def delete_set(self, name: str) -> bool:
        with self._write() as conn:
            set_id = conn.execute("SELECT id FROM qa_sets WHERE name = ?", (name,)).get
            if set_id is None:
                return False
            conn.execute("DELETE FROM qa_items WHERE set_id = ?", (set_id,))
            conn.execute("DELETE FROM qa_sets WHERE id = ?", (set_id,))
        return True

    # -- compare runs ------------------------------------------------------------------------

    def start_run(
        self, key: str, meta: dict[str, Any]
    ) -> tuple[int, dict[tuple[str, int], dict[str, Any]]]:
        """(run id, the answers kept so far by config and question number): an unfinished run
        with this key resumes; else a new one starts, and older runs with the key are dropped."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM eval_runs WHERE key = ? AND finished_at IS NULL"
                " ORDER BY id DESC LIMIT 1",
                (key,),
            ).get
            if row is None:
                old = "SELECT id FROM eval_runs WHERE key = ?"
                conn.execute(f"DELETE FROM eval_records WHERE run_id IN ({old})", (key,))
                conn.execute("DELETE FROM eval_runs WHERE key = ?", (key,))
                row = conn.execute(
                    "INSERT INTO eval_runs (key, meta, created_at) VALUES (?, ?, ?) RETURNING id",
                    (key, json.dumps(meta), schema.now()),
                ).get
        records = self._read(
            "SELECT config, ordinal, record FROM eval_records WHERE run_id = ?", (row,)
        )
        return int(row), {(r[0], int(r[1])): json.loads(r[2]) for r in records}

    def add_record(self, run_id: int, config: str, ordinal: int, record: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO eval_records (run_id, config, ordinal, record)"
                " VALUES (?, ?, ?, ?)",
                (run_id, config, ordinal, json.dumps(record)),
            )

    def finish_run(self, run_id: int, result: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE eval_runs SET result = ?, finished_at = ? WHERE id = ?",
                (json.dumps(result), schema.now(), run_id),
            )

    def last_result(self) -> dict[str, Any] | None:
        """The result of the compare that finished last, if any."""
        rows = self._read(
            "SELECT result FROM eval_runs WHERE finished_at IS NOT NULL"
            " ORDER BY finished_at DESC, id DESC LIMIT 1"
        )
        return json.loads(rows[0][0]) if rows else None
