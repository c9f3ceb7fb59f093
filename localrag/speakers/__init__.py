"""Speakers on the device: who says what in a recording.

A two-channel call whose channels are different people is split by channel (`channels`);
anything else by voice: Resemblyzer's voice encoder (`voice_encoder`, numpy, weights from
safetensors) gives a vector per 1.6 s of speech and `diarize` clusters them into turns. Each
transcript segment then carries its speaker, and the chunker closes a chunk at every change of
speaker, so a citation names one person: `standup.m4a @ 01:05–01:32, Speaker 2`. A long
recording is read a window at a time: each window leaves its `Voices` (vectors, not samples), and
`SpeakerFinder.turns_of` clusters them all at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from localrag.errors import LocalragError, ModelError
from localrag.records import Segment
from localrag.settings import Settings
from localrag.speakers.diarize import (
    SpeakerEmbedder,
    Turn,
    Voices,
    diarize,
    label_segments,
    turns_of,
    voices_of,
)

if TYPE_CHECKING:
    from localrag.transcribe import TranscribeEvent

log = logging.getLogger(__name__)

__all__ = [
    "SpeakerChoice",
    "SpeakerFinder",
    "SpeakerSummary",
    "Turn",
    "Voices",
    "build_embedder",
    "check_new_name",
    "speakers_event",
    "summarize",
]


@dataclass(frozen=True)
class SpeakerChoice:
    """What the user asked for one recording (`--speakers N`, `--no-speakers`)."""

    enabled: bool = True
    count: int | None = None
    """The number of speakers if known; None: found by the clustering threshold."""


@dataclass(frozen=True)
class Attribution:
    """The segments of a recording with their speakers, and how they were found."""

    segments: list[Segment]
    turns: list[Turn]
    method: str
    """"channels", "voice", or "none" with `notice` saying why."""
    notice: str = ""


class SpeakerFinder:
    """Labels a recording's segments with speakers; the voice model loads on first use."""

    def __init__(self, build: Callable[[], SpeakerEmbedder], count: int | None = None) -> None:
        """`build` gives the speaker embedder (called once, when a recording needs it)."""
        self._build = build
        self._embedder: SpeakerEmbedder | None = None
        self.count = count

    @property
    def embedder(self) -> SpeakerEmbedder:
        if self._embedder is None:
            self._embedder = self._build()
        if self._embedder is None:  # an assistant built with no speaker part
            raise ModelError("no speaker model is configured")
        return self._embedder

    def channel_turns(self, source: Path | None) -> list[Turn] | None:
        """The turns of a two-channel call split by channel; None if `source` is not one."""
        if source is None or not source.is_file():
            return None
        from localrag.speakers.channels import turns_by_channel

        return turns_by_channel(source)

    def voices(self, audio: np.ndarray, offset: int = 0) -> Voices:
        """The voices of a window of a recording that starts `offset` samples in."""
        return voices_of(audio, self.embedder, offset)

    def turns_of(self, voices: Voices) -> list[Turn]:
        """The turns of a whole recording from the voices of its windows."""
        return turns_of(voices, self.embedder.threshold, self.count)

    def turns(self, audio: np.ndarray, source: Path | None = None) -> tuple[list[Turn], str]:
        """The speaker turns and how they were found ("channels" or "voice")."""
        by_channel = self.channel_turns(source)
        if by_channel:
            return by_channel, "channels"
        return diarize(audio, self.embedder, self.count), "voice"

    def attribute(
        self, segments: Sequence[Segment], audio: np.ndarray, source: Path | None = None
    ) -> Attribution:
        """`segments` with the speaker of each; without speakers (and a notice saying why) if
        the speaker model cannot be used, so the transcript is never lost over it."""
        return self.attribute_found(segments, lambda: self.turns(audio, source))

    def attribute_found(
        self, segments: Sequence[Segment], find: Callable[[], tuple[list[Turn], str]]
    ) -> Attribution:
        """As `attribute`, with the turns and how they were found given by `find()`."""
        if not segments:
            return Attribution([], [], "none")
        try:
            turns, method = find()
        except LocalragError as exc:
            log.warning("speakers not told apart: %s", exc.message)
            return Attribution(
                list(segments), [], "none", f"speakers not told apart: {exc.message}"
            )
        if len({t.speaker for t in turns}) < 2:
            # One voice tells nothing apart: a label would only add words to every citation
            # and prompt (the answer model refused a question over a memo marked "Speaker 1").
            return Attribution(list(segments), turns, method)
        return Attribution(label_segments(segments, turns), turns, method)


def build_embedder(settings: Settings) -> SpeakerEmbedder:
    """The voice encoder that serves the settings, checked against its pinned hash first."""
    from localrag.models import model_path
    from localrag.speakers.diarize import VoiceEmbedder
    from localrag.speakers.voice_encoder import VoiceEncoder

    return VoiceEmbedder(VoiceEncoder.load(model_path(settings, "speaker")))


@dataclass(frozen=True)
class SpeakerSummary:
    """One speaker of a recording, as `localrag speakers DOC` lists them."""

    name: str
    """"Speaker 2", or the name given with `localrag speakers rename`."""
    talk_s: float
    """Time they speak, summed over their segments."""
    turns: int
    """How many times they take the floor (runs of their segments)."""
    first_s: float
    """When they first speak."""


def summarize(segments: Sequence[Segment]) -> list[SpeakerSummary]:
    """The speakers of a transcript in order of first appearance."""
    talk: dict[str, float] = {}
    turns: dict[str, int] = {}
    first: dict[str, float] = {}
    previous = None
    for s in segments:
        if s.speaker is None:
            previous = None
            continue
        talk[s.speaker] = talk.get(s.speaker, 0.0) + max(0.0, s.end_s - s.start_s)
        first.setdefault(s.speaker, s.start_s)
        if s.speaker != previous:
            turns[s.speaker] = turns.get(s.speaker, 0) + 1
        previous = s.speaker
    return [SpeakerSummary(n, round(talk[n], 3), turns[n], first[n]) for n in first]


MAX_NAME_CHARS = 80


def check_new_name(name: str, others: set[str]) -> str:
    """A speaker's new name, cleaned; a `UsageError` if it is empty, too long or another
    speaker's (two people under one name could not be told apart again)."""
    from localrag.errors import UsageError

    clean = " ".join(name.split())
    if not clean or not clean.isprintable():
        raise UsageError("a speaker's name must be printable text, not empty")
    if len(clean) > MAX_NAME_CHARS:
        raise UsageError(f"a speaker's name is at most {MAX_NAME_CHARS} characters")
    if clean in others:
        raise UsageError(f"another speaker of this recording is called {clean!r} already")
    return clean


def speakers_event(last: TranscribeEvent, found: Attribution, started: float) -> TranscribeEvent:
    """The `speakers` event that follows `done`: every segment with its speaker."""
    import dataclasses
    import time

    count = len({t.speaker for t in found.turns})
    detail = found.notice or f"{count} speaker{'s' if count != 1 else ''} ({found.method})"
    return dataclasses.replace(
        last,
        status="speakers",
        segments=tuple(found.segments),
        detail=detail,
        elapsed_s=time.perf_counter() - started,
    )
