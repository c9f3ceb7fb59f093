"""Typed messages that thread workers post to the widgets that render them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from localrag.records import Conversation, Document, IngestEvent, Turn


@dataclass
class VaultOpened(Message):
    """The vault is unlocked (or created): the app can show its main screen."""

    assistant: Any


@dataclass
class UnlockRejected(Message):
    """The passphrase was wrong; the user may try again."""

    message: str


@dataclass
class UnlockEnded(Message):
    """The unlock worker finished, whatever the outcome."""


@dataclass
class AnswerStarted(Message):
    """`ask()` returned an `Answer`: tokens follow."""

    answer: Any


@dataclass
class AnswerToken(Message):
    """Some text of the answer being written."""

    text: str


@dataclass
class AnswerEnded(Message):
    """The answer finished, was cancelled or failed."""

    answer: Any | None
    """None if `ask()` itself failed (the error is shown as a notification)."""
    cancelled: bool


@dataclass
class Ingested(Message):
    """One progress event of `Assistant.add()`."""

    event: IngestEvent


@dataclass
class IngestEnded(Message):
    """A batch of files finished (each file's own outcome came in its final event)."""


@dataclass
class DocumentsLoaded(Message):
    documents: list[Document]


@dataclass
class ConversationsLoaded(Message):
    conversations: list[Conversation]


@dataclass
class ConversationOpened(Message):
    """A past conversation's turns, to show in the chat."""

    conversation_id: int
    turns: list[Turn]


@dataclass
class StatusLoaded(Message):
    status: dict[str, Any]
    """`Assistant.status()`: model, adapter, retrieval."""
    adapters: Any
    """`Assistant.adapters()`: the imported adapters, merged versions and the active one."""


@dataclass(frozen=True)
class ContextText:
    """What the context screen shows: passages, with the cited one marked."""

    title: str
    passages: list[tuple[str, str, bool]]
    """(where, text, is_the_cited_one) in reading order."""


@dataclass
class ContextLoaded(Message):
    context: ContextText


@dataclass
class MergeStepped(Message):
    """One `MergeProgress` of `Assistant.merge_adapter()`: merge, quantize, store or done."""

    event: Any


@dataclass
class AdapterJobEnded(Message):
    """An import, a merge or a verification ended; `text` says how (empty if it failed: the
    error is shown as a notification)."""

    text: str
    severity: str = "information"
    made: str | None = None
    """The adapter an import stored, for the cursor to go to."""
