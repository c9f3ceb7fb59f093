"""Speech with known words for the audio tests: espeak-ng speaks, PyAV encodes, all in memory."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
from types import ModuleType
from typing import Any

import av
import numpy as np
import pytest

from localrag.transcribe import SAMPLE_RATE, decode_audio

# Container and codec for each extension localrag reads.
FORMATS = {
    ".wav": ("wav", "pcm_s16le"),
    ".flac": ("flac", "flac"),
    ".mp3": ("mp3", "libmp3lame"),
    ".m4a": ("ipod", "aac"),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("ogg", "libopus"),
    ".webm": ("webm", "libopus"),
}


def speak(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng, as 16 kHz mono float32 samples."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt install espeak-ng); the audio tests need it")
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-s", "150", text], capture_output=True, check=True
    ).stdout
    return decode_audio(wav, "espeak-ng")


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


def encode(samples: np.ndarray, ext: str) -> bytes:
    """The samples as a file of the format `ext` names."""
    container_format, codec = FORMATS[ext]
    rate = 48_000 if codec == "libopus" else SAMPLE_RATE
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    if rate != SAMPLE_RATE:
        pcm = np.repeat(pcm, rate // SAMPLE_RATE)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


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
