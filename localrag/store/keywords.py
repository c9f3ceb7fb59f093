"""Keyword search inside the vault: FTS5's BM25 over the chunks (porter stemming).

The query is any of its content words, each quoted so that no user text is read as FTS5 syntax.
In a vault of more than `KEYWORD_ROW_BUDGET` chunks FTS5 ranks by the query's rarer words only
(as many as fit in that many rows), and the words that fill most of the index are added to the
best `KEYWORD_RESCORED` of those rows with FTS5's own BM25 formula (`bm25.py`): the scores stay
FTS5's, and a query scores at most about that many rows instead of most of the index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import apsw

from localrag.store import bm25

KEYWORD_ROW_BUDGET = 10_000
"""Rows FTS5 may score for one keyword query; past it the commonest words are scored apart.
At 100,000 chunks a whole search went from p95 69-90 ms to 38-46 ms; on SciFact train, with the
budget at the same share of its rows, nDCG@10 0.7275-0.7294 against 0.7283 unpruned."""
KEYWORD_RESCORED = 100
"""Best rows of the rare words that the common words are added to."""

Read = Callable[..., list[Any]]
"""`read(sql, bindings)`: one statement under the store's lock, its rows."""


class KeywordIndex:
    """The FTS5 table `chunks_fts` of one connection, searched by BM25."""

    def __init__(self, read: Read, conn: apsw.Connection) -> None:
        self._read = read
        self._conn = conn
        self._tokenizer: Any = None
        """FTS5's own tokenizer of the index, for query words and rescored rows."""
        self._vocab = False
        """Whether this connection has the `fts5vocab` table of the index (in memory)."""

    def search(self, words: Sequence[str], k: int, row_budget: int) -> list[tuple[int, float]]:
        """The `k` best chunks holding any of `words`, by BM25 (higher is better)."""
        words = list(dict.fromkeys(w for w in words if w))
        if not words or k <= 0:
            return []
        # Each step takes the lock on its own, so that a vector search in another thread
        # waits for one statement, not for all of them.
        total_rows, total_tokens = self._totals()
        if total_rows <= row_budget:
            return self._bm25(words, k)
        ranked, added = bm25.split([self._term(w) for w in words], row_budget)
        if not added:
            return self._bm25([t.word for t in ranked], k)
        best = self._bm25([t.word for t in ranked], max(k, KEYWORD_RESCORED))
        texts = self._read(
            f"SELECT id, text, coalesce(heading, '') FROM chunks"
            f" WHERE id IN ({','.join('?' * len(best))})",
            [chunk_id for chunk_id, _ in best],
        )
        tokens = {row[0]: self.tokens(row[1]) + self.tokens(row[2]) for row in texts}
        mean = total_tokens / total_rows
        scored = [
            (i, bm25.add_scores(s, tokens.get(i, ()), added, total_rows, mean)) for i, s in best
        ]
        return sorted(scored, key=lambda item: -item[1])[:k]

    def _bm25(self, words: Sequence[str], k: int) -> list[tuple[int, float]]:
        query = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self._read(
            "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
            " ORDER BY score DESC LIMIT ?",
            (query, k),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def _totals(self) -> tuple[int, int]:
        """Rows in the keyword index and their tokens, from FTS5's averages record."""
        rows = self._read("SELECT block FROM chunks_fts_data WHERE id = 1")
        values = bm25.varints(bytes(rows[0][0])) if rows else []
        return (values[0], sum(values[1:])) if values else (0, 0)

    def tokens(self, text: str) -> list[str]:
        """`text` as the keyword index holds it: lower case, stemmed."""
        if self._tokenizer is None:
            self._tokenizer = self._conn.fts5_tokenizer("porter", ["unicode61"])
        found = self._tokenizer(
            text.encode("utf-8"), apsw.FTS5_TOKENIZE_DOCUMENT, None, include_offsets=False
        )
        return [t[0] for t in found]

    def _term(self, word: str) -> bm25.Term:
        """A query word with its index token and how many rows hold it."""
        tokens = self.tokens(word)
        if len(tokens) != 1:
            return bm25.Term(word, None, 0)
        if not self._vocab:
            self._read(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab"
                " USING fts5vocab(main, chunks_fts, row)"
            )
            self._vocab = True
        rows = self._read("SELECT doc FROM temp.chunks_vocab WHERE term = ?", (tokens[0],))
        return bm25.Term(word, tokens[0], int(rows[0][0]) if rows else 0)
