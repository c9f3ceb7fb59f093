"""A recording decoded as it is read, in windows of a few minutes, never whole.

`AudioStream(path)` decodes with PyAV from the file (or from bytes held in memory) and yields
16 kHz mono samples a block at a time; `cut_windows` gathers the blocks into `Window`s of about
`WINDOW_S`, each cut at the quietest tenth of a second of its last `CUT_SEARCH_S`, so a cut falls
between words and the windows abut (no overlap to reconcile: each sample is in exactly one
window). A one-hour meeting then costs one window of samples (19 MB), not the 230 MB of the
whole recording. The cuts depend only on the samples, so a transcription that stopped half-way
finds the same windows when it is run again (`localrag.recording`).

Decoding is bounded as a parser must be (security.md 19): `MAX_AUDIO_S` of audio, `MAX_DECODE_S`
of decoding work, and a file that declares more than it holds is refused as truncated.
"""

from __future__ import annotations

import io
import logging
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from localrag.errors import IngestError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Whisper's input rate, in samples per second."""
MAX_AUDIO_S = 6 * 3600.0
"""The longest recording decoded (a parser limit, security.md 19)."""
MAX_DECODE_S = 600.0
"""Longest the decoder may work on one file (6 h of audio decodes in about a minute here); time
spent transcribing between two blocks does not count."""
WINDOW_S = 300.0
"""Length of the windows a recording is transcribed in: 19 MB of samples each, and at most this
much work is done again when an interrupted transcription resumes."""
CUT_SEARCH_S = 15.0
"""A window ends at the quietest moment of its last this many seconds."""
_CUT_FRAME_S = 0.1
# A file decoded to less than its container declares, by more than this, was cut short.
_TRUNCATION_SLACK_S = 0.25
_TRUNCATION_SHARE = 0.02
_MAX_BAD_PACKETS = 100
_GROUP_SAMPLES = 500_000
"""Decoded samples (at the file's own rate) gathered before one resampling call."""


@dataclass(frozen=True)
class Window:
    """A piece of a recording, transcribed on its own."""

    index: int
    """0 for the first window."""
    start_sample: int
    """Where it starts in the recording, at 16 kHz."""
    audio: np.ndarray
    """Its 16 kHz mono float32 samples."""

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return (self.start_sample + len(self.audio)) / SAMPLE_RATE


class AudioStream:
    """One recording's audio, decoded block by block; an `IngestError` naming it if broken.

    `declared_s` is the length the container states (None if it states none); `blocks()` decodes.
    """

    def __init__(self, source: Path | bytes, name: str | None = None) -> None:
        self.source = source
        self.name = name or str(source)
        self.declared_s: float | None = None
        self.decoded_samples = 0
        self.bad_packets = 0
        with self._opened_bytes() as f:
            f.seek(0, io.SEEK_END)
            if not f.tell():
                raise IngestError(f"{self.name}: empty file, no audio in it")
            problem = cut_short(f)
        if problem:
            raise IngestError(f"{self.name}: {problem}; the file is truncated, nothing was added")
        self._probe()

    def _opened_bytes(self) -> IO[bytes]:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        try:
            return self.source.open("rb")
        except OSError as exc:
            raise IngestError(f"{self.name}: cannot read it ({exc.strerror})") from exc

    def _open(self) -> Any:
        import av

        opened = io.BytesIO(self.source) if isinstance(self.source, bytes) else str(self.source)
        return av.open(opened, mode="r", metadata_errors="ignore")

    def _probe(self) -> None:
        with self._errors(), self._open() as container:
            if not container.streams.audio:
                raise IngestError(f"{self.name}: no audio stream in it")
            self.declared_s = container.duration / 1e6 if container.duration else None
        if self.declared_s and self.declared_s > MAX_AUDIO_S:
            raise IngestError(f"{self.name}: {too_long()}")

    def _errors(self) -> Any:
        import contextlib

        import av

        @contextlib.contextmanager
        def mapped() -> Iterator[None]:
            try:
                yield
            except av.error.FFmpegError as exc:
                raise IngestError(
                    f"{self.name}: cannot decode it: corrupt, truncated or not audio "
                    f"({exc.strerror})"
                ) from exc

        return mapped()

    def blocks(self) -> Iterator[np.ndarray]:
        """The audio as 16 kHz mono float32 blocks of about 10-30 s, resampled as faster-whisper
        does; damaged packets are skipped (up to a limit), a file cut short is refused at its
        end."""
        with self._errors(), self._open() as container:
            yield from self._decode(container, container.streams.audio[0])
        decoded_s = self.decoded_samples / SAMPLE_RATE
        declared_s = self.declared_s
        if declared_s and decoded_s < declared_s * (1 - _TRUNCATION_SHARE) - _TRUNCATION_SLACK_S:
            raise IngestError(
                f"{self.name}: only {decoded_s:.1f} s of the {declared_s:.1f} s it declares "
                f"could be decoded; the file is truncated or corrupt, nothing was added"
            )
        if self.bad_packets:
            log.warning("%s: skipped %d undecodable audio packets", self.name, self.bad_packets)

    def _decode(self, container: Any, stream: Any) -> Iterator[np.ndarray]:
        """Packets are decoded one by one: a decoding generator that raises is finished, so
        skipping a damaged packet is only possible below it. Frames are gathered into large
        groups before resampling, as faster-whisper does: one call per group instead of one per
        frame is what keeps decoding fast."""
        import av

        resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        fifo = av.audio.fifo.AudioFifo()
        max_samples = int(MAX_AUDIO_S * SAMPLE_RATE)
        busy_s = 0.0  # decoding work only: the caller's work between blocks does not count
        began = time.monotonic()

        def resampled(frame: Any) -> np.ndarray:
            parts = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
            self.decoded_samples += len(pcm)
            if self.decoded_samples > max_samples:
                raise IngestError(f"{self.name}: {too_long()}")
            return pcm.astype(np.float32) / 32768.0

        for packet in container.demux(stream):
            if busy_s + time.monotonic() - began > MAX_DECODE_S:
                message = f"{self.name}: gave up decoding after {MAX_DECODE_S:.0f} s (time limit)"
                raise IngestError(message)
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                self.bad_packets += 1
                if self.bad_packets > _MAX_BAD_PACKETS:
                    message = f"{self.name}: too many damaged audio packets; the file is corrupt"
                    raise IngestError(message) from exc
                continue
            for frame in frames:
                frame.pts = None  # a skipped packet leaves a gap the FIFO would refuse
                fifo.write(frame)
            if fifo.samples >= _GROUP_SAMPLES:
                block = resampled(fifo.read())
                busy_s += time.monotonic() - began
                yield block
                began = time.monotonic()
        tail = [resampled(fifo.read())] if fifo.samples else []
        block = np.concatenate([*tail, resampled(None)])
        if len(block):
            yield block


