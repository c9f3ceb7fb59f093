"""Speakers on the device: who says what in a recording.

A two-channel call whose channels are different people is split by channel (`channels`);
anything else by voice: Resemblyzer's voice encoder (`voice_encoder`, numpy, weights from
safetensors) gives a vector per 1.6 s of speech and `diarize` clusters them into turns. Each
transcript segment then carries its speaker, and the chunker closes a chunk at every change of
speaker, so a citation names one person: `standup.m4a @ 01:05–01:32, Speaker 2`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localrag.errors import LocalragError
from localrag.records import Segment
from localrag.settings import Settings
from localrag.speakers.diarize import SpeakerEmbedder, Turn, diarize, label_segments

log = logging.getLogger(__name__)

__all__ = ["SpeakerChoice", "SpeakerFinder", "Turn", "build_embedder"]


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

    def __init__(
        self,
        embedder: SpeakerEmbedder | Callable[[], SpeakerEmbedder],
        count: int | None = None,
    ) -> None:
        self._embedder = embedder
        self.count = count

    @property
    def embedder(self) -> SpeakerEmbedder:
        if not hasattr(self._embedder, "embed_windows"):
            self._embedder = self._embedder()  # type: ignore[operator]
        return self._embedder  # type: ignore[return-value]

    def turns(self, audio: np.ndarray, source: Path | None = None) -> tuple[list[Turn], str]:
        """The speaker turns and how they were found ("channels" or "voice")."""
        if source is not None and source.is_file():
            from localrag.speakers.channels import turns_by_channel

            by_channel = turns_by_channel(source)
            if by_channel:
                return by_channel, "channels"
        return diarize(audio, self.embedder, self.count), "voice"

    def attribute(
        self, segments: Sequence[Segment], audio: np.ndarray, source: Path | None = None
    ) -> Attribution:
        """`segments` with the speaker of each; without speakers (and a notice saying why) if
        the speaker model cannot be used, so the transcript is never lost over it."""
        if not segments:
            return Attribution([], [], "none")
        try:
            turns, method = self.turns(audio, source)
        except LocalragError as exc:
            log.warning("speakers not told apart: %s", exc.message)
            return Attribution(
                list(segments), [], "none", f"speakers not told apart: {exc.message}"
            )
        return Attribution(label_segments(segments, turns), turns, method)


def build_embedder(settings: Settings) -> SpeakerEmbedder:
    """The voice encoder that serves the settings, checked against its pinned hash first."""
    from localrag.models import model_path
    from localrag.speakers.diarize import VoiceEmbedder
    from localrag.speakers.voice_encoder import VoiceEncoder

    return VoiceEmbedder(VoiceEncoder.load(model_path(settings, "speaker")))
