"""FTS5's BM25, reproduced so that a big vault's common query words can be scored on few rows.

FTS5 scores an OR query on every row that holds any of its words: at 100,000 chunks a query with
a word like "cells" (in 44 % of them) scores 60,000 rows, 30-95 ms here. Rows that lead a
ranking hold the query's rare words, so `Store.keyword` lets FTS5 rank only by the rare words
(up to a budget of rows) and adds each common word's share to the best of those rows here. BM25
is a sum over the query's words, so a row's score is then exactly FTS5's for the whole query; only
a row holding none of the rare words can be missed. The formula is that of FTS5's `bm25()`
(`fts5_aux.c`): k1 = 1.2, b = 0.75, every column weighted 1, the idf floored at 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Term:
    """One query word as the index sees it."""

    word: str
    """As the user wrote it (lower case)."""
    token: str | None
    """Its one index token (stemmed); None when the tokenizer makes it several (kept in FTS5)."""
    rows: int
    """Rows that hold it."""


def idf(rows: int, total_rows: int) -> float:
    return max(math.log((total_rows - rows + 0.5) / (rows + 0.5)), 1e-6)


def split(terms: Sequence[Term], row_budget: int) -> tuple[list[Term], list[Term]]:
    """(ranked by FTS5, added here): the rarest words while their rows fit the budget, the rest.

    At least one word is always ranked by FTS5; a word the index does not hold is dropped.
    """
    ranked: list[Term] = []
    added: list[Term] = []
    rows = 0
    for term in sorted(terms, key=lambda t: t.rows):
        if term.rows == 0 and term.token is not None:
            continue
        if not ranked or term.token is None or rows + term.rows <= row_budget:
            ranked.append(term)
            rows += term.rows
        else:
            added.append(term)
    return ranked, added


def add_scores(
    score: float,
    tokens: Sequence[str],
    terms: Sequence[Term],
    total_rows: int,
    mean_tokens: float,
) -> float:
    """`score` plus the BM25 share of `terms` in a row of these (index) tokens."""
    for term in terms:
        freq = tokens.count(term.token) if term.token is not None else 0
        if freq:
            norm = K1 * (1 - B + B * len(tokens) / mean_tokens)
            score += idf(term.rows, total_rows) * freq * (K1 + 1) / (freq + norm)
    return score


def varints(data: bytes) -> list[int]:
    """SQLite's variable-length integers, one after another (the encoding FTS5's records use)."""
    values: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for n in range(9):
            byte = data[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values
