"""Voice notes: recording into memory until the note ends, and one clear line when it cannot."""

from __future__ import annotations

import sys
import threading
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest
from audio_synth import encode, fake_sounddevice, meeting, silence, speak

from localrag.record import (
    Microphone,
    Playback,
    Recorder,
    RecordError,
    RecordOptions,
    level_bar,
    meter_line,
)
from localrag.settings import Settings
from localrag.silence import Verdict
from localrag.transcribe import SAMPLE_RATE

UNTIL_CAP = RecordOptions(max_s=1.25, stop_after_silence_s=None)


def test_recording_stops_at_exactly_the_seconds_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    tone = np.full(SAMPLE_RATE * 2, 0.25, dtype=np.float32)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(tone))
    recording = Recorder(Microphone(), UNTIL_CAP).run()
    assert len(recording.audio) == int(1.25 * SAMPLE_RATE) and recording.stopped_by == "limit"
    audio = recording.audio
    assert audio.dtype == np.float32 and float(audio.max()) == pytest.approx(0.25)


def test_the_microphone_stops_by_itself_after_the_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    said, ranges = meeting(["Pick up the dry cleaning on Thursday."], gap_s=0.5)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(said))
    levels: list[Verdict] = []
    recording = Recorder(Microphone(), RecordOptions(stop_after_silence_s=2.0)).run(levels.append)
    assert recording.stopped_by == "silence" and recording.speech_heard
    # It stops about two seconds after the voice ends (the fake hears silence after it).
    assert recording.recorded_s == pytest.approx(ranges[0][1] + 2.0, abs=0.5)
    np.testing.assert_array_equal(recording.audio[: len(said)], said)  # every word is kept
    assert len(levels) == round(recording.recorded_s / 0.1)
    assert max(v.level_dbfs for v in levels) > -40 > min(v.level_dbfs for v in levels)


def test_a_wav_file_played_as_the_microphone_stops_after_its_speech(tmp_path: Path) -> None:
    said, ranges = meeting(["The printer on the third floor is out of toner."], gap_s=0.0)
    path = tmp_path / "note.wav"
    path.write_bytes(encode(said, ".wav"))
    source = Playback.from_file(path)
    assert source.check() == "note.wav"
    recording = Recorder(source, RecordOptions(stop_after_silence_s=1.0)).run()
    assert recording.stopped_by == "silence"
    assert recording.recorded_s == pytest.approx(ranges[0][1] + 1.0, abs=0.5)
    # 16-bit PCM and back: the same samples to within one step of quantization.
    np.testing.assert_allclose(recording.audio[: len(said)], said, atol=1 / 16_000)


def test_stop_from_another_thread_keeps_what_was_recorded() -> None:
    voice = speak("This note is stopped by the button before it ends.")
    recorder = Recorder(Playback(voice, speed=1.0), RecordOptions(stop_after_silence_s=3.0))
    heard: list[Verdict] = []

    def level(verdict: Verdict) -> None:
        heard.append(verdict)
        if len(heard) == 8:
            threading.Thread(target=recorder.stop).start()

    recording = recorder.run(level)
    assert recording.stopped_by == "cancel"
    assert 0.8 <= recording.recorded_s <= 1.0  # the block in hand when Stop came is kept
    np.testing.assert_array_equal(recording.audio, voice[: len(recording.audio)])


class Interrupted:
    """A source that is interrupted (Ctrl-C, or the device failing) after some blocks."""

    def __init__(self, audio: np.ndarray, after_blocks: int, error: BaseException) -> None:
        self.playback = Playback(audio)
        self.after = after_blocks
        self.error = error

    def check(self) -> str:
        return "interrupted"

    def blocks(self) -> Generator[np.ndarray, None, None]:
        for n, block in enumerate(self.playback.blocks()):
            if n == self.after:
                raise self.error
            yield block


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), RecordError("the microphone sends no sound")]
)
def test_ctrl_c_or_a_failing_device_keeps_the_note(error: BaseException) -> None:
    voice = speak("Interrupted in the middle of a sentence.")
    recording = Recorder(Interrupted(voice, 12, error)).run()
    assert recording.stopped_by == "cancel" and recording.recorded_s == pytest.approx(1.2)
    np.testing.assert_array_equal(recording.audio, voice[: len(recording.audio)])


def test_a_device_failing_before_any_sound_is_one_line() -> None:
    source = Interrupted(silence(1), 0, RecordError("the microphone sends no sound"))
    with pytest.raises(RecordError, match="sends no sound"):
        Recorder(source).run()


def test_without_a_microphone_one_line_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=False))
    with pytest.raises(RecordError, match="no microphone found") as caught:
        Recorder(Microphone()).run()
    assert "\n" not in caught.value.message


def test_without_the_optional_dependency_one_line_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes the import fail
    with pytest.raises(RecordError, match=r"pip install 'localrag\[record\]'"):
        Microphone().check()


def test_a_note_length_out_of_range_is_refused() -> None:
    with pytest.raises(RecordError, match="between 0 and"):
        RecordOptions(max_s=0)
    with pytest.raises(RecordError, match="between 0 and"):
        RecordOptions(max_s=3601)


def test_options_come_from_the_settings_unless_the_command_line_says(settings: Settings) -> None:
    assert RecordOptions.from_settings(settings) == RecordOptions(600.0, 3.0, 0.0)
    mine = settings.with_changes(stop_after_silence_s=5.0, silence_threshold_dbfs=-45.0)
    assert RecordOptions.from_settings(mine, seconds=30) == RecordOptions(30, 5.0, -45.0)
    assert RecordOptions.from_settings(mine, stop_after_silence_s=1.5).stop_after_silence_s == 1.5
    assert RecordOptions.from_settings(mine, stop_on_silence=False).stop_after_silence_s is None
    never = settings.with_changes(stop_after_silence_s=0.0)
    assert RecordOptions.from_settings(never).stop_after_silence_s is None


def test_the_meter_line_shows_time_level_and_how_it_stops() -> None:
    assert level_bar(-60.0) == "▯" * 8 and level_bar(0.0) == "▮" * 8
    assert level_bar(-30.0) == "▮▮▮▮▯▯▯▯" and level_bar(-100.0) == "▯" * 8
    talking = Verdict(-23.4, -45.0, True, True, 0.0, 7.2, None)
    assert meter_line(talking, RecordOptions()) == (
        "● 00:07  ▮▮▮▮▮▯▯▯ -23 dBFS  (stops after 3 s of silence)"
    )
    pausing = Verdict(-58.0, -45.0, False, True, 1.2, 9.0, None)
    assert meter_line(pausing, RecordOptions()).endswith("(silence: stops in 2 s)")
    assert meter_line(pausing, UNTIL_CAP).endswith("(stops at 00:01)")
    last_moment = Verdict(-58.0, -45.0, False, True, 2.9, 9.0, None)
    assert meter_line(last_moment, RecordOptions()).endswith("(silence: stops in 1 s)")
