"""The Evaluate screen: a job's progress (making questions, comparing), then the compare's table
and its chart (quality against latency), drawn in characters so it reads in any terminal.

It only shows: the app runs the job in a worker and calls `step()`, `show()` and `say()`.
Closing it (Escape) sets `cancelled`, so the job stops at its next answer; a compare keeps the
answers it has, and running it again resumes.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from localrag.display import visible
from localrag.tui.job_progress import JobProgress
from localrag.tui.tables import refill


class EvaluateScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.cancelled = threading.Event()
        """Set when the user closes the screen: the job stops at its next step."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="evaluate-box"):
            yield Label(self.title_text, id="evaluate-title", markup=False)
            yield JobProgress(id="evaluate-job", classes="job-progress")
            # Hidden until a compare is shown: making questions needs neither.
            table: DataTable[str] = DataTable(id="compare-table", show_cursor=False)
            plot = Static("", id="compare-chart", markup=False)
            table.display = plot.display = False
            yield table
            yield plot
            yield Static("", id="evaluate-notes", markup=False)

    def start(self, title: str, status: str) -> None:
        self.query_one(JobProgress).start(title, status)

    def step(self, done: int, total: int, status: str) -> None:
        self.query_one(JobProgress).step(done, total, status)

    def say(self, text: str) -> None:
        """A line under the table (what happened, or what to do next)."""
        self.query_one(JobProgress).stop()
        self.query_one("#evaluate-notes", Static).update(visible(text))

    def show(self, result: dict[str, Any]) -> None:
        """The compare's table, its chart and its recommendation."""
        from localrag.evaluate.report import rows

        # A configuration per column, a figure per row: eleven figures side by side would not
        # fit 80 columns, four configurations do.
        titles, cells = rows(result)
        names, *figures = zip(*cells, strict=True)
        table = self.query_one("#compare-table", DataTable)
        by_figure = [([t, *f], None) for t, f in zip(titles[1:], figures, strict=True)]
        refill(table, by_figure, ["", *names])
        drawn = self.query_one("#compare-chart", Static)
        drawn.update(chart(result["configurations"]))
        table.display = drawn.display = True
        source = visible(str(result.get("source")))
        lines = [f"{source}: {result['questions']} questions", *result["recommendation"]]
        self.say("\n".join(lines))

    def action_close(self) -> None:
        self.cancelled.set()
        self.dismiss(None)


_COLOURS = ("bold cyan", "bold magenta", "bold green", "bold yellow")


def chart(configs: list[dict[str, Any]]) -> Text:
    """The compare's chart, each configuration's number in its own colour on the plot and in
    the legend."""
    from localrag.evaluate.text_chart import draw

    drawn = draw(configs, width=64, height=9)
    lines = [Text(line) for line in drawn.lines]
    for mark in drawn.marks:
        colour = _COLOURS[(mark.number - 1) % len(_COLOURS)]
        lines[mark.line].stylize(colour, mark.column, mark.column + 1)
    return Text("\n").join(lines)
