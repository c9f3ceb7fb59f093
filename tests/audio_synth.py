"""Speech with known words for the audio tests: espeak-ng speaks, PyAV encodes, all in memory."""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from localrag.bench.sounds import FORMATS, encode, spoken
from localrag.transcribe import SAMPLE_RATE

__all__ = ["FORMATS", "encode", "fake_sounddevice", "meeting", "silence", "speak"]


def speak(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32 samples."""
    samples = spoken(text)
    if samples is None:
        pytest.fail("espeak-ng is not installed (apt install espeak-ng); the audio tests need it")
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def meeting(
    sentences: list[str], gap_s: float = 1.5
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The sentences spoken one after another with a pause between; each one's time range."""
    parts: list[np.ndarray] = [silence(0.5)]
    ranges: list[tuple[float, float]] = []
    at = 0.5
    for sentence in sentences:
        voice = speak(sentence)
        ranges.append((at, at + len(voice) / SAMPLE_RATE))
        parts += [voice, silence(gap_s)]
        at += len(voice) / SAMPLE_RATE + gap_s
    return np.concatenate(parts), ranges


def fake_sounddevice(audio: np.ndarray | None = None, has_input: bool = True) -> ModuleType:
    """A stand-in for the `sounddevice` module whose microphone "hears" `audio` (then silence),
    handing blocks to the callback from a thread as PortAudio does."""
    sd = ModuleType("sounddevice")
    heard = np.zeros(0, dtype=np.float32) if audio is None else audio.astype(np.float32)

    class PortAudioError(Exception):
        pass

    def query_devices(kind: str) -> dict[str, Any]:
        if not has_input:
            raise PortAudioError("Error querying device -1")
        return {"name": "Fake microphone"}

    class InputStream:
        def __init__(self, *, blocksize: int, callback: Any, **_: Any) -> None:
            self.blocksize = blocksize
            self.callback = callback
            self.running = False
            self.thread = threading.Thread(target=self._run)

        def _run(self) -> None:
            at = 0
            while self.running:
                block = np.zeros((self.blocksize, 1), dtype=np.float32)
                piece = heard[at : at + self.blocksize]
                block[: len(piece), 0] = piece
                at += self.blocksize
                self.callback(block, self.blocksize, None, None)
                time.sleep(0.002)

        def __enter__(self) -> InputStream:
            self.running = True
            self.thread.start()
            return self

        def __exit__(self, *exc: object) -> None:
            self.running = False
            self.thread.join()

    sd.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.InputStream = InputStream  # type: ignore[attr-defined]
    return sd
