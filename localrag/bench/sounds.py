"""Audio made in code for tests and benches: speech from espeak-ng where it is installed, a tone
in noise where it is not, encoded in memory by PyAV into any format localrag reads."""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import Any

import numpy as np

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


def spoken(text: str) -> np.ndarray | None:
    """`text` spoken by espeak-ng as 16 kHz mono float32 samples; None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-s", "150", text], capture_output=True, check=True
    ).stdout
    return decode_audio(wav, "espeak-ng")


def tone_in_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """A 440 Hz tone under white noise: audio that decodes and goes through Whisper's path."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)


def encode(samples: np.ndarray, ext: str) -> bytes:
    """The samples as a file of the format `ext` names."""
    import av

    container_format, codec = FORMATS[ext]
    rate = 48_000 if codec == "libopus" else SAMPLE_RATE
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    if rate != SAMPLE_RATE:
        pcm = np.repeat(pcm, rate // SAMPLE_RATE)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=rate)  # an audio stream: av types it wide
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