def decode_all(source: Path | bytes, name: str | None = None) -> np.ndarray:
    """A whole recording as one array: for voice notes and short clips, never for a meeting."""
    blocks = list(AudioStream(source, name).blocks())
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def cut_windows(blocks: Iterable[np.ndarray], window_s: float | None = None) -> Iterator[Window]:
    """16 kHz blocks gathered into windows of about `window_s` (default `WINDOW_S`), each ending
    at the quietest 0.1 s of its last `CUT_SEARCH_S` (a pause, not a word); the last window holds
    what is left.

    Blocks are copied into one window-sized array as they come (no list of blocks to join), and
    the next array is made only once the caller asks for the next window: a caller that lets go
    of each window before asking holds one window of samples at a time.
    """
    size = int((window_s or WINDOW_S) * SAMPLE_RATE)
    search = min(int(CUT_SEARCH_S * SAMPLE_RATE), size // 2)
    buffer: np.ndarray | None = None
    rest = np.zeros(0, np.float32)  # what followed the last cut
    filled = 0
    start = 0
    index = 0
    for block in blocks:
        while len(block):
            if buffer is None:
                buffer = np.empty(size, np.float32)
                buffer[: len(rest)] = rest
                filled, rest = len(rest), rest[:0]
            take = min(size - filled, len(block))
            buffer[filled : filled + take] = block[:take]
            filled, block = filled + take, block[take:]
            if filled == size:
                cut = size - search + _quietest(buffer[size - search :])
                rest = buffer[cut:].copy()
                window, buffer = Window(index, start, buffer[:cut]), None
                yield window
                del window
                index, start = index + 1, start + cut
    if buffer is not None and filled:
        yield Window(index, start, buffer[:filled])
    elif len(rest):
        yield Window(index, start, rest)


def _quietest(audio: np.ndarray) -> int:
    """The middle of the quietest 0.1 s frame of `audio` (the last of equals), in samples."""
    frame = int(_CUT_FRAME_S * SAMPLE_RATE)
    count = len(audio) // frame
    if count == 0:
        return len(audio)
    power = (audio[: count * frame].reshape(count, frame).astype(np.float64) ** 2).mean(axis=1)
    latest = count - 1 - int(np.argmin(power[::-1]))  # of equals (digital silence), the last
    return latest * frame + frame // 2


def too_long() -> str:
    return f"longer than {MAX_AUDIO_S / 3600:g} hours; split it into parts"


def cut_short(f: IO[bytes]) -> str:
    """Why a WAV or Ogg file is visibly cut short, from its own framing; "" if it is not.

    Both formats can be decoded to the point where they stop with no error at all, so the
    container's own sizes are the only sign that the end is missing. Only headers are read.
    """
    f.seek(0)
    head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav_cut_short(f)
    if head[:4] == b"OggS":
        return _ogg_cut_short(f)
    return ""


def _size(f: IO[bytes]) -> int:
    at = f.tell()
    end = f.seek(0, io.SEEK_END)
    f.seek(at)
    return end


def _wav_cut_short(f: IO[bytes]) -> str:
    total = _size(f)
    pos = 12
    while pos + 8 <= total:
        f.seek(pos)
        header = f.read(8)
        tag, size = header[:4], struct.unpack("<I", header[4:8])[0]
        if tag == b"data":
            # Streaming writers put a placeholder size (0 or all ones) they never fill in.
            if size in (0, 0xFFFFFFFF, 0x7FFFFFFF) or size >= 0x7FFF0000:
                return ""
            have = total - pos - 8
            return f"its data chunk declares {size} bytes but {have} follow" if have < size else ""
        pos += 8 + size + (size & 1)
    return "no data chunk in this WAV file"


def _ogg_cut_short(f: IO[bytes]) -> str:
    total = _size(f)
    pos, flags = 0, 0
    while pos < total:
        f.seek(pos)
        header = f.read(27)
        if len(header) < 27 or header[:4] != b"OggS":
            return f"its Ogg page at byte {pos} is incomplete"
        lacing = f.read(header[26])
        end = pos + 27 + header[26] + sum(lacing)
        if len(lacing) < header[26] or end > total:
            return f"its Ogg page at byte {pos} is incomplete"
        pos, flags = end, header[5]
    return "" if flags & 0x04 else "its last Ogg page does not end the stream"
