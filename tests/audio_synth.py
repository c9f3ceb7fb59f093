"""Speech with known words for the audio tests: espeak-ng speaks, PyAV encodes, all in memory."""

from __future__ import annotations

import io
import shutil
import subprocess

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
