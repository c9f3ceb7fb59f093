"""Typed messages that thread workers post to the widgets that render them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from localrag.records import Conversation, Document, IngestEvent, Turn


class VaultOpened(Message):
    """The vault is unlocked (or created): the app can show its main screen."""

    def __init__(self, assistant: Any) -> None:
        super().__init__()
        self.assistant = assistant


class UnlockRejected(Message):
    """The passphrase was wrong; the user may try again."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class UnlockEnded(Message):
    """The unlock worker finished, whatever the outcome."""


class AnswerStarted(Message):
    """`ask()` returned an `Answer`: tokens follow."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer


class AnswerToken(Message):
    """Some text of the answer being written."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class AnswerEnded(Message):
    """The answer finished, was cancelled or failed (`answer` is None if `ask()` itself failed)."""

    def __init__(self, answer: Any | None, cancelled: bool) -> None:
        super().__init__()
        self.answer = answer
        self.cancelled = cancelled


class Ingested(Message):
    """One progress event of `Assistant.add()`."""

    def __init__(self, event: IngestEvent) -> None:
        super().__init__()
        self.event = event


class IngestEnded(Message):
    """A batch of files finished (each file's own outcome came in its final event)."""


class DocumentsLoaded(Message):
    def __init__(self, documents: list[Document]) -> None:
        super().__init__()
        self.documents = documents


class ConversationsLoaded(Message):
    def __init__(self, conversations: list[Conversation]) -> None:
        super().__init__()
        self.conversations = conversations


class ConversationOpened(Message):
    """A past conversation's turns, to show in the chat."""

    def __init__(self, conversation_id: int, turns: list[Turn]) -> None:
        super().__init__()
        self.conversation_id = conversation_id
        self.turns = turns


class StatusLoaded(Message):
    """`Assistant.status()` (model, adapter, retrieval) and `Assistant.adapters()`."""

    def __init__(self, status: dict[str, Any], adapters: Any) -> None:
        super().__init__()
        self.status = status
        self.adapters = adapters


@dataclass(frozen=True)
class ContextText:
    """What the context screen shows: passages, with the cited one marked."""

    title: str
    passages: list[tuple[str, str, bool]]
    """(where, text, is_the_cited_one) in reading order."""


class ContextLoaded(Message):
    def __init__(self, context: ContextText) -> None:
        super().__init__()
        self.context = context
