"""The silence detector on real speech (espeak-ng) in a noisy room: when a voice note stops."""

from __future__ import annotations

import numpy as np
import pytest
from audio_synth import silence, speak

from localrag.silence import (
    FLOOR_DBFS,
    MARGIN_DB,
    SilenceDetector,
    Verdict,
    level_dbfs,
)
from localrag.transcribe import SAMPLE_RATE

BLOCK = SAMPLE_RATE // 10
"""0.1 s blocks, as the microphone hands them over."""


def room(seconds: float, dbfs: float = -55.0, seed: int = 0) -> np.ndarray:
    """White noise at `dbfs` RMS: a quiet room with a fan."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def in_room(audio: np.ndarray, dbfs: float = -55.0) -> np.ndarray:
    return audio + room(len(audio) / SAMPLE_RATE, dbfs, seed=1)


def run(detector: SilenceDetector, audio: np.ndarray) -> list[Verdict]:
    """Feed `audio` block by block, up to and including the block that stops the note."""
    verdicts = []
    for at in range(0, len(audio), BLOCK):
        verdicts.append(detector.feed(audio[at : at + BLOCK]))
        if verdicts[-1].stop:
            break
    return verdicts


def test_the_level_is_the_rms_in_dbfs() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    full_scale_sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    assert level_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.01)
    assert level_dbfs(full_scale_sine * 0.1) == pytest.approx(-23.01, abs=0.01)
    assert level_dbfs(silence(0.1)) == FLOOR_DBFS
    assert level_dbfs(room(1.0, -40.0)) == pytest.approx(-40.0, abs=0.2)


def test_speech_then_silence_stops_three_seconds_after_the_last_word() -> None:
    voice = speak("Remember to water the plants on the balcony tomorrow morning.")
    lead = 1.0
    audio = in_room(np.concatenate([silence(lead), voice, silence(8.0)]))
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0), audio)

    assert verdicts[-1].stop == "silence"
    last_word = max(v.elapsed_s for v in verdicts if v.speech)
    # The espeak audio ends where its voice does, give or take its own short tail.
    assert last_word == pytest.approx(lead + len(voice) / SAMPLE_RATE, abs=0.5)
    # Three seconds of continuous silence after the last loud block, to within one block.
    assert verdicts[-1].elapsed_s - last_word == pytest.approx(3.0, abs=0.1 + 1e-9)
    assert verdicts[-1].silent_s == pytest.approx(3.0, abs=0.1 + 1e-9)
    # The pauses between words did not stop it: nothing stopped before the end.
    assert all(v.stop is None for v in verdicts[:-1])


def test_leading_silence_never_stops_the_note() -> None:
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0), room(20.0))
    assert len(verdicts) == 200 and all(v.stop is None for v in verdicts)
    assert not any(v.speech_heard for v in verdicts)
    assert all(v.silent_s == 0 for v in verdicts)  # the countdown starts only after speech


def test_a_click_before_speaking_does_not_start_the_countdown() -> None:
    click = room(0.1, -10.0, seed=2)
    audio = np.concatenate([room(1.0), click, room(6.0)])
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0), audio)
    assert any(v.speech for v in verdicts)  # the click was loud
    assert all(v.stop is None and not v.speech_heard for v in verdicts)


def test_the_cap_stops_the_note_even_while_speaking() -> None:
    voice = speak("This sentence is a good deal longer than the two seconds the note may last.")
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0, max_s=2.0), in_room(voice))
    assert verdicts[-1].stop == "limit" and verdicts[-1].elapsed_s == pytest.approx(2.0)
    # And without any speech at all.
    quiet = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0, max_s=5.0), room(10.0))
    assert quiet[-1].stop == "limit" and quiet[-1].elapsed_s == pytest.approx(5.0)


def test_without_a_silence_rule_only_the_cap_stops() -> None:
    audio = in_room(np.concatenate([speak("Just one short line."), silence(8.0)]))
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=None, max_s=6.0), audio)
    assert verdicts[-1].stop == "limit" and verdicts[-1].silent_s > 3.0


@pytest.mark.parametrize("noise_dbfs", [-65.0, -50.0, -42.0])
def test_the_automatic_threshold_sits_above_the_rooms_noise(noise_dbfs: float) -> None:
    voice = speak("The quarterly report is due on the fifth.")
    spoken = voice + room(len(voice) / SAMPLE_RATE, noise_dbfs, seed=2)
    audio = np.concatenate([room(1.0, noise_dbfs), spoken, room(5.0, noise_dbfs, seed=3)])
    detector = SilenceDetector(SAMPLE_RATE, stop_after_s=3.0)
    verdicts = run(detector, audio)

    learning = [v for v in verdicts if v.elapsed_s < 0.5 - 1e-9]
    assert learning and all(v.threshold_dbfs is None and not v.speech for v in learning)
    assert detector.noise_floor_dbfs == pytest.approx(noise_dbfs, abs=1.5)
    threshold = verdicts[-1].threshold_dbfs
    assert threshold is not None and threshold >= noise_dbfs + MARGIN_DB - 1.5
    assert not any(v.speech for v in verdicts if v.elapsed_s <= 1.0)  # the room is not speech
    assert verdicts[-1].stop == "silence"
    # Three seconds after the voice; in the loudest room the quiet end of the last word
    # (10 dB above a -42 dBFS fan is -32 dBFS) already counts as silence.
    after_voice_s = verdicts[-1].elapsed_s - (1.0 + len(voice) / SAMPLE_RATE)
    assert 2.0 <= after_voice_s <= 3.5


def test_speaking_at_once_still_stops_on_silence() -> None:
    """No quiet start to learn the room from: the first half second is speech, and the pauses
    and the silence after it bring the noise floor down."""
    voice = speak("Call the plumber about the kitchen sink.")
    audio = in_room(np.concatenate([voice, silence(8.0)]))
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0), audio)
    assert verdicts[-1].stop == "silence"
    assert verdicts[-1].elapsed_s < len(voice) / SAMPLE_RATE + 3.0 + 1.0


def test_a_fixed_threshold_above_the_voice_hears_no_speech() -> None:
    voice = speak("Too quiet for this threshold.") * 0.05  # about -45 dBFS
    audio = in_room(np.concatenate([voice, silence(6.0)]), -70.0)
    loud_only = run(SilenceDetector(SAMPLE_RATE, 3.0, threshold_dbfs=-20.0), audio)
    assert not any(v.speech_heard for v in loud_only) and loud_only[-1].stop is None
    fitting = run(SilenceDetector(SAMPLE_RATE, 3.0, threshold_dbfs=-60.0), audio)
    assert fitting[-1].stop == "silence"


def test_a_pause_between_sentences_shorter_than_the_silence_does_not_stop_it() -> None:
    first, second = speak("First, the budget."), speak("Then, after a pause, the schedule.")
    audio = in_room(np.concatenate([silence(0.5), first, silence(2.5), second, silence(6.0)]))
    verdicts = run(SilenceDetector(SAMPLE_RATE, stop_after_s=3.0), audio)
    assert verdicts[-1].stop == "silence"
    second_ends_s = 0.5 + (len(first) + len(second)) / SAMPLE_RATE + 2.5
    assert verdicts[-1].elapsed_s == pytest.approx(second_ends_s + 3.0, abs=0.5)
    assert max(v.silent_s for v in verdicts[:-1]) < 3.0
