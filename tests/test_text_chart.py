"""The compare's chart in characters: each configuration where its figures put it."""

from __future__ import annotations

from localrag.evaluate.text_chart import draw


def config(name: str, overall_f1: float, p50_ms: float) -> dict:
    return {"name": name, "overall_f1": overall_f1, "latency_ms": {"p50": p50_ms}}


def test_a_better_configuration_is_higher_and_a_slower_one_further_right() -> None:
    configs = [config("base", 0.1, 300), config("base+retrieval", 0.6, 900)]
    chart = draw(configs, width=64, height=9)
    on_plot = {m.number: m for m in chart.marks if m.line < len(chart.lines) - 1}
    for mark in chart.marks:
        assert chart.lines[mark.line][mark.column] == str(mark.number)
    assert on_plot[2].line < on_plot[1].line
    assert on_plot[2].column > on_plot[1].column
    assert chart.lines[-1] == "1 base  2 base+retrieval"
    assert chart.lines[-2].rstrip().endswith("1000 ms")  # 900 ms, with room, on a round scale
    assert max(len(line) for line in chart.lines) <= 64


def test_configurations_with_the_same_figures_are_all_shown() -> None:
    configs = [config(name, 0.25, 500) for name in ("base", "adapter", "adapter+retrieval")]
    chart = draw(configs, width=64, height=9)
    plot = "".join(line[6:] for line in chart.lines[1:-3])  # right of the y axis
    assert sorted(c for c in plot if c.isdigit()) == ["1", "2", "3"]
    assert len({(m.line, m.column) for m in chart.marks}) == 6


def test_figures_outside_the_scale_stay_on_the_plot() -> None:
    chart = draw([config("base", 1.4, 0), config("adapter", -0.2, 20000)], width=10, height=2)
    first, second = (m for m in chart.marks if m.line < len(chart.lines) - 1)
    assert first.line == 1  # the top line of the plot
    assert second.line == len(chart.lines) - 4  # its bottom line, above the axis and scale
    assert chart.lines[second.line].endswith("2")
