"""Fixtures for the TUI tests: an app on a fake assistant, at the 80×24 size it is built for."""

from __future__ import annotations

import pytest
from tui_fakes import FakeAssistant, document

from localrag.tui import LocalragApp, build_app


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant(
        [document(1, "handbook.md"), document(2, "standup.flac", "audio", 2_000_000)]
    )


@pytest.fixture
def app(assistant: FakeAssistant) -> LocalragApp:
    return build_app(assistant=assistant)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
