"""Voice notes: record from a block source into memory, never to a file, until the note ends.

A `BlockSource` hands over 16 kHz mono float32 blocks as they are heard: the `Microphone`, or
a `Playback` of audio already in memory (a file played as if it were spoken into the
microphone, for tests and trials). A `Recorder` reads blocks from one, reports each block's
level, and stops after a silence once speech was heard, at the length cap, or when told to
(`stop()`, Ctrl-C); what was recorded is kept. The samples stay in memory until they are
transcribed and the transcript is stored in the vault (security.md 16).

Recording from the microphone needs the optional dependency `sounddevice`
(`pip install 'localrag[record]'`) and the PortAudio library it wraps; without either, or
without a microphone, `Microphone.check()` raises one `RecordError` line that says what to
install or plug in.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from localrag.errors import LocalragError
from localrag.settings import MAX_NOTE_S, Settings
from localrag.silence import SilenceDetector, Verdict
from localrag.transcribe import SAMPLE_RATE

log = logging.getLogger(__name__)

BLOCK_S = 0.1
"""How often the recorder hands over what it heard, in seconds."""
NO_SOUND_S = 2.0
"""A microphone that sends nothing for this long is reported, not waited on forever."""
METER_FLOOR_DBFS = -60.0
"""The level meter's empty end; its full end is 0 dBFS."""


class RecordError(LocalragError):
    title = "Microphone"
    exit_code = 8


class BlockSource(Protocol):
    """Where a voice note's sound comes from."""

    def check(self) -> str:
        """Its name, to show; a `RecordError` line if it cannot record."""
        ...

    def blocks(self) -> Generator[np.ndarray, None, None]:
        """16 kHz mono float32 blocks as they are heard, for as long as the caller reads;
        closing the iterator releases the device."""
        ...


