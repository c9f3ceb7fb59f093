"""Who spoke when: speaker turns from speaker vectors clustered over the speech of a recording.

The speech is found by the Silero voice-activity model that ships inside faster-whisper (with a
short minimum pause, so a change of speaker is a gap), cut into windows of at most 1.6 s, and
each window gets a speaker vector (`SpeakerEmbedder`: Resemblyzer's voice encoder, or the MFCC
baseline). The windows of one stretch of speech (no pause of 0.1 s in it) are averaged into one
vector; those of the stretches of at least `SURE_S` are clustered bottom-up with average linkage
on cosine distance until the closest two clusters are further apart than a threshold, or until
`speakers` clusters are left when the count is known, and each shorter stretch joins the
cluster it is most like. Consecutive stretches of one cluster become a turn; a turn shorter than
`MIN_TURN_S` between two turns of one other speaker is taken to be that speaker (a cough or a
"yes" is rarely a third person).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from localrag.records import Segment
from localrag.speakers.voice_encoder import VoiceEncoder

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WINDOW_S = 1.6
"""Longest piece of speech one speaker vector describes (what the voice encoder was trained on);
longer speech is cut into equal windows of 0.8 to 1.6 s."""
MIN_WINDOW_S = 0.4
"""Speech shorter than this gets no vector of its own; it joins the nearest stretch's speaker."""
THRESHOLD = 0.3
"""Average-linkage cosine distance above which two clusters of voice-encoder vectors are
different people (chosen on the bench meeting, `localrag bench speakers`; an embedder may
carry its own as `threshold`)."""
SURE_S = 1.0
"""Stretches of speech shorter than this join a speaker found in longer ones."""
MIN_TURN_S = 0.5
MERGE_GAP_S = 1.0
"""Two turns of one speaker closer than this are one turn."""


@dataclass(frozen=True)
class Turn:
    """A stretch of a recording where one person speaks."""

    start_s: float
    end_s: float
    speaker: str
    """"Speaker 1", "Speaker 2", ... in order of first appearance."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class SpeakerEmbedder(Protocol):
    """Speaker vectors for pieces of one recording."""

    threshold: float
    """The clustering threshold that suits these vectors."""

    def embed_windows(self, audio: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(windows), dims) L2-normalised vectors of `audio[start:end]` for each window."""
        ...


