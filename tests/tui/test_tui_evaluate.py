"""The palette's evaluation actions on the real `Assistant` and vault, with the fast fake parts:
make questions from the vault, compare on them with progress, show the last compare's table
and chart."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_eval_compare import BRIDGE, LIBFFI, PANCAKES, REPLIES, Questioner
from textual.widgets import DataTable, Static
from tui_helpers import SIZE, wait_until

from localrag.embed import HashingEmbedder
from localrag.model_choice import FixedModel
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.tui import build_app
from localrag.tui.evaluate_screen import EvaluateScreen
from localrag.tui.main_screen import MainScreen

pytestmark = pytest.mark.anyio


def notes(app) -> str:
    return str(app.screen.query_one("#evaluate-notes", Static).render())


def chart(app) -> str:
    return str(app.screen.query_one("#compare-chart", Static).render())


def configurations(app) -> list[str]:
    """The table's configurations, one per column (the first names the figures)."""
    table = app.screen.query_one("#compare-table", DataTable)
    return [str(column.label) for column in table.ordered_columns][1:]


async def test_make_questions_compare_and_show_the_last_table(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    (folder / "pancakes.txt").write_text(PANCAKES, encoding="utf-8")
    (folder / "libffi.txt").write_text(LIBFFI, encoding="utf-8")  # the model asks nothing here
    assistant = Assistant.create(
        settings,
        bytearray(b"a long enough passphrase"),
        embedder=HashingEmbedder(),
        models=FixedModel(Questioner(REPLIES)),
    )
    list(assistant.add([folder]))
    app = build_app(assistant=assistant)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
            await app.run_action("show_compare")
            await wait_until(pilot, lambda: "No compare has finished yet" in notes(app))
            await pilot.press("escape")

            await app.run_action("make_questions")
            await wait_until(pilot, lambda: "Stored vault-" in notes(app), "the set stored")
            assert "3 questions (1 unanswerable" in notes(app)
            assert "1 asked back from a sentence" in notes(app)
            await pilot.press("escape")

            await app.run_action("compare_models")
            await wait_until(pilot, lambda: configurations(app), "the compare's table")
            assert configurations(app) == ["base", "base+retrieval"]
            assert "answers best: overall F1" in notes(app)
            await pilot.press("escape")
            assert not isinstance(app.screen, EvaluateScreen)

            await app.run_action("show_compare")
            await wait_until(pilot, lambda: configurations(app), "the last compare")
            assert configurations(app) == ["base", "base+retrieval"]
            table = app.screen.query_one("#compare-table", DataTable)
            figures = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            assert figures[:2] == ["EM", "F1"] and figures[-1] == "peak MB"
            assert table.virtual_size.width <= table.size.width  # nothing to scroll to
            assert chart(app).startswith("overall F1 against the median answer time")
            assert chart(app).endswith("1 base  2 base+retrieval")
    finally:
        assistant.close()
