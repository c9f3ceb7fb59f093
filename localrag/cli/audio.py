"""`localrag transcribe FILE` and `localrag record`: recordings and voice notes to timed text.

The transcript goes to stdout (plain with timestamps, JSON, SRT or WebVTT); progress (the share
of the audio done and the real-time factor) goes to stderr. Both index the transcript in the
vault unless told `--no-index`, which needs no vault at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from localrag.cli import common
from localrag.cli.speakers import (
    add_speaker_options,
    speaker_choice,
    speakers_expected,
    with_speakers,
)
from localrag.display import one_line, visible
from localrag.prompt import clock
from localrag.records import Segment
from localrag.transcribe import TranscribeEvent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="print a recording's transcript with timestamps")
    p.add_argument("file", type=Path, help="a .wav .mp3 .m4a .flac .ogg .opus or .webm file")
    _output_options(p)
    add_speaker_options(p)
    p.set_defaults(func=run_transcribe)

    p = sub.add_parser("record", help="record a voice note from the microphone and index it")
    p.add_argument(
        "--seconds", type=float, default=60.0, help="how long to record (default 60; Ctrl-C ends)"
    )
    p.add_argument("--name", help='the note\'s name (default: "voice note <date time>")')
    _output_options(p)
    p.set_defaults(func=run_record)


def _output_options(p: argparse.ArgumentParser) -> None:
    formats = p.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print JSON on stdout for scripts")
    formats.add_argument("--srt", action="store_true", help="print SubRip subtitles")
    formats.add_argument("--vtt", action="store_true", help="print WebVTT subtitles")
    p.add_argument("--no-index", action="store_true", help="only print it; store nothing")
    common.add_passphrase_file(p)


def run_transcribe(args: argparse.Namespace) -> int:
    from localrag.transcribe import build_transcriber, decode_audio, read_file, transcribe_events

    path = args.file.expanduser().resolve()
    if args.no_index:
        transcriber = build_transcriber(common.settings(args))
        started = time.perf_counter()
        audio = decode_audio(read_file(path), str(path))
        events = transcribe_events(transcriber, audio, str(path), started)
        return _show(with_speakers(events, audio, path, args), args)
    with common.open_assistant(args) as assistant:
        return _show(assistant.transcribe(path, speakers=speaker_choice(args)), args)


def run_record(args: argparse.Namespace) -> int:
    from localrag.record import check_microphone
    from localrag.transcribe import build_transcriber, transcribe_events

    microphone = check_microphone()  # before the passphrase: no point unlocking without one
    if args.no_index:
        audio = _record(args.seconds, microphone)
        transcriber = build_transcriber(common.settings(args))
        return _show(transcribe_events(transcriber, audio, args.name or "voice note"), args)
    with common.open_assistant(args) as assistant:
        audio = _record(args.seconds, microphone)
        return _show(assistant.record_note(audio, args.name), args)


def _record(seconds: float, microphone: str) -> np.ndarray:
    """Record with a countdown on stderr; Ctrl-C ends the note early and keeps it."""
    from localrag.record import record
    from localrag.transcribe import SAMPLE_RATE

    blocks: list[np.ndarray] = []
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.fields[left]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"recording from {one_line(microphone)}", total=seconds, left="")
        try:
            for block in record(seconds):
                blocks.append(block)
                done = sum(len(b) for b in blocks) / SAMPLE_RATE
                bar.update(task, completed=done, left=f"{clock(seconds - done)} left")
        except KeyboardInterrupt:
            pass
    if not blocks:
        from localrag.record import RecordError

        raise RecordError("nothing was recorded")
    return np.concatenate(blocks)


def _show(events: Iterator[TranscribeEvent], args: argparse.Namespace) -> int:
    """Stream the transcript (or collect it for JSON and subtitles) with progress on stderr."""
    plain = not (args.json or args.srt or args.vtt)
    # With speakers, the lines wait for them (they are known only once all is heard).
    stream = plain and not speakers_expected(args)
    segments: list[Segment] = []
    last: TranscribeEvent | None = None
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    with Progress(*columns, console=console, transient=True, redirect_stdout=False) as bar:
        task = bar.add_task("transcribing", total=1.0, rate="")
        for last in events:
            rate = f"RTF {last.rtf:.2f}" if last.rtf is not None else ""
            bar.update(task, completed=last.fraction, rate=rate)
            if last.segment is not None:
                segments.append(last.segment)
                if stream and sys.stdout.isatty():
                    # Through the bar's console, so the bar stays below the transcript.
                    bar.console.print(line(last.segment), markup=False, soft_wrap=True)
                elif stream:
                    print(line(last.segment), flush=True)
            if last.segments:
                segments = list(last.segments)
    if last is None:
        return 1
    if plain and not stream:
        for segment in segments:
            print(line(segment), flush=True)
    if args.json:
        common.print_json(as_json(last, segments))
    elif args.srt:
        sys.stdout.write(srt(segments))
    elif args.vtt:
        sys.stdout.write(vtt(segments))
    _summary(console, last)
    return 0


def _summary(console: Console, last: TranscribeEvent) -> None:
    parts = [f"{clock(last.duration_s)} of audio in {last.elapsed_s:.1f} s"]
    if last.duration_s:
        parts.append(f"RTF {last.elapsed_s / last.duration_s:.3f}")
    if last.doc_id is not None:
        parts.append(f"indexed as document {last.doc_id}")
    if last.detail:
        parts.append(visible(last.detail))
    console.print(f"{one_line(last.path)}: " + "; ".join(parts), markup=False, soft_wrap=True)


def line(s: Segment) -> str:
    who = f"{one_line(s.speaker)}: " if s.speaker else ""
    return f"[{clock(s.start_s)}–{clock(s.end_s)}] {who}{one_line(s.text)}"


def as_json(last: TranscribeEvent, segments: list[Segment]) -> dict[str, Any]:
    return {
        "path": last.path,
        "duration_s": last.duration_s,
        "elapsed_s": round(last.elapsed_s, 3),
        "rtf": round(last.elapsed_s / last.duration_s, 4) if last.duration_s else None,
        "doc_id": last.doc_id,
        "notice": last.detail,
        "segments": segments,
    }


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def srt(segments: list[Segment]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the speaker before the text."""
    return "".join(
        f"{i}\n{_stamp(s.start_s, ',')} --> {_stamp(s.end_s, ',')}\n{_who(s, '{}: ')}"
        f"{one_line(s.text)}\n\n"
        for i, s in enumerate(segments, 1)
    )


def vtt(segments: list[Segment]) -> str:
    """WebVTT: a header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues, each speaker in a voice
    span (`<v Dana>`)."""
    cues = "".join(
        f"{_stamp(s.start_s, '.')} --> {_stamp(s.end_s, '.')}\n{_who(s, '<v {}>')}"
        f"{one_line(s.text)}\n\n"
        for s in segments
    )
    return "WEBVTT\n\n" + cues


def _who(s: Segment, form: str) -> str:
    # "<" and ">" would end a WebVTT voice span early; a name has no need of them.
    return form.format(one_line(s.speaker).replace("<", "‹").replace(">", "›")) if s.speaker else ""