def speech_regions(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech, by Silero VAD with pauses of 0.25 s or more."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=100, speech_pad_ms=30)
    found = get_speech_timestamps(np.asarray(audio, dtype=np.float32), options)
    return [(int(r["start"]), int(r["end"])) for r in found]


def windows_of(regions: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each region cut into equal windows of at most `WINDOW_S` (one if it is shorter)."""
    windows = []
    size = WINDOW_S * SAMPLE_RATE
    for start, end in regions:
        if end - start < MIN_WINDOW_S * SAMPLE_RATE:
            continue
        count = max(1, int(np.ceil((end - start) / size)))
        edges = np.linspace(start, end, count + 1).astype(int)
        windows += list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    return windows


def cluster(
    vectors: np.ndarray, threshold: float = THRESHOLD, speakers: int | None = None
) -> np.ndarray:
    """Agglomerative clustering with average linkage on cosine distance: a label per vector.

    Merges while the closest clusters are nearer than `threshold`, or, given `speakers`, until
    that many are left.
    """
    n = len(vectors)
    if n <= 1:
        return np.zeros(n, dtype=int)
    distance = (1.0 - vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(distance, np.inf)
    sizes = np.ones(n)
    alive = np.ones(n, dtype=bool)
    members = [[i] for i in range(n)]
    target = max(1, speakers) if speakers else 1
    while alive.sum() > target:
        flat = int(np.argmin(distance))
        a, b = divmod(flat, n)
        if speakers is None and distance[a, b] > threshold:
            break
        # Lance-Williams update for average linkage: the merged cluster's distance to any other
        # is the size-weighted mean of the two.
        merged = (sizes[a] * distance[a] + sizes[b] * distance[b]) / (sizes[a] + sizes[b])
        distance[a], distance[:, a] = merged, merged
        distance[a, a] = np.inf
        distance[b], distance[:, b] = np.inf, np.inf
        sizes[a] += sizes[b]
        alive[b] = False
        members[a] += members[b]
    labels = np.empty(n, dtype=int)
    for label, root in enumerate(np.flatnonzero(alive)):
        labels[members[root]] = label
    return labels


@dataclass(frozen=True)
class Voices:
    """The stretches of speech of a recording (or of a window of it), with one speaker vector
    for each stretch long enough to describe a voice. Small (a few kB per minute), so a long
    recording's are gathered window by window and clustered once at the end (`turns_of`)."""

    regions: list[tuple[int, int]]
    """(start, end) samples of each stretch, counted from the start of the whole recording."""
    described: list[int]
    """Indexes into `regions` of the stretches with a vector, in order."""
    vectors: np.ndarray
    """(len(described), dims): each the normalised mean of its stretch's window vectors."""

    @staticmethod
    def join(parts: Sequence[Voices]) -> Voices:
        """The voices of consecutive windows as those of one recording."""
        regions: list[tuple[int, int]] = []
        described: list[int] = []
        for part in parts:
            described += [len(regions) + i for i in part.described]
            regions += part.regions
        vectors = [p.vectors for p in parts if len(p.described)]
        return Voices(regions, described, np.concatenate(vectors) if vectors else np.zeros((0, 0)))


def voices_of(
    audio: np.ndarray,
    embedder: SpeakerEmbedder,
    offset: int = 0,
    regions: Sequence[tuple[int, int]] | None = None,
) -> Voices:
    """The voices in 16 kHz mono `audio`, which starts `offset` samples into the recording."""
    regions = speech_regions(audio) if regions is None else regions
    shifted = [(start + offset, end + offset) for start, end in regions]
    windows = windows_of(regions)
    if not windows:
        return Voices(shifted, [], np.zeros((0, 0), np.float32))
    vectors = embedder.embed_windows(audio, windows)
    # One vector per stretch of speech without a pause (the mean of its windows): a 1.6 s
    # window alone is a noisy description of a voice, and people rarely change without a pause.
    owner = np.searchsorted([start for start, _ in regions], [s for s, _ in windows], "right") - 1
    kept = np.unique(owner)
    means = np.stack([vectors[owner == r].mean(axis=0) for r in kept])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-9)
    return Voices(shifted, kept.tolist(), means.astype(np.float32))


def diarize(
    audio: np.ndarray,
    embedder: SpeakerEmbedder,
    speakers: int | None = None,
    threshold: float | None = None,
    regions: Sequence[tuple[int, int]] | None = None,
) -> list[Turn]:
    """The speaker turns of 16 kHz mono `audio`, in order, named by first appearance."""
    threshold = embedder.threshold if threshold is None else threshold
    return turns_of(voices_of(audio, embedder, regions=regions), threshold, speakers)


def turns_of(voices: Voices, threshold: float, speakers: int | None = None) -> list[Turn]:
    """The speaker turns of a recording from its voices, named by first appearance."""
    if not voices.described:
        return []
    regions, kept = voices.regions, voices.described
    lengths = np.array([(regions[r][1] - regions[r][0]) / SAMPLE_RATE for r in kept])
    found = _labels(voices.vectors, lengths, threshold, speakers)
    labels = dict(zip(kept, found, strict=True))
    for r in range(len(regions)):  # too short for a vector: the speaker of the nearest stretch
        if r not in labels:
            nearest = min(kept, key=lambda k: _region_gap(regions[r], regions[k]))
            labels[r] = labels[nearest]
    spans = [(s / SAMPLE_RATE, e / SAMPLE_RATE, labels[r]) for r, (s, e) in enumerate(regions)]
    return name_spans(smooth_spans(merge_spans(spans)))


def _region_gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(b[0] - a[1], a[0] - b[1], 0)


def _labels(
    vectors: np.ndarray, lengths_s: np.ndarray, threshold: float, speakers: int | None
) -> list[int]:
    """Cluster the stretches long enough to describe a voice well; each shorter one (a "Fine.")
    joins the cluster it is most like instead of starting a speaker of its own."""
    sure = lengths_s >= SURE_S
    if sure.sum() < 2 or (speakers and sure.sum() < speakers):
        sure[:] = True
    labels = np.full(len(vectors), -1)
    labels[sure] = cluster(vectors[sure], threshold, speakers)
    centroids = np.stack([vectors[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    for i in np.flatnonzero(~sure):
        labels[i] = int(np.argmax(centroids @ vectors[i]))
    return labels.tolist()


def merge_spans(spans: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    out: list[tuple[float, float, int]] = []
    for start, end, label in spans:
        if out and out[-1][2] == label and start - out[-1][1] < MERGE_GAP_S:
            out[-1] = (out[-1][0], end, label)
        else:
            out.append((start, end, label))
    return out


def smooth_spans(turns: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """A short turn between two turns of one other speaker becomes theirs."""
    changed = True
    while changed:
        changed = False
        for i in range(1, len(turns) - 1):
            before, turn, after = turns[i - 1], turns[i], turns[i + 1]
            if turn[1] - turn[0] < MIN_TURN_S and before[2] == after[2] != turn[2]:
                turns[i] = (turn[0], turn[1], before[2])
                turns = merge_spans(turns)
                changed = True
                break
    return turns


def name_spans(turns: list[tuple[float, float, int]]) -> list[Turn]:
    names: dict[int, str] = {}
    out = []
    for start, end, label in turns:
        name = names.setdefault(label, f"Speaker {len(names) + 1}")
        out.append(Turn(round(start, 3), round(end, 3), name))
    return out


def label_segments(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[Segment]:
    """Each segment with the speaker who talks most during it (the nearest turn's if none); a
    segment in which the speaker changes between two sentences is first cut there."""
    if not turns:
        return list(segments)
    labelled = []
    for s in (piece for segment in segments for piece in split_at_turns(segment, turns)):
        overlap: dict[str, float] = {}
        for t in turns:
            shared = min(s.end_s, t.end_s) - max(s.start_s, t.start_s)
            if shared > 0:
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + shared
        if overlap:
            speaker = max(overlap, key=lambda k: overlap[k])
        else:
            middle = (s.start_s + s.end_s) / 2
            speaker = min(turns, key=lambda t: _gap(middle, t)).speaker
        labelled.append(replace(s, speaker=speaker))
    return labelled


SENTENCE_END = re.compile(r"[.?!](?=\s)")
SPLIT_SLACK = 0.25
"""A sentence end is taken for a change of speaker only if it lies within this share of the
segment's text of where the change falls in time (words take about equal time)."""


def split_at_turns(segment: Segment, turns: Sequence[Turn]) -> list[Segment]:
    """`segment` cut at each change of speaker inside it that falls near a sentence end.

    Whisper may hear two people's sentences as one segment ("Fine. Why is it late?" from one and
    "The budget is ready." from the next); the whole would go to one of them. The text is cut
    at the sentence end nearest to where the change falls, its time at the change itself.
    """
    inside = [t for t in turns if t.end_s > segment.start_s and t.start_s < segment.end_s]
    changes = [
        b.start_s
        for a, b in itertools.pairwise(inside)
        if a.speaker != b.speaker and segment.start_s + 0.3 < b.start_s < segment.end_s - 0.3
    ]
    if not changes:
        return [segment]
    pieces: list[Segment] = []
    text, start_s = segment.text, segment.start_s
    for change_s in changes:
        at = (change_s - start_s) / (segment.end_s - start_s) * len(text)
        ends = [m.end() for m in SENTENCE_END.finditer(text)]
        near = min(ends, key=lambda e: abs(e - at), default=None)
        if near is None or abs(near - at) > SPLIT_SLACK * len(segment.text):
            continue
        pieces.append(replace(segment, start_s=start_s, end_s=change_s, text=text[:near].strip()))
        text, start_s = text[near:].strip(), change_s
    pieces.append(replace(segment, start_s=start_s, text=text))
    return [p for p in pieces if p.text]


def _gap(at_s: float, turn: Turn) -> float:
    return max(turn.start_s - at_s, at_s - turn.end_s, 0.0)


class VoiceEmbedder:
    """`SpeakerEmbedder` with Resemblyzer's voice encoder: one vector per window. A window
    shorter than the 1.6 s the model was trained on is repeated to fill them: zeros after the
    speech would move the LSTM's last state away from the voice."""

    threshold = THRESHOLD

    def __init__(self, encoder: VoiceEncoder) -> None:
        self.encoder = encoder

    def embed_windows(self, audio: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
        from localrag.speakers.voice_encoder import N_MELS, PARTIAL_FRAMES, mel_frames

        batch = np.zeros((len(windows), PARTIAL_FRAMES, N_MELS), np.float32)
        for row, (start, end) in enumerate(windows):
            # Per window, not the whole recording at once: an hour's spectrum would take a GB.
            frames = mel_frames(audio[start:end])[:PARTIAL_FRAMES]
            batch[row] = np.resize(frames, (PARTIAL_FRAMES, N_MELS))
        # 128 windows at a time through the LSTM bounds memory.
        return np.concatenate(
            [self.encoder.embed(batch[i : i + 128]) for i in range(0, len(batch), 128)]
        )
