"""Voice notes: record from the microphone into memory, never to a file.

Recording needs the optional dependency `sounddevice` (`pip install 'localrag[record]'`) and the
PortAudio library it wraps; without either, or without a microphone, `record()` raises one
`RecordError` line that says what to install or plug in. The samples stay in memory until they
are transcribed and the transcript is stored in the vault (security.md 16).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from localrag.errors import LocalragError
from localrag.transcribe import SAMPLE_RATE

log = logging.getLogger(__name__)

BLOCK_S = 0.1
"""How often the recorder hands over what it heard, in seconds."""
MAX_NOTE_S = 3600.0
"""The longest voice note, in seconds."""


class RecordError(LocalragError):
    title = "Microphone"
    exit_code = 8


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


def check_microphone() -> str:
    """The name of the default input device; a `RecordError` if there is none."""
    sd = _sounddevice()
    try:
        device: Any = sd.query_devices(kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        raise RecordError(f"no microphone found ({_first_line(exc)}); plug one in") from exc
    return str(device["name"])


def record(seconds: float) -> Iterator[np.ndarray]:
    """Record `seconds` of 16 kHz mono audio, yielding float32 blocks as they arrive.

    The caller owns progress and can stop early by leaving the loop (e.g. on Ctrl-C).
    """
    if not 0 < seconds <= MAX_NOTE_S:
        raise RecordError(f"a voice note lasts between 0 and {MAX_NOTE_S:.0f} seconds")
    sd = _sounddevice()
    check_microphone()
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def heard(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status:
            log.warning("microphone: %s", status)
        blocks.put(indata[:, 0].copy())

    wanted = int(seconds * SAMPLE_RATE)
    got = 0
    try:
        stream = sd.InputStream(
            samplerate=SAMPLE_RATE,
            channels=1,
            dtype="float32",
            blocksize=int(BLOCK_S * SAMPLE_RATE),
            callback=heard,
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise RecordError(f"cannot open the microphone ({_first_line(exc)})") from exc
    with stream:
        while got < wanted:
            try:
                block = blocks.get(timeout=2.0)
            except queue.Empty:
                raise RecordError("the microphone sends no sound; check that it is on") from None
            block = block[: wanted - got]
            got += len(block)
            yield block


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
