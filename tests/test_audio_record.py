"""Voice notes: recording into memory, and one clear line when it cannot record."""

from __future__ import annotations

import sys
import threading
import time
import types
from typing import Any

import numpy as np
import pytest

from localrag.record import RecordError, record
from localrag.transcribe import SAMPLE_RATE


class _FakeStream:
    """Calls back with blocks of a steady tone from a thread, as PortAudio does."""

    def __init__(self, *, samplerate: int, blocksize: int, callback: Any, **_: Any) -> None:
        self.blocksize = blocksize
        self.callback = callback
        self.running = False
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while self.running:
            block = np.full((self.blocksize, 1), 0.25, dtype=np.float32)
            self.callback(block, self.blocksize, None, None)
            time.sleep(0.005)

    def __enter__(self) -> _FakeStream:
        self.running = True
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()


def _fake_sounddevice(has_input: bool = True) -> types.ModuleType:
    sd = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def query_devices(kind: str) -> dict[str, Any]:
        if not has_input:
            raise PortAudioError("Error querying device -1")
        return {"name": "Fake microphone"}

    sd.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.InputStream = _FakeStream  # type: ignore[attr-defined]
    return sd


def test_recording_yields_exactly_the_seconds_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice())
    audio = np.concatenate(list(record(1.25)))
    assert len(audio) == int(1.25 * SAMPLE_RATE)
    assert audio.dtype == np.float32 and float(audio.max()) == pytest.approx(0.25)


def test_without_a_microphone_one_line_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(has_input=False))
    with pytest.raises(RecordError, match="no microphone found") as caught:
        list(record(1))
    assert "\n" not in caught.value.message


def test_without_the_optional_dependency_one_line_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes the import fail
    with pytest.raises(RecordError, match=r"pip install 'localrag\[record\]'"):
        list(record(1))


def test_a_note_length_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice())
    with pytest.raises(RecordError, match="between 0 and"):
        list(record(0))