class Microphone:
    """The default input device, through sounddevice (imported on first use)."""

    def __init__(self, block_s: float = BLOCK_S) -> None:
        self.block_s = block_s

    def check(self) -> str:
        sd = _sounddevice()
        try:
            device: Any = sd.query_devices(kind="input")
        except (sd.PortAudioError, ValueError) as exc:
            raise RecordError(f"no microphone found ({_first_line(exc)}); plug one in") from exc
        return str(device["name"])

    def blocks(self) -> Generator[np.ndarray, None, None]:
        sd = _sounddevice()
        heard: queue.Queue[np.ndarray] = queue.Queue()

        def callback(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            if status:
                log.warning("microphone: %s", status)
            heard.put(indata[:, 0].copy())

        try:
            stream = sd.InputStream(
                samplerate=SAMPLE_RATE,
                channels=1,
                dtype="float32",
                blocksize=round(self.block_s * SAMPLE_RATE),
                callback=callback,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise RecordError(f"cannot open the microphone ({_first_line(exc)})") from exc
        with stream:
            while True:
                try:
                    yield heard.get(timeout=NO_SOUND_S)
                except queue.Empty:
                    raise RecordError(
                        "the microphone sends no sound; check that it is on"
                    ) from None


class Playback:
    """Audio in memory played as if it were the microphone: its blocks, then a quiet room.

    `speed` None hands the blocks over as fast as they are read; 1.0 at the pace they were
    spoken (what a microphone does), 4.0 four times faster.
    """

    def __init__(
        self,
        audio: np.ndarray,
        name: str = "playback",
        speed: float | None = None,
        block_s: float = BLOCK_S,
    ) -> None:
        self.audio = np.asarray(audio, dtype=np.float32)
        self.name = name
        self.speed = speed
        self.block = round(block_s * SAMPLE_RATE)

    @classmethod
    def from_file(cls, path: Path, speed: float | None = None) -> Playback:
        """A recording file (any format `localrag transcribe` reads), decoded in memory."""
        from localrag.transcribe import decode_audio, read_file

        return cls(decode_audio(read_file(path), str(path)), path.name, speed)

    def check(self) -> str:
        return self.name

    def blocks(self) -> Generator[np.ndarray, None, None]:
        at = 0
        while True:
            block = np.zeros(self.block, dtype=np.float32)
            piece = self.audio[at : at + self.block]
            block[: len(piece)] = piece
            at += self.block
            if self.speed:
                time.sleep(self.block / SAMPLE_RATE / self.speed)
            yield block


def default_microphone() -> BlockSource:
    """The source voice notes are recorded from (tests put a `Playback` in its place)."""
    return Microphone()


@dataclass(frozen=True)
class RecordOptions:
    """When a voice note ends."""

    max_s: float = 600.0
    """It stops here whatever it hears."""
    stop_after_silence_s: float | None = 3.0
    """It stops after this much continuous silence once speech was heard (None: never)."""
    threshold_dbfs: float = 0.0
    """Blocks above this level are speech; 0 learns it from the room."""

    def __post_init__(self) -> None:
        if not 0 < self.max_s <= MAX_NOTE_S:
            raise RecordError(f"a voice note lasts between 0 and {MAX_NOTE_S:.0f} seconds")
        if self.stop_after_silence_s is not None and self.stop_after_silence_s < 0:
            raise RecordError("the silence that stops a note cannot be negative")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        seconds: float | None = None,
        stop_after_silence_s: float | None = None,
        stop_on_silence: bool = True,
    ) -> RecordOptions:
        """The settings' options, with what the command line says instead where it says it."""
        silence = stop_after_silence_s
        if silence is None:
            silence = settings.stop_after_silence_s
        return cls(
            max_s=settings.voice_note_max_s if seconds is None else seconds,
            stop_after_silence_s=(silence or None) if stop_on_silence else None,
            threshold_dbfs=settings.silence_threshold_dbfs,
        )


@dataclass(frozen=True)
class Recording:
    """A voice note, recorded."""

    audio: np.ndarray
    """16 kHz mono float32 samples, in memory only."""
    stopped_by: str
    """"silence", "limit" (the length cap) or "cancel" (Stop, Escape, Ctrl-C)."""
    speech_heard: bool
    """Whether any block was loud enough to be speech."""

    @property
    def recorded_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class Recorder:
    """Reads a source until the note ends; `run()` in one thread, `stop()` from any."""

    def __init__(self, source: BlockSource, options: RecordOptions | None = None) -> None:
        self.source = source
        self.options = options or RecordOptions()
        self._stop = threading.Event()

    def stop(self) -> None:
        """End the note at the next block, keeping what was recorded."""
        self._stop.set()

    def run(self, on_level: Callable[[Verdict], None] | None = None) -> Recording:
        """Record until silence, the cap or `stop()` (Ctrl-C stops too); `on_level` hears each
        block's verdict (its level, the silence so far). A `RecordError` line if the source
        cannot record or nothing was heard."""
        self.source.check()
        options = self.options
        detector = SilenceDetector(
            SAMPLE_RATE, options.stop_after_silence_s, options.threshold_dbfs, options.max_s
        )
        cap = round(options.max_s * SAMPLE_RATE)
        kept: list[np.ndarray] = []
        got = 0
        stopped_by = "cancel"
        try:
            with contextlib.closing(self.source.blocks()) as blocks:
                for block in blocks:
                    block = block[: cap - got]
                    kept.append(block)
                    got += len(block)
                    verdict = detector.feed(block)
                    if on_level is not None:
                        on_level(verdict)
                    if verdict.stop is not None:
                        stopped_by = verdict.stop
                        break
                    if self._stop.is_set():
                        break
        except KeyboardInterrupt:
            stopped_by = "cancel"  # Ctrl-C ends the note; what was heard is kept
        except RecordError as exc:
            if not got:
                raise
            # The device went away mid-note: keep what it heard rather than lose it all.
            log.warning("%s; keeping the %.1f s recorded", exc.message, got / SAMPLE_RATE)
        if not got:
            raise RecordError("nothing was recorded")
        return Recording(np.concatenate(kept), stopped_by, detector.speech_heard)


def level_bar(level_dbfs: float, cells: int = 8) -> str:
    """The level as a bar of `cells` marks, empty at -60 dBFS and full at 0."""
    share = (level_dbfs - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS
    full = round(min(1.0, max(0.0, share)) * cells)
    return "▮" * full + "▯" * (cells - full)


def stop_hint(options: RecordOptions, verdict: Verdict | None = None) -> str:
    """How the note will end, as the meter says it: "stops after 3 s of silence"."""
    wait = options.stop_after_silence_s
    if wait is None:
        return f"stops at {_clock(options.max_s)}"
    if verdict is not None and verdict.speech_heard and verdict.silent_s > 0:
        # Rounded up: the last second reads "1 s", never "0 s" while it still records.
        return f"silence: stops in {max(1, math.ceil(wait - verdict.silent_s - 1e-9))} s"
    return f"stops after {wait:g} s of silence"


def meter_line(verdict: Verdict, options: RecordOptions, cells: int = 8) -> str:
    """`● 00:07  ▮▮▮▮▯▯▯▯ -23 dBFS  (stops after 3 s of silence)`"""
    return (
        f"● {_clock(verdict.elapsed_s)}  {level_bar(verdict.level_dbfs, cells)} "
        f"{verdict.level_dbfs:3.0f} dBFS  ({stop_hint(options, verdict)})"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except ImportError as exc:
        raise RecordError(
            "recording needs the optional dependency sounddevice: pip install 'localrag[record]'"
        ) from exc
    except OSError as exc:
        # sounddevice raises OSError at import when the PortAudio library is missing.
        raise RecordError(
            f"recording needs the PortAudio library ({exc}): install it, e.g. "
            "`apt install libportaudio2` or `brew install portaudio`"
        ) from exc
    return sounddevice


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
