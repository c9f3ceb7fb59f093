"""A call recorded as two channels (mic + system audio): each channel is one person.

Such a file needs no voice model: in each 10 ms frame where someone speaks, one channel is much
louder than the other. A stereo file whose channels carry the same sound (a room recorded in
stereo, mono copied twice) does not show this and is diarized by voice instead. Only the
energy of each frame is kept while decoding, so a long call costs a few MB.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from localrag.speakers.diarize import MIN_TURN_S, Turn, merge_spans, name_spans, smooth_spans

FRAME_S = 0.01
DOMINANCE_DB = 6.0
"""A frame belongs to a channel that is this much louder than the other."""
DOMINATED_SHARE = 0.7
"""Share of the active frames that must be dominated by one channel or the other."""
MIN_CHANNEL_SHARE = 0.05
"""Each channel must dominate at least this share of them: else it is one person, not two."""
_SMOOTH_FRAMES = 31
"""A median over 0.3 s: the pauses between words do not flip the speaker."""


def channel_energies(source: bytes | Path) -> np.ndarray | None:
    """(frames, 2) mean power per 10 ms frame of each channel at 16 kHz; None unless the
    recording's first audio stream has exactly two channels (or it cannot be read: the mono path
    reports that). A path is read as it is decoded, never whole."""
    import av

    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(opened, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio or container.streams.audio[0].channels != 2:
                return None
            stream = container.streams.audio[0]
            resampler = av.audio.resampler.AudioResampler(format="flt", layout="stereo", rate=16000)
            energies: list[np.ndarray] = []
            carry = np.zeros((0, 2), np.float32)
            frame = int(16000 * FRAME_S)
            for packet in container.demux(stream):
                for decoded in packet.decode():
                    for out in resampler.resample(decoded):
                        samples = out.to_ndarray().reshape(-1, 2)  # packed: L R L R ...
                        carry = np.concatenate([carry, samples])
                        whole = len(carry) // frame * frame
                        blocks = carry[:whole].reshape(-1, frame, 2)
                        energies.append((blocks.astype(np.float64) ** 2).mean(axis=1))
                        carry = carry[whole:]
    except (av.error.FFmpegError, ValueError):
        return None
    return np.concatenate(energies) if energies else np.zeros((0, 2))


def channel_turns(energies: np.ndarray) -> list[Turn] | None:
    """Speaker turns by loudest channel ("Speaker 1" speaks first), or None if the channels do
    not hold two different people."""
    if len(energies) == 0:
        return None
    loudest = energies.max(axis=1)
    floor = max(np.percentile(loudest, 99) * 10 ** (-40 / 10), 1e-9)
    active = loudest > floor
    if active.sum() < 50:  # under half a second of sound
        return None
    ratio_db = 10 * np.log10((energies[:, 0] + 1e-12) / (energies[:, 1] + 1e-12))
    left, right = active & (ratio_db > DOMINANCE_DB), active & (ratio_db < -DOMINANCE_DB)
    n = active.sum()
    if (left.sum() + right.sum()) / n < DOMINATED_SHARE or min(left.sum(), right.sum()) / n < (
        MIN_CHANNEL_SHARE
    ):
        return None
    label = np.where(active, np.where(ratio_db >= 0, 0, 1), -1)
    label = _median(label)
    spans: list[tuple[float, float, int]] = []
    start = 0
    for i in range(1, len(label) + 1):
        if i == len(label) or label[i] != label[start]:
            if label[start] >= 0:
                spans.append((start * FRAME_S, i * FRAME_S, int(label[start])))
            start = i
    spans = [s for s in spans if s[1] - s[0] >= MIN_TURN_S / 4]
    return name_spans(smooth_spans(merge_spans(spans)))


def _median(label: np.ndarray) -> np.ndarray:
    """A running median over `_SMOOTH_FRAMES` of labels -1 (silence), 0 and 1."""
    half = _SMOOTH_FRAMES // 2
    padded = np.pad(label, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, _SMOOTH_FRAMES)
    return np.median(windows, axis=1).astype(int)


def turns_by_channel(path: Path) -> list[Turn] | None:
    """The turns of a two-channel recording split by channel, None if it is not one."""
    energies = channel_energies(path)
    return None if energies is None else channel_turns(energies)
