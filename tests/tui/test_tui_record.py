"""The app's voice notes (Ctrl+T) on the real `Assistant` and a real encrypted vault: espeak-ng
speech played into the microphone's place, the fast fake embedder and transcriber."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
from audio_synth import meeting
from textual.pilot import Pilot
from textual.widgets import Button, Static
from tui_helpers import SIZE, names, wait_until

from localrag.embed import HashingEmbedder
from localrag.generate import EchoGenerator
from localrag.record import Microphone, Playback
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.silence import Verdict
from localrag.transcribe import SAMPLE_RATE, FakeTranscriber
from localrag.tui import LocalragApp, build_app
from localrag.tui.main_screen import MainScreen
from localrag.tui.record_screen import RecordScreen

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PASSPHRASE = b"a long enough passphrase"
NOTE = "The spare key to the bike shed is under the blue flower pot."


@pytest.fixture(scope="module")
def spoken() -> tuple[np.ndarray, float]:
    """The note as espeak-ng says it, after half a second of quiet; when its last word ends."""
    said, ranges = meeting([NOTE], gap_s=0.0)
    return said, ranges[-1][1]


@asynccontextmanager
async def record_screen(
    settings: Settings, microphone: object
) -> AsyncIterator[tuple[Assistant, LocalragApp, Pilot]]:
    """A new vault with `microphone`, the app on it, and Ctrl+T pressed: the record screen."""
    parts = dict(
        embedder=HashingEmbedder(),
        generator=EchoGenerator(),
        transcriber=FakeTranscriber(NOTE),
        microphone=microphone,
    )
    with Assistant.create(settings, bytearray(PASSPHRASE), **parts) as assistant:
        app = build_app(assistant=assistant)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
            await pilot.press("ctrl+t")
            await wait_until(pilot, lambda: isinstance(app.screen, RecordScreen), "record screen")
            yield assistant, app, pilot


def meter(app: LocalragApp) -> str:
    return str(app.screen.query_one("#record-meter", Static).render())


def status(app: LocalragApp) -> str:
    return str(app.screen.query_one("#record-status", Static).render())


async def test_ctrl_t_records_until_the_silence_and_adds_the_note(
    settings: Settings, spoken: tuple[np.ndarray, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    said, last_word_s = spoken
    # Four times faster than spoken: about two seconds of a test for eight of audio.
    microphone = Playback(said, "Test microphone", speed=4.0)
    # Every level the window is given to show (polling the screen would miss some on a busy
    # machine).
    levels: list[float] = []
    show = RecordScreen.level

    def seen(screen: RecordScreen, verdict: Verdict) -> None:
        levels.append(verdict.level_dbfs)
        show(screen, verdict)

    monkeypatch.setattr(RecordScreen, "level", seen)
    async with record_screen(settings, microphone) as (assistant, app, pilot):
        # On a busy machine the playback may already be in a pause when the screen is first read.
        first = status(app)
        assert "stops after 3 s of silence" in first or "silence: stops in" in first, first

        await wait_until(pilot, lambda: status(app).startswith("Added"), "the note added")
        # The level moved while the note was spoken: loud and quiet readings, shown as dBFS.
        assert len({round(x) for x in levels}) >= 5 and max(levels) > -35 and min(levels) < -60
        assert "dBFS" in meter(app)
        [doc] = assistant.documents()
        assert doc.path.startswith("voice note ") and doc.kind == "audio"
        assert doc.meta["duration_s"] == pytest.approx(last_word_s + 3.0, abs=0.5)
        recorded = f"{doc.meta['duration_s']:.1f} s, stopped by the silence"
        assert status(app) == f"Added {doc.path} ({recorded}): {NOTE}"
        assert assistant.search("spare key bike shed", k=1)[0].chunk.doc_id == doc.id

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("f2")
        await wait_until(pilot, lambda: doc.path in names(app), "the note in the library")


@pytest.mark.parametrize("stop", ["the Stop button", "quitting the app"])
async def test_stopping_early_keeps_what_was_said(
    settings: Settings, spoken: tuple[np.ndarray, float], stop: str
) -> None:
    said, _ = spoken
    microphone = Playback(said, "Test microphone", speed=1.0)
    async with record_screen(settings, microphone) as (_, app, pilot):
        await wait_until(pilot, lambda: "00:01" in meter(app), "a second recorded")
        if stop == "quitting the app":
            await pilot.press("ctrl+q")
        else:
            await pilot.click("#record-stop")
            await wait_until(pilot, lambda: status(app).startswith("Added"), "the note added")
            assert str(app.screen.query_one("#record-stop", Button).label) == "Close"
    # The app let the vault go only once the note was stored: it is there when reopened.
    assert not app.threads
    with Assistant.open(settings, bytearray(PASSPHRASE), embedder=HashingEmbedder()) as again:
        [doc] = again.documents()
    assert 1.0 <= doc.meta["duration_s"] < 2.5 < len(said) / SAMPLE_RATE


async def test_without_a_microphone_the_screen_says_what_to_install(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # the optional dependency is missing
    async with record_screen(settings, Microphone()) as (assistant, app, pilot):
        await wait_until(pilot, lambda: "sounddevice" in status(app), "the error shown")
        assert status(app) == (
            "recording needs the optional dependency sounddevice: pip install 'localrag[record]'"
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.is_running and assistant.documents() == []
        # And the key works again: the next try shows the same line, not a stuck screen.
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: "sounddevice" in status(app), "the error again")
