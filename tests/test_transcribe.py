"""Decoding every supported format in memory, refusing broken files, and transcribing speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_synth import FORMATS, encode, meeting, silence, speak

from localrag.errors import IngestError
from localrag.evaluate.asr import english_normalizer, word_errors
from localrag.settings import Settings
from localrag.transcribe import (
    NO_SPEECH,
    SAMPLE_RATE,
    FakeTranscriber,
    build_transcriber,
    decode_audio,
    read_audio,
    transcribe_events,
)


@pytest.fixture(scope="module")
def hello() -> np.ndarray:
    audio, _ = meeting(["hello from the lighthouse"])
    return audio


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_format_decodes_to_its_full_length(hello: np.ndarray, ext: str) -> None:
    decoded = decode_audio(encode(hello, ext), f"note{ext}")
    assert decoded.dtype == np.float32
    # AAC pads a frame or two of priming samples; every format keeps the whole recording.
    assert abs(len(decoded) - len(hello)) / SAMPLE_RATE < 0.15


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_a_truncated_file_is_refused_with_one_line_naming_it(
    hello: np.ndarray, ext: str, tmp_path: Path
) -> None:
    data = encode(hello, ext)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError) as caught:
        read_audio(path)
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("data", [b"", b"not audio at all " * 50, b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_garbage_is_refused_with_one_line(data: bytes) -> None:
    with pytest.raises(IngestError, match=r"^junk\.mp3: ") as caught:
        decode_audio(data, "junk.mp3")
    assert "\n" not in caught.value.message


def test_decoding_has_a_duration_and_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from localrag import audio_stream as transcribe

    wav = encode(silence(3.0), ".wav")
    monkeypatch.setattr(transcribe, "MAX_DECODE_S", 0.0)
    with pytest.raises(IngestError, match=r"^memo\.wav: gave up decoding after 0 s"):
        decode_audio(wav, "memo.wav")
    monkeypatch.setattr(transcribe, "MAX_DECODE_S", 600.0)
    monkeypatch.setattr(transcribe, "MAX_AUDIO_S", 3600.0 * 0.0005)  # 1.8 s
    with pytest.raises(IngestError, match=r"^memo\.wav: longer than 0.0005 hours"):
        decode_audio(wav, "memo.wav")


def test_a_streamed_wav_without_sizes_is_not_called_truncated() -> None:
    # espeak-ng --stdout writes a WAV whose sizes are placeholders; it is whole all the same.
    assert len(speak("just streaming")) > SAMPLE_RATE // 2


def test_progress_reports_share_done_and_ends_with_a_notice_for_silence() -> None:
    events = list(transcribe_events(FakeTranscriber("Some words."), silence(3.0), "quiet.wav"))
    assert [e.status for e in events] == ["started", "done"]
    assert events[-1].detail == NO_SPEECH
    assert events[-1].fraction == 1.0


def test_progress_follows_the_segments(hello: np.ndarray) -> None:
    fake = FakeTranscriber("One. Two. Three.")
    events = list(transcribe_events(fake, hello, "hello.wav"))
    fractions = [e.fraction for e in events if e.status == "segment"]
    assert len(fractions) == 3 and fractions == sorted(fractions)
    assert events[-1].status == "done" and not events[-1].detail
    assert all(e.rtf is None or e.rtf >= 0 for e in events)


@pytest.mark.models
def test_whisper_hears_the_words_at_the_right_times(real_models: Settings) -> None:
    sentences = [
        "The lighthouse budget was approved on Tuesday.",
        "The migration to the new database starts next week.",
    ]
    audio, ranges = meeting(sentences, gap_s=2.0)
    transcriber = build_transcriber(real_models)
    segments, info = transcriber.transcribe(audio)
    heard = list(segments)
    assert info.duration_s == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.05)
    normalize = english_normalizer()
    said = normalize(" ".join(sentences)).split()
    got = normalize(" ".join(s.text for s in heard)).split()
    assert word_errors(said, got) / len(said) < 0.25
    lighthouse = next(s for s in heard if "lighthouse" in s.text.lower())
    start, end = ranges[0]
    assert lighthouse.start_s <= start + 0.5 and lighthouse.end_s >= end - 0.5


@pytest.mark.models
def test_whisper_hears_nothing_in_silence(real_models: Settings) -> None:
    transcriber = build_transcriber(real_models)
    segments, info = transcriber.transcribe(silence(5.0))
    assert list(segments) == []
    assert info.speech_s == 0.0
