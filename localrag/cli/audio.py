"""`localrag transcribe FILE` and `localrag record`: recordings and voice notes to timed text.

The transcript goes to stdout (plain with timestamps, JSON, SRT or WebVTT); progress (the share
of the audio done and the real-time factor) goes to stderr. Both index the transcript in the
vault unless told `--no-index`, which needs no vault at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from localrag.cli import common
from localrag.cli.speakers import add_speaker_options, finder, speaker_choice, speakers_expected
from localrag.display import clock, one_line, rate_and_eta, visible
from localrag.records import Segment
from localrag.transcribe import TranscribeEvent

if TYPE_CHECKING:
    from localrag.record import Recorder, Recording
    from localrag.silence import Verdict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="print a recording's transcript with timestamps")
    p.add_argument("file", type=Path, help="a .wav .mp3 .m4a .flac .ogg .opus or .webm file")
    _output_options(p)
    add_speaker_options(p)
    p.set_defaults(func=run_transcribe)

    p = sub.add_parser(
        "record",
        help="record a voice note from the microphone until you stop talking, and index it",
    )
    p.add_argument(
        "--seconds",
        type=float,
        help="the longest it records (default: the setting voice_note_max_s, 600)",
    )
    stopping = p.add_mutually_exclusive_group()
    stopping.add_argument(
        "--stop-after-silence",
        type=float,
        metavar="S",
        help="stop after S seconds of silence once you have spoken (default: the setting "
        "stop_after_silence_s, 3)",
    )
    stopping.add_argument(
        "--no-stop-on-silence",
        action="store_true",
        help="record until --seconds or Ctrl-C, whatever it hears",
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
    from localrag.recording import transcribe_file
    from localrag.transcribe import build_transcriber, check_extension

    path = args.file.expanduser().resolve()
    if args.no_index:
        check_extension(path)
        transcriber = build_transcriber(common.settings(args))
        return _show(transcribe_file(path, transcriber, finder=finder(args)), args)
    with common.open_assistant(args) as assistant:
        return _show(assistant.transcribe(path, speakers=speaker_choice(args)), args)


def run_record(args: argparse.Namespace) -> int:
    from localrag.record import Recorder, RecordOptions, default_microphone
    from localrag.transcribe import build_transcriber, transcribe_events

    options = RecordOptions.from_settings(
        common.settings(args),
        seconds=args.seconds,
        stop_after_silence_s=args.stop_after_silence,
        stop_on_silence=not args.no_stop_on_silence,
    )
    microphone = default_microphone()
    name = microphone.check()  # before the passphrase: no point unlocking without one
    if args.no_index:
        recording = _record(Recorder(microphone, options), name)
        transcriber = build_transcriber(common.settings(args))
        events = transcribe_events(transcriber, recording.audio, args.name or "voice note")
        return _show(events, args, recording)
    with common.open_assistant(args, microphone=microphone) as assistant:
        recording = _record(assistant.recorder(options), name)
        return _show(assistant.record_note(recording.audio, args.name), args, recording)


def _record(recorder: Recorder, microphone: str) -> Recording:
    """Record with a level meter on stderr (on a terminal); Ctrl-C ends the note and keeps it."""
    from localrag.record import meter_line, stop_hint

    options = recorder.options
    console = Console(stderr=True)
    live = console.is_terminal
    if live:
        console.print(
            f"Recording from {one_line(microphone)}: speak; it {stop_hint(options)} "
            "(Ctrl-C stops).",
            markup=False,
            highlight=False,
        )

    def show(verdict: Verdict) -> None:
        # One line, rewritten in place; padded so a shorter line covers a longer one.
        sys.stderr.write("\r" + meter_line(verdict, options).ljust(60))
        sys.stderr.flush()

    recording = recorder.run(show if live else None)
    if live:
        sys.stderr.write("\r" + " " * 60 + "\r")
    why = STOPPED_BY[recording.stopped_by].format(options=options)
    console.print(
        f"recorded {clock(recording.recorded_s)} from {one_line(microphone)}; {why}",
        markup=False,
        highlight=False,
    )
    return recording


STOPPED_BY = {
    "silence": "stopped after {options.stop_after_silence_s:g} s of silence",
    "limit": "stopped at the limit of {options.max_s:g} s",
    "cancel": "stopped by you",
}
"""Why a note ended, as the summary line says it."""


def _show(
    events: Iterator[TranscribeEvent],
    args: argparse.Namespace,
    recording: Recording | None = None,
) -> int:
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
        TextColumn("{task.fields[rate]}", markup=False),
    )
    with Progress(*columns, console=console, transient=True, redirect_stdout=False) as bar:
        task = bar.add_task("transcribing", total=1.0, rate="")
        for last in events:
            bar.update(task, completed=last.fraction, rate=rate_and_eta(last.rtf, last.eta_s))
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
        printed = as_json(last, segments)
        if recording is not None:
            printed["stopped_by"] = recording.stopped_by
            printed["recorded_s"] = round(recording.recorded_s, 3)
        common.print_json(printed)
    elif args.srt:
        sys.stdout.write(srt(segments))
    elif args.vtt:
        sys.stdout.write(vtt(segments))
    _summary(console, last)
    return 0


def _summary(console: Console, last: TranscribeEvent) -> None:
    parts = [f"{clock(last.duration_s)} of audio in {last.elapsed_s:.1f} s"]
    if last.resumed_s:
        parts.append(f"resumed after {clock(last.resumed_s)} done by an earlier run")
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
