"""A recording file to timed text a window at a time: bounded memory, progress, resumable.

The file is decoded as it is read and cut into windows of a few minutes (`audio_stream`); each
window is transcribed alone and its segments are shifted by where it starts. Speakers need the
whole recording, but not its samples: each window leaves only its voices (a vector per stretch
of speech, `speakers.Voices`), clustered once at the end. So memory holds one window of samples
plus the text and voice vectors so far, whatever the length.

Each finished window is kept in the vault (`SavedWindows`, encrypted with the rest, never in a
file) under the file's hash, so an `add` or `transcribe` that is killed or stopped resumes at the
first window it had not finished; the store drops them once the document is stored.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from localrag import audio_stream
from localrag.audio_stream import AudioStream, Window, cut_windows
from localrag.errors import IngestError, LocalragError
from localrag.records import Segment
from localrag.transcribe import NO_SPEECH, SAMPLE_RATE, TranscribeEvent, Transcriber

if TYPE_CHECKING:
    from localrag.speakers import SpeakerFinder, Turn, Voices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowResult:
    """What one window of a recording gave."""

    index: int
    start_s: float
    end_s: float
    segments: tuple[Segment, ...]
    """Its segments, timed from the start of the recording."""
    voices: Voices | None = None
    """Its voices, when speakers are told apart by voice."""


class SavedWindows(Protocol):
    """Where the finished windows of a recording wait for its document (`Store.partials`)."""

    def finished(self, sha256: str, recipe: str, path: str) -> dict[int, WindowResult]:
        """The windows kept for this content and recipe, by index; any kept for `path` with
        other content or another recipe are dropped."""
        ...

    def keep(self, sha256: str, recipe: str, path: str, result: WindowResult) -> None:
        """Keep one finished window (in its own transaction: it survives a kill at once)."""
        ...

    def drop(self, sha256: str) -> None:
        """Forget the windows kept for this content (the file turned out to be broken)."""
        ...


def transcribe_file(
    path: Path,
    transcriber: Transcriber,
    *,
    finder: SpeakerFinder | None = None,
    saved: SavedWindows | None = None,
    sha256: str | None = None,
    started: float | None = None,
) -> Iterator[TranscribeEvent]:
    """Transcribe a recording file window by window: `started`, `segment`s, a `window` after
    each window, `done`, then (with a `finder`, once something was said) `speakers`.

    With `saved` (and the file's `sha256`), windows finished by an earlier run are taken from
    it instead of being transcribed again, and each new one is kept there as it is done.
    `started` is when the work began (`time.perf_counter()`), so decoding counts in the rate.
    A file that cannot be decoded raises its `IngestError` here, before any event.
    """
    started = time.perf_counter() if started is None else started
    stream = AudioStream(path, str(path))
    return _events(path, stream, transcriber, finder, saved, sha256, started)


def _events(
    path: Path,
    stream: AudioStream,
    transcriber: Transcriber,
    finder: SpeakerFinder | None,
    saved: SavedWindows | None,
    sha256: str | None,
    started: float,
) -> Iterator[TranscribeEvent]:
    by_channel = _channel_turns(finder, path)
    voices_wanted = finder is not None and by_channel is None
    problem: LocalragError | None = None
    if voices_wanted:
        assert finder is not None
        try:
            finder.embedder  # noqa: B018 (loaded now: kept windows need no voices if it fails)
        except LocalragError as exc:  # the transcript is never lost over speakers
            problem, voices_wanted = exc, False
    recipe = _recipe(transcriber, voices_wanted)
    kept = saved.finished(sha256, recipe, str(path)) if saved and sha256 else {}
    resumed_s = sum(r.end_s - r.start_s for r in kept.values())
    if kept:
        log.info("%s: resuming after %d windows (%.0f s)", path, len(kept), resumed_s)
    duration_s = stream.declared_s or 0.0

    def event(status: str, done_s: float, **more: Any) -> TranscribeEvent:
        elapsed_s = time.perf_counter() - started
        total = max(duration_s, done_s)
        return TranscribeEvent(
            str(path), status, total, done_s, elapsed_s, resumed_s=resumed_s, **more
        )

    yield event("started", 0.0)
    results: list[WindowResult] = []
    windows = cut_windows(stream.blocks())
    while True:
        try:
            window = next(windows)
        except StopIteration:
            break
        except IngestError:
            if saved and sha256:
                saved.drop(sha256)  # a file found broken (truncated at its end) stays broken
            raise
        result = kept.get(window.index)
        if result is None or not _same(result, window) or (voices_wanted and not result.voices):
            voices = None
            if voices_wanted and problem is None:
                assert finder is not None
                try:
                    voices = finder.voices(window.audio, window.start_sample)
                except LocalragError as exc:
                    problem = exc
            result = transcribe_window(transcriber, window, voices)
            if saved and sha256:
                saved.keep(sha256, recipe, str(path), result)
        results.append(result)
        del window  # before the next is decoded: one window of samples at a time
        for segment in result.segments:
            yield event("segment", segment.end_s, segment=segment)
        yield event("window", result.end_s)
    duration_s = stream.decoded_samples / SAMPLE_RATE
    segments = [s for r in results for s in r.segments]
    last = event("done", duration_s, detail="" if segments else NO_SPEECH)
    yield last
    if finder is None or not segments:
        return
    from localrag.speakers import Voices, speakers_event

    def find() -> tuple[list[Turn], str]:
        if by_channel:
            return by_channel, "channels"
        if problem is not None:
            raise problem
        assert finder is not None
        return finder.turns_of(Voices.join([r.voices for r in results if r.voices])), "voice"

    yield speakers_event(last, finder.attribute_found(segments, find), started)


def transcribe_window(
    transcriber: Transcriber, window: Window, voices: Voices | None = None
) -> WindowResult:
    """One window transcribed, its segments moved to the recording's time."""
    found, _ = transcriber.transcribe(window.audio)
    shift = window.start_s
    segments = tuple(
        dataclasses.replace(s, start_s=round(s.start_s + shift, 3), end_s=round(s.end_s + shift, 3))
        for s in found
    )
    return WindowResult(window.index, window.start_s, window.end_s, segments, voices)


def _same(result: WindowResult, window: Window) -> bool:
    """Whether a kept window is this one (the same cut of the same samples)."""
    return abs(result.start_s - window.start_s) < 1e-3 and abs(result.end_s - window.end_s) < 1e-3


def _channel_turns(finder: SpeakerFinder | None, path: Path) -> list[Turn] | None:
    """A two-channel call is split by channel before transcribing (its voices are not needed)."""
    if finder is None:
        return None
    try:
        return finder.channel_turns(path)
    except LocalragError:
        return None


def _recipe(transcriber: Transcriber, voices: bool) -> str:
    """What the kept windows of a recording depend on: another model or window length, or
    voices now wanted, and they are transcribed again."""
    model = getattr(transcriber, "model_dir", None) or type(transcriber).__name__
    beam = getattr(transcriber, "beam_size", "")
    return f"{model} beam {beam} window {audio_stream.WINDOW_S:g} s{' voices' if voices else ''}"
