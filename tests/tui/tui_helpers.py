"""Helpers for Pilot tests: wait for what a user would see, instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from localrag.tui.answer_view import AnswerView
from localrag.tui.chat import ChatPane
from localrag.tui.context_screen import ContextScreen
from localrag.tui.status_bar import StatusBar

SIZE = (80, 24)
"""The terminal the app is laid out for first."""
TIMEOUT_S = 60.0
"""A guard so a broken app fails the test instead of hanging it; not a timing assertion."""


async def wait_until(
    pilot: Pilot, predicate: Callable[[], object], what: str = "", timeout_s: float = TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"never happened: {what or predicate}\n{screen_text(pilot.app)}\n"
                f"notifications: {notifications(pilot)}; focused: {pilot.app.focused!r}"
            )
        await pilot.pause(0.02)


def notifications(pilot: Pilot) -> list[str]:
    return [n.message for n in pilot.app._notifications]


def chat(app: App) -> ChatPane:
    return app.screen.query_one(ChatPane)


def context_shown(app: App) -> bool:
    return isinstance(app.screen, ContextScreen) and bool(app.screen.query(".passage"))


async def ask(pilot: Pilot, question: str, timeout_s: float = TIMEOUT_S) -> None:
    await pilot.press(*question, "enter")
    app = pilot.app

    def answered() -> bool:
        views = app.screen.query(AnswerView)
        # The pane stops answering before the view has written its line of timings.
        return (
            bool(views)
            and not chat(app).answering
            and not views.last().meta.startswith(("searching", "answering"))
        )

    await wait_until(pilot, answered, f"an answer to {question!r}", timeout_s)


def status(app: App) -> str:
    return str(app.screen.query_one(StatusBar).render())


def table(app: App) -> DataTable:
    return app.screen.query_one("#documents", DataTable)


def names(app: App) -> list[str]:
    t = table(app)
    return [str(t.get_row_at(i)[0]) for i in range(t.row_count)]


def screen_text(app: App) -> str:
    """The characters on the terminal now, line by line: what the user reads, styles aside."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
