"""Speech to timed text with faster-whisper.

`transcriber.transcribe(audio)` returns a lazy generator of `Segment`s and an `AudioInfo`, as
faster-whisper does, so the caller owns progress (`segment.end_s / info.duration_s`) and can stop
early. Audio is decoded with PyAV (`audio_stream`): no temporary file and no ffmpeg binary, so a
recording never sits on disk unencrypted outside the vault (security.md 16). A recording file is
transcribed a window at a time by `localrag.recording`; `transcribe_events` serves audio already
in memory (a voice note).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from localrag.audio_stream import SAMPLE_RATE, decode_all
from localrag.errors import IngestError, ModelError
from localrag.records import Segment
from localrag.settings import Settings

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".webm")


@dataclass(frozen=True)
class AudioInfo:
    """What is known about a recording before its segments are read."""

    duration_s: float
    """The recording's length."""
    speech_s: float
    """How much of it the voice-activity filter kept (the whole length without the filter)."""
    language: str
    """The language transcribed, e.g. "en"."""


class Transcriber(Protocol):
    """Turns 16 kHz mono float32 samples into timed text."""

    def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]: ...


def check_extension(path: Path) -> None:
    """An `IngestError` naming `path` unless it has the extension of a recording."""
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        kinds = " ".join(AUDIO_EXTENSIONS)
        raise IngestError(f"{path}: not a recording localrag reads ({kinds})")


def read_file(path: Path) -> bytes:
    """A recording's bytes, read whole into memory; an `IngestError` naming it if it cannot be."""
    check_extension(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read it ({exc.strerror})") from exc


def read_audio(path: Path) -> np.ndarray:
    """A short recording's audio as 16 kHz mono float32 samples, decoded from the file as it is
    read (a meeting goes through `localrag.recording` instead, a window at a time)."""
    check_extension(path)
    return decode_all(path, str(path))


def decode_audio(data: bytes, name: str) -> np.ndarray:
    """Decode a whole audio file held in memory; an `IngestError` naming `name` if it is broken."""
    return decode_all(data, name)


class WhisperTranscriber:
    """faster-whisper on the CPU: int8, voice-activity filter on, beam search of width 5."""

    def __init__(
        self,
        model_dir: Path,
        *,
        cpu_threads: int | None = None,
        beam_size: int = 5,
        vad_filter: bool = True,
    ) -> None:
        from faster_whisper import WhisperModel

        from localrag.models import check_whisper_folder

        check_whisper_folder(model_dir)  # a folder registered before this check existed
        self.model_dir = model_dir
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        threads = cpu_threads if cpu_threads is not None else min(4, os.cpu_count() or 1)
        try:
            self._model = WhisperModel(
                str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"{model_dir}: cannot load this Whisper model ({exc})") from exc
        # English-only models (tiny.en) are told the language; others detect it.
        self.language = None if self._model.model.is_multilingual else "en"

    def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
        segments, info = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, vad_filter=self.vad_filter
        )
        speech_s = info.duration_after_vad if self.vad_filter else info.duration
        return _segments(segments), AudioInfo(info.duration, speech_s, info.language)

    def close(self) -> None:
        self._model = None


def _segments(raw: Any) -> Iterator[Segment]:
    for s in raw:
        text = s.text.strip()
        if text:
            yield Segment(start_s=round(s.start, 3), end_s=round(s.end, 3), text=text)


class FakeTranscriber:
    """A transcriber for tests that needs no model: it "hears" a script in the loud parts.

    Each sentence of `script` becomes one segment, spread evenly over the span between the first
    and last samples louder than `threshold`; a silent recording gives no segment.
    """

    def __init__(self, script: str = "This is a fake transcript.", threshold: float = 0.01):
        self.sentences = [s.strip() + "." for s in script.split(".") if s.strip()]
        self.threshold = threshold

    def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
        duration_s = len(audio) / SAMPLE_RATE
        loud = np.flatnonzero(np.abs(audio) > self.threshold)
        if not len(loud) or not self.sentences:
            return iter(()), AudioInfo(duration_s, 0.0, "en")
        start_s, end_s = loud[0] / SAMPLE_RATE, loud[-1] / SAMPLE_RATE
        step = (end_s - start_s) / len(self.sentences)
        segments = [
            Segment(round(start_s + i * step, 3), round(start_s + (i + 1) * step, 3), text)
            for i, text in enumerate(self.sentences)
        ]
        return iter(segments), AudioInfo(duration_s, end_s - start_s, "en")


@dataclass(frozen=True)
class TranscribeEvent:
    """Progress of one transcription: `started`, one `segment` per piece heard (and for a file,
    a `window` as each few minutes are done), then `done`, then `speakers` when they were told
    apart.

    `Assistant.transcribe()` adds a last `indexed` event once the transcript is in the vault.
    """

    path: str
    """The recording's path, or the name of a voice note."""
    status: str
    """started, segment, window, done, speakers or indexed."""
    duration_s: float
    """The recording's length."""
    done_s: float = 0.0
    """How far into the recording the transcript has got."""
    elapsed_s: float = 0.0
    """Time spent since decoding began."""
    segment: Segment | None = None
    """The piece just heard (`segment` events)."""
    detail: str = ""
    """A notice for the user, such as "no speech found"."""
    doc_id: int | None = None
    """The stored document (`indexed` events)."""
    segments: tuple[Segment, ...] = ()
    """Every segment with its speaker (`speakers` events, after `done`)."""
    resumed_s: float = 0.0
    """Audio transcribed by an earlier run that was interrupted, taken from the vault."""

    @property
    def fraction(self) -> float:
        """Share of the recording done."""
        return min(1.0, self.done_s / self.duration_s) if self.duration_s else 1.0

    @property
    def rtf(self) -> float | None:
        """Real-time factor so far: seconds spent per second of audio this run transcribed."""
        worked_s = self.done_s - self.resumed_s
        return self.elapsed_s / worked_s if worked_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None until there is a rate and a known length."""
        if self.status in ("done", "speakers", "indexed"):
            return 0.0
        rtf = self.rtf
        if rtf is None or not self.duration_s:
            return None
        return max(0.0, self.duration_s - self.done_s) * rtf


NO_SPEECH = "no speech found; indexed with an empty transcript"


def transcribe_events(
    transcriber: Transcriber, audio: np.ndarray, name: str, started: float | None = None
) -> Iterator[TranscribeEvent]:
    """Transcribe `audio`, reporting each segment with the share done and the real-time factor.

    `started` is when the work began (`time.perf_counter()`), so decoding counts in the rate.
    """
    started = time.perf_counter() if started is None else started
    segments, info = transcriber.transcribe(audio)
    duration = info.duration_s

    def event(status: str, done_s: float, **more: Any) -> TranscribeEvent:
        return TranscribeEvent(
            name, status, duration, done_s, time.perf_counter() - started, **more
        )

    yield event("started", 0.0)
    heard = 0
    for segment in segments:
        heard += 1
        yield event("segment", min(segment.end_s, duration), segment=segment)
    yield event("done", duration, detail="" if heard else NO_SPEECH)


def build_transcriber(settings: Settings) -> WhisperTranscriber:
    """The Whisper model that serves the settings, checked against its pinned hash first."""
    from localrag.models import model_path

    return WhisperTranscriber(model_path(settings, "whisper"))
