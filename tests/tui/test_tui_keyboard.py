"""Keyboard first: every action is in the command palette and the footer fits 80 columns."""

from __future__ import annotations

import pytest
from textual.command import CommandList, CommandPalette
from tui_helpers import SIZE, status, wait_until

pytestmark = pytest.mark.anyio


async def test_every_action_is_in_the_command_palette(app) -> None:
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    assert {
        "Chat",
        "Library",
        "History",
        "Toggle retrieval",
        "Choose model or adapter",
        "Roll back the model",
        "New conversation",
        "Cancel the answer",
        "Add files or a folder",
        "Delete the selected document",
        "Sources",
    } <= titles


async def test_the_palette_runs_a_command(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"toggle retrieval")
        commands = app.screen.query_one(CommandList)
        await wait_until(pilot, lambda: commands.option_count > 0, "the palette found it")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "retrieval OFF" in status(app))
