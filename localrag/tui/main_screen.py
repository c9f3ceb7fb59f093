"""The main screen after unlocking: Chat, Library, History and Adapters tabs, a status bar, the
footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from localrag.tui.adapters import AdaptersPane
from localrag.tui.chat import ChatPane
from localrag.tui.history import HistoryPane
from localrag.tui.library import LibraryPane
from localrag.tui.status_bar import StatusBar


class Tabs(TabbedContent):
    """Tabs that change only when asked (F1-F4, a click, an action).

    Textual's switch to the tab of a widget given the focus acts on a focus asked for before the
    last switch (the chat's question box, when F2 is pressed while the screen mounts): it would
    switch back, and the keys typed next would go to the wrong tab.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.prevent_default()
        event.stop()


class MainScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        with Tabs(id="tabs", initial="chat"):
            with TabPane("Chat (F1)", id="chat"):
                yield ChatPane()
            with TabPane("Library (F2)", id="library"):
                yield LibraryPane()
            with TabPane("History (F3)", id="history"):
                yield HistoryPane()
            with TabPane("Adapters (F4)", id="adapters"):
                yield AdaptersPane()
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.refresh_status()  # type: ignore[attr-defined]
        self.focus_tab()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if pane == "history":
            self.query_one(HistoryPane).reload()
        elif pane == "adapters":
            self.app.load_status()  # type: ignore[attr-defined]
        # The tab active when this runs: an activation may arrive after the next one (F2 pressed
        # while the screen mounts), and its tab is hidden by then.
        self.call_after_refresh(self.focus_tab)

    def show_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane
        self.focus_tab(pane)

    def focus_tab(self, pane: str | None = None) -> None:
        """Focus the first thing to use in `pane` (default: the active tab)."""
        pane = pane or self.query_one(TabbedContent).active
        if pane == "library":
            self.query_one(LibraryPane).focus_default()
        elif pane == "adapters":
            self.query_one(AdaptersPane).focus_default()
        elif pane in ("chat", "history"):
            self.query_one("#question" if pane == "chat" else "#conversations").focus()
