"""Refilling a DataTable with every column as wide as its widest cell."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Row = tuple[Sequence[str | Text], str | None]
"""A row's cells (a str cell is read as markup, as DataTable does) and its key (None: made up)."""


def _width(cell: str | Text) -> int:
    return (Text.from_markup(cell) if isinstance(cell, str) else cell).cell_len


def refill(
    table: DataTable, rows: Sequence[Row], labels: Sequence[str | Text] | None = None
) -> None:
    """Replace the table's rows, and its column labels if `labels` are given.

    Textual measures auto-width columns only when the table next idles, and rows drawn before
    that keep the old widths until something redraws them: after adding files, names were cut
    to "Name"'s four characters until the tab changed. Fixed widths are drawn right at once.
    """
    if labels is None:
        labels = [column.label for column in table.ordered_columns]
    table.clear(columns=True)
    for i, label in enumerate(labels):
        table.add_column(label, width=max([_width(label), *(_width(c[i]) for c, _ in rows)]))
    for cells, key in rows:
        table.add_row(*cells, key=key)
