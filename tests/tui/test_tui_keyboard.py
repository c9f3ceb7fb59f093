"""Keyboard first: every action is in the command palette and the footer fits 80 columns."""

from __future__ import annotations

import pytest
from textual.actions import parse
from textual.app import App
from textual.binding import Binding
from textual.command import CommandList, CommandPalette
from textual.widgets import Input, TabbedContent
from tui_fakes import FakeAssistant
from tui_helpers import SIZE, chat, screen_text, status, wait_until

from localrag.tui import LocalragApp
from localrag.tui.main_screen import MainScreen
from localrag.tui.palette import PALETTE

pytestmark = pytest.mark.anyio


def name_and_params(action: str) -> tuple[str, tuple[object, ...]]:
    _, name, params = parse(action)
    return name, params


def own_bindings(node: object) -> list[Binding]:
    """The bindings a localrag class declares itself (not those Textual's widgets bring)."""
    declared = vars(type(node)).get("BINDINGS", [])
    return [b for b in declared if isinstance(b, Binding)]


def bound_on_main_screen(app: LocalragApp) -> set[str]:
    """Action names bound by the main screen and the panes on it, text fields left out (their
    keys edit the text)."""
    screen = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    nodes = [screen, *screen.walk_children()]
    return {
        name_and_params(b.action)[0]
        for node in nodes
        if type(node).__module__.startswith("localrag.tui") and not isinstance(node, Input)
        for b in own_bindings(node)
    }


async def test_every_action_is_in_the_command_palette(app) -> None:
    async with app.run_test(size=SIZE):
        shown = {c.title for c in app.get_system_commands(app.screen)}
        panes = bound_on_main_screen(app)
    palette = {name_and_params(c.action) for c in PALETTE}
    palette_names = {name for name, _ in palette}
    assert {c.title for c in PALETTE} <= shown

    # Textual's own actions (quit, the palette itself) are in its part of the palette.
    app_keys = {
        name_and_params(b.action)
        for b in own_bindings(app)
        if not hasattr(App, f"action_{name_and_params(b.action)[0]}")
    }
    assert app_keys - palette == set(), "app keys missing from the palette"
    methods = {n.removeprefix("action_") for n in vars(LocalragApp) if n.startswith("action_")}
    assert methods - palette_names == set(), "app actions missing from the palette"
    # A pane's key runs the app action of the same name from the palette.
    assert panes - palette_names == set(), "pane keys missing from the palette"
    assert palette_names <= methods, "palette lines with no app action behind them"


def footer_items(app: LocalragApp) -> list[str]:
    """What the footer should show: `key description` for each action bound now."""
    items: dict[str, str] = {}
    for _, binding, _, _ in app.screen.active_bindings.values():
        if binding.show and binding.action not in items:
            items[binding.action] = f"{app.get_key_display(binding)} {binding.description}"
    return list(items.values())


async def assert_footer_fits(pilot, where: str) -> None:
    await pilot.pause()
    footer = screen_text(pilot.app).splitlines()[-1]
    missing = [item for item in footer_items(pilot.app) if item not in footer]
    assert not missing, f"{where}: the footer {footer!r} cuts off {missing}"


async def test_the_footer_shows_every_key_in_80_columns(assistant: FakeAssistant) -> None:
    from localrag.tui import build_app

    app = build_app(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        for key, tab in (("f2", "library"), ("f3", "history"), ("f4", "adapters"), ("f1", "chat")):
            await pilot.press(key)
            await assert_footer_fits(pilot, tab)
        # While an answer is written, Esc joins the chat's keys.
        assistant.slow = True
        try:
            await pilot.press(*"Go on", "enter")
            await wait_until(pilot, lambda: chat(app).answering)
            await pilot.pause()
            assert "esc Cancel" in screen_text(app).splitlines()[-1]
            await assert_footer_fits(pilot, "answering")
        finally:
            assistant.slow = False


async def test_the_palette_runs_a_command(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"toggle retrieval")
        commands = app.screen.query_one(CommandList)
        await wait_until(pilot, lambda: commands.option_count > 0, "the palette found it")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "retrieval OFF" in status(app))


async def test_f2_pressed_while_the_screen_mounts_shows_the_library(app: LocalragApp) -> None:
    """On a busy machine, the chat's first focus and activation can land after F2's switch to
    the library; neither may switch back (the path typed next would be asked as a question), nor
    may the two tabs take the focus from each other for ever."""
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.screen.query_one(TabbedContent)
        app.screen.query_one("#question").focus()
        app.action_show_tab("library")
        tabs.post_message(TabbedContent.TabActivated(tabs, tabs.get_tab("chat")))
        await pilot.pause(0.2)
        assert tabs.active == "library"
        assert app.focused is not None and app.focused.id == "documents"
