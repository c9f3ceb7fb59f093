"""Voice notes: recording into memory, and one clear line when it cannot record."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from audio_synth import fake_sounddevice

from localrag.record import RecordError, record
from localrag.transcribe import SAMPLE_RATE


def test_recording_yields_exactly_the_seconds_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    tone = np.full(SAMPLE_RATE * 2, 0.25, dtype=np.float32)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(tone))
    audio = np.concatenate(list(record(1.25)))
    assert len(audio) == int(1.25 * SAMPLE_RATE)
    assert audio.dtype == np.float32 and float(audio.max()) == pytest.approx(0.25)


def test_without_a_microphone_one_line_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=False))
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
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    with pytest.raises(RecordError, match="between 0 and"):
        list(record(0))
