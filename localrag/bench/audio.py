"""`localrag bench audio [FILE]`: real-time factor of our transcription against raw faster-whisper.

Both sides load the same verified Whisper model (int8 on the CPU) and transcribe the same file
with the same decoding options (English, beam 5, voice-activity filter on). Ours is the path a
recording takes through `localrag add`: read the bytes, decode in memory with the truncation
checks, transcribe with progress events, and lay the segments out as timed blocks ready to
chunk. Raw is `WhisperModel(...).transcribe(path)` with its segments consumed. Runs alternate
after one warm-up each; medians are reported. Goals: at least 90 % of raw speed, and a real-time
factor of at most 0.1.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from localrag.cli import common
from localrag.errors import UsageError
from localrag.settings import CHECKOUT

DEFAULT_FILE = CHECKOUT.parent / "shared" / "data" / "audio" / "jfk.flac"
SPEED_GOAL = 0.9
"""Ours must run at no less than this share of raw speed."""
RTF_GOAL = 0.1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audio", help="real-time factor of transcription vs raw faster-whisper")
    p.add_argument("file", nargs="?", type=Path, help=f"a recording (default: {DEFAULT_FILE})")
    p.add_argument("--runs", type=int, default=5, help="runs of each side (medians reported)")
    common.add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from faster_whisper import WhisperModel

    from localrag.ingest.audio import transcript_extracted
    from localrag.models import model_path
    from localrag.transcribe import WhisperTranscriber, read_audio, transcribe_events

    path = (args.file or DEFAULT_FILE).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{path}: no such recording; give one as FILE")
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    folder = model_path(common.settings(args), "whisper")
    ours_model = WhisperTranscriber(folder)
    raw_model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    texts: dict[str, str] = {}

    def ours() -> float:
        started = time.perf_counter()
        events = list(transcribe_events(ours_model, read_audio(path), str(path), started))
        segments = [e.segment for e in events if e.segment is not None]
        transcript_extracted(path, segments, events[-1].duration_s)
        texts["ours"] = " ".join(s.text for s in segments)
        return events[-1].duration_s

    def raw() -> float:
        segments, info = raw_model.transcribe(
            str(path), language=ours_model.language, beam_size=5, vad_filter=True
        )
        texts["raw"] = " ".join(s.text.strip() for s in segments)
        return float(info.duration)

    timings: dict[str, list[float]] = {"ours": [], "raw": []}
    duration_s = 0.0
    for i in range(args.runs + 1):  # the first round warms both up and is not counted
        for name, side in (("ours", ours), ("raw", raw)):
            seconds, duration_s = _time(side)
            if i:
                timings[name].append(seconds)
    ours_s, raw_s = (statistics.median(timings[k]) for k in ("ours", "raw"))
    result = {
        "file": str(path),
        "model": folder.name,
        "duration_s": round(duration_s, 3),
        "runs": args.runs,
        "ours_s": round(ours_s, 4),
        "raw_s": round(raw_s, 4),
        "rtf_ours": round(ours_s / duration_s, 4),
        "rtf_raw": round(raw_s / duration_s, 4),
        "speed_vs_raw": round(raw_s / ours_s, 3),
        "same_text": texts["ours"] == texts["raw"],
        "goal_speed_met": raw_s / ours_s >= SPEED_GOAL,
        "goal_rtf_met": ours_s / duration_s <= RTF_GOAL,
    }
    if args.json:
        common.print_json(result)
        return 0
    print(f"{path.name}: {duration_s:.1f} s of audio, {folder.name}, median of {args.runs} runs")
    print(f"  ours  {ours_s:.3f} s  RTF {result['rtf_ours']:.3f}")
    print(f"  raw   {raw_s:.3f} s  RTF {result['rtf_raw']:.3f}")
    print(
        f"  ours runs at {result['speed_vs_raw']:.0%} of raw speed "
        f"(goal ≥ {SPEED_GOAL:.0%}: {'met' if result['goal_speed_met'] else 'NOT met'}); "
        f"RTF goal ≤ {RTF_GOAL}: {'met' if result['goal_rtf_met'] else 'NOT met'}; "
        f"same text: {'yes' if result['same_text'] else 'no'}"
    )
    return 0


def _time(side: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    duration_s = side()
    return time.perf_counter() - start, duration_s
