"""The compare's chart in characters: overall F1 against median latency, for a terminal.

`report.chart` draws the same figure as a PNG, which needs an image viewer; this one reads in
any terminal, tmux and ssh included, at any colour depth. Each configuration is its number on the
plot and in the legend under it; `Chart.marks` says where each number is, so the app can colour
a configuration's number alike on the plot and in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from localrag.evaluate.report import p50, quality

_Y_TICKS = (1.0, 0.75, 0.5, 0.25, 0.0)
_Y_LABEL = 5
"""Characters left of the y axis: a tick's label ("0.75") and a space."""


@dataclass(frozen=True)
class Mark:
    """Where one configuration's number is: its line of the chart and the column in it."""

    line: int
    column: int
    number: int
    """1 for the first configuration; its index in the legend, counted from 1."""


@dataclass(frozen=True)
class Chart:
    lines: list[str]
    marks: list[Mark]
    """Every configuration's number, on the plot and in the legend (the last line)."""


def _nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that holds `value` with room."""
    value = max(value * 1.1, 1.0)
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def draw(configs: Sequence[dict[str, Any]], width: int = 64, height: int = 13) -> Chart:
    """A chart no wider than `width` characters, with `height` lines of plot (at least 5)."""
    width, height = max(width, _Y_LABEL + 31), max(height, len(_Y_TICKS))
    plot_width = width - _Y_LABEL - 1 - len(" ms")
    top = _nice_top(max((p50(c) for c in configs), default=0.0))
    grid = [[" "] * plot_width for _ in range(height)]
    marks: list[Mark] = []
    for number, config in enumerate(configs, start=1):
        row = round((1 - min(max(quality(config), 0.0), 1.0)) * (height - 1))
        column = min(round(p50(config) / top * (plot_width - 1)), plot_width - 1)
        # Two configurations alike in both figures would hide one: the later moves aside.
        while grid[row][column] != " " and column < plot_width - 1:
            column += 1
        grid[row][column] = str(number)
        marks.append(Mark(row + 1, _Y_LABEL + 1 + column, number))
    tick_rows = {round((1 - y) * (height - 1)): y for y in _Y_TICKS}
    lines = ["overall F1 against the median answer time"]
    for row, cells in enumerate(grid):
        tick = tick_rows.get(row)
        label = " " * _Y_LABEL + "│" if tick is None else f"{tick:>{_Y_LABEL - 1}.2f} ┤"
        lines.append(label + "".join(cells).rstrip())
    axis = ["─"] * plot_width
    axis[plot_width // 2] = axis[-1] = "┬"
    lines.append(" " * _Y_LABEL + "└" + "".join(axis))
    right, middle = f"{top:g}", f"{top / 2:g}"
    scale = [" "] * plot_width
    scale[0] = "0"
    at = plot_width // 2 - len(middle) // 2
    scale[at : at + len(middle)] = middle
    scale[plot_width - len(right) :] = right
    lines.append(" " * (_Y_LABEL + 1) + "".join(scale) + " ms")
    legend = ""
    for number, config in enumerate(configs, start=1):
        legend += "  " if legend else ""
        marks.append(Mark(len(lines), len(legend), number))
        legend += f"{number} {config['name']}"
    lines.append(legend)
    return Chart(lines, marks)
