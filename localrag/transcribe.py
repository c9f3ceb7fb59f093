"""Speech to timed text: decode audio in memory, transcribe it with faster-whisper.

`transcriber.transcribe(audio)` returns a lazy generator of `Segment`s and an `AudioInfo`, as
faster-whisper does, so the caller owns progress (`segment.end_s / info.duration_s`) and can stop
early. Audio is decoded from bytes held in memory with PyAV: no temporary file and no ffmpeg
binary, so a recording never sits on disk unencrypted outside the vault (security.md 16).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from localrag.errors import IngestError, ModelError
from localrag.records import Segment
from localrag.settings import Settings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Whisper's input rate, in samples per second."""
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".webm")
MAX_AUDIO_S = 6 * 3600.0
"""The longest recording decoded (a parser limit, security.md 19): 6 h is 1.4 GB of samples."""
MAX_DECODE_S = 600.0
"""Longest the decoder may work on one file (6 h of audio decodes in about a minute here)."""
# A file decoded to less than its container declares, by more than this, was cut short.
_TRUNCATION_SLACK_S = 0.25
_TRUNCATION_SHARE = 0.02
_MAX_BAD_PACKETS = 100
_GROUP_SAMPLES = 500_000


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


def read_file(path: Path) -> bytes:
    """A recording's bytes, read whole into memory; an `IngestError` naming it if it cannot be."""
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        kinds = " ".join(AUDIO_EXTENSIONS)
        raise IngestError(f"{path}: not a recording localrag reads ({kinds})")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read it ({exc.strerror})") from exc


def read_audio(path: Path) -> np.ndarray:
    """The file's audio as 16 kHz mono float32 samples, decoded in memory."""
    return decode_audio(read_file(path), str(path))


def decode_audio(data: bytes, name: str) -> np.ndarray:
    """Decode a whole audio file held in memory; an `IngestError` naming `name` if it is broken."""
    import av

    if not data:
        raise IngestError(f"{name}: empty file, no audio in it")
    problem = _cut_short(data)
    if problem:
        raise IngestError(f"{name}: {problem}; the file is truncated, nothing was added")
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise IngestError(f"{name}: no audio stream in it")
            stream = container.streams.audio[0]
            declared_s = container.duration / 1e6 if container.duration else None
            if declared_s and declared_s > MAX_AUDIO_S:
                raise IngestError(f"{name}: {_too_long()}")
            samples, bad_packets = _decode_stream(container, stream, name)
    except av.error.FFmpegError as exc:
        raise IngestError(
            f"{name}: cannot decode it: corrupt, truncated or not audio ({exc.strerror})"
        ) from exc
    decoded_s = len(samples) / SAMPLE_RATE
    if declared_s and decoded_s < declared_s * (1 - _TRUNCATION_SHARE) - _TRUNCATION_SLACK_S:
        raise IngestError(
            f"{name}: only {decoded_s:.1f} s of the {declared_s:.1f} s it declares could be "
            f"decoded; the file is truncated or corrupt, nothing was added"
        )
    if bad_packets:
        log.warning("%s: skipped %d undecodable audio packets", name, bad_packets)
    return samples


def _decode_stream(container: Any, stream: Any, name: str) -> tuple[np.ndarray, int]:
    """Resample to 16 kHz mono s16 as faster-whisper does, skipping damaged packets.

    Packets are decoded one by one: a decoding generator that raises is finished, so skipping a
    damaged packet is only possible below it.
    """
    import av

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    # Frames are gathered into large groups before resampling, as faster-whisper does: one call
    # per group instead of one per frame is what keeps decoding fast.
    fifo = av.audio.fifo.AudioFifo()
    parts: list[np.ndarray] = []
    total = 0
    bad = 0
    max_samples = int(MAX_AUDIO_S * SAMPLE_RATE)
    give_up = time.monotonic() + MAX_DECODE_S

    def resample(frame: Any) -> None:
        nonlocal total
        for out in resampler.resample(frame):
            parts.append(out.to_ndarray().reshape(-1))
            total += out.samples

    for packet in container.demux(stream):
        if time.monotonic() > give_up:
            raise IngestError(f"{name}: gave up decoding after {MAX_DECODE_S:.0f} s (time limit)")
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as exc:
            bad += 1
            if bad > _MAX_BAD_PACKETS:
                message = f"{name}: too many damaged audio packets; the file is corrupt"
                raise IngestError(message) from exc
            continue
        for frame in frames:
            frame.pts = None  # a skipped packet leaves a gap the FIFO would refuse
            fifo.write(frame)
        if fifo.samples >= _GROUP_SAMPLES:
            resample(fifo.read())
        if total > max_samples:
            raise IngestError(f"{name}: {_too_long()}")
    if fifo.samples:
        resample(fifo.read())
    resample(None)
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0, bad


def _too_long() -> str:
    return f"longer than {MAX_AUDIO_S / 3600:g} hours; split it into parts"


def _cut_short(data: bytes) -> str:
    """Why a WAV or Ogg file is visibly cut short, from its own framing; "" if it is not.

    Both formats can be decoded to the point where they stop with no error at all, so the
    container's own sizes are the only sign that the end is missing.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_cut_short(data)
    if data[:4] == b"OggS":
        return _ogg_cut_short(data)
    return ""


def _wav_cut_short(data: bytes) -> str:
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if tag == b"data":
            # Streaming writers put a placeholder size (0 or all ones) they never fill in.
            if size in (0, 0xFFFFFFFF, 0x7FFFFFFF) or size >= 0x7FFF0000:
                return ""
            have = len(data) - pos - 8
            return f"its data chunk declares {size} bytes but {have} follow" if have < size else ""
        pos += 8 + size + (size & 1)
    return "no data chunk in this WAV file"


def _ogg_cut_short(data: bytes) -> str:
    pos, flags = 0, 0
    while pos < len(data):
        header = data[pos : pos + 27]
        if len(header) < 27 or header[:4] != b"OggS":
            return f"its Ogg page at byte {pos} is incomplete"
        lacing = data[pos + 27 : pos + 27 + header[26]]
        end = pos + 27 + header[26] + sum(lacing)
        if len(lacing) < header[26] or end > len(data):
            return f"its Ogg page at byte {pos} is incomplete"
        pos, flags = end, header[5]
    return "" if flags & 0x04 else "its last Ogg page does not end the stream"


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
    """Progress of one transcription: `started`, one `segment` per piece heard, then `done`,
    then `speakers` when they were told apart.

    `Assistant.transcribe()` adds a last `indexed` event once the transcript is in the vault.
    """

    path: str
    """The recording's path, or the name of a voice note."""
    status: str
    """started, segment, done or indexed."""
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

    @property
    def fraction(self) -> float:
        """Share of the recording done."""
        return min(1.0, self.done_s / self.duration_s) if self.duration_s else 1.0

    @property
    def rtf(self) -> float | None:
        """Real-time factor so far: seconds spent per second of audio."""
        return self.elapsed_s / self.done_s if self.done_s else None


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
