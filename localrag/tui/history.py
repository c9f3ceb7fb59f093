"""Past conversations from the vault; Enter reopens one in the chat."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from localrag.display import one_line
from localrag.records import Conversation
from localrag.tui.format import short_time
from localrag.tui.messages import ConversationOpened, ConversationsLoaded
from localrag.tui.tables import refill


class HistoryPane(Vertical):
    """A table of conversations, newest first."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversations: list[Conversation] = []

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(
            id="conversations", cursor_type="row", zebra_stripes=True
        )
        table.add_columns("Conversation", "Turns", "Updated")
        yield Static("Enter reopens a conversation to read it or carry on.", classes="hint")
        yield table

    def reload(self) -> None:
        assistant = self.app.assistant  # type: ignore[attr-defined]
        self.app.background(  # type: ignore[attr-defined]
            lambda: self.post_message(ConversationsLoaded(assistant.conversations())),
            name="conversations",
            group="conversations",
            exclusive=True,
        )

    def on_conversations_loaded(self, message: ConversationsLoaded) -> None:
        self.conversations = sorted(message.conversations, key=lambda c: c.updated_at, reverse=True)
        table = self.query_one(DataTable)
        rows = [
            (
                # Titles are the user's questions: a str cell would be read as markup.
                (
                    Text(one_line(c.title or f"conversation {c.id}")),
                    str(c.turn_count),
                    short_time(c.updated_at),
                ),
                str(c.id),
            )
            for c in self.conversations
        ]
        refill(table, rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        conversation_id = int(str(event.row_key.value))
        assistant = self.app.assistant  # type: ignore[attr-defined]
        self.app.background(  # type: ignore[attr-defined]
            lambda: self.app.post_message(
                ConversationOpened(conversation_id, assistant.turns(conversation_id))
            ),
            name="turns",
        )
