"""Conversation turns that quote or cite a document, found and forgotten when it is deleted.

A stored answer keeps the text of the chunks it cites (with their path) and often repeats their
words, so deleting a document must reach into the conversations too (../shared/security.md item
27). A turn *cites* the document when one of its citations names the document's id or path; it
*quotes* it when it shares a run of `QUOTE_WORDS` words with one of the document's chunks (the
user's questions are checked the same way: a pasted paragraph is the document's text).

`scrub` (the default) keeps the turn but replaces its text with `SCRUBBED` and drops the
citations of the document; `delete` deletes the turn, and a conversation left with no turn.
Runs inside the caller's transaction, on the connection it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import apsw

HISTORY_CHOICES = ("scrub", "delete")
QUOTE_WORDS = 8
"""A run of this many words shared with the document counts as quoting it."""
SCRUBBED = "[removed: this turn quoted or cited a document that was deleted]"
_WORD = re.compile(r"\w+")


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1)}


def _cites(citation: Any, doc_id: int, path: str) -> bool:
    return isinstance(citation, dict) and (
        citation.get("doc_id") == doc_id or citation.get("path") == path
    )


def forget_document(
    conn: apsw.Connection, doc_id: int, path: str, chunk_texts: Iterable[str], mode: str
) -> int:
    """Scrub or delete every turn that quotes or cites the document; how many there were."""
    if mode not in HISTORY_CHOICES:
        raise ValueError(f"history must be one of {HISTORY_CHOICES}, not {mode!r}")
    quoted: set[tuple[str, ...]] = set()
    for text in chunk_texts:
        quoted |= _shingles(text)
    touched: dict[int, list[Any]] = {}
    for turn_id, text, citations in conn.execute("SELECT id, text, citations FROM turns"):
        cited = json.loads(citations or "[]")
        if any(_cites(c, doc_id, path) for c in cited) or not quoted.isdisjoint(_shingles(text)):
            touched[turn_id] = [c for c in cited if not _cites(c, doc_id, path)]
    for turn_id, kept in touched.items():
        if mode == "scrub":
            conn.execute(
                "UPDATE turns SET text = ?, citations = ? WHERE id = ?",
                (SCRUBBED, json.dumps(kept), turn_id),
            )
        else:
            conn.execute("DELETE FROM turns WHERE id = ?", (turn_id,))
    if mode == "delete" and touched:
        conn.execute(
            "DELETE FROM conversations WHERE id NOT IN (SELECT DISTINCT conversation_id FROM turns)"
        )
    return len(touched)
