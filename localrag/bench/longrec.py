"""`localrag bench longrec`: a long recording transcribed a window at a time, against the whole
file decoded into one array (how localrag did it before), each side in a child process of its
own: real-time factor and peak memory (the child's VmHWM, read by the child itself at the end).

The recording is made by concatenating real speech (jfk.flac, 11 s) with a stand-up meeting
spoken by espeak-ng voices (`bench.meeting`), the voices given to the speakers in turn so that no
two consecutive meetings sound alike, with 2 s between meetings, until it is as long as asked;
it is written as AAC in an .m4a file, as a phone or a meeting app records. `--before CHECKOUT`
runs the whole-file side with another checkout's localrag (for example the main branch before
streaming), so "before" is the code that was there, not an imitation of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from localrag.cli import common
from localrag.errors import UsageError

SIDES = ("streamed", "whole")

_CHILD = r"""
import json, os, sys, time
from pathlib import Path
from localrag.worker.memory import peak_rss_bytes, reset_peak_rss
from localrag.transcribe import WhisperTranscriber
side, path, whisper, speaker, threads, decode_only = sys.argv[1:7]
path, threads, decode_only = Path(path), int(threads), decode_only == "1"
model = None if decode_only else WhisperTranscriber(Path(whisper), cpu_threads=threads)
finder = None
if speaker:
    from localrag.speakers import SpeakerFinder
    from localrag.speakers.diarize import VoiceEmbedder
    from localrag.speakers.voice_encoder import VoiceEncoder
    encoder = VoiceEmbedder(VoiceEncoder.load(Path(speaker)))
    finder = SpeakerFinder(lambda: encoder)
loaded = peak_rss_bytes(os.getpid())
reset_peak_rss(os.getpid())  # the peak of the work, from the models loaded
started = time.perf_counter()
segments, speakers, words = 0, 0, []
if side == "streamed" and decode_only:
    from localrag.audio_stream import AudioStream, cut_windows
    for window in cut_windows(AudioStream(path).blocks()):
        pass
elif side == "streamed":
    from localrag.recording import transcribe_file
    for e in transcribe_file(path, model, finder=finder):
        segments += e.status == "segment"
        words += [e.segment.text] if e.segment else []
        speakers = len({s.speaker for s in e.segments}) if e.segments else speakers
else:
    from localrag.transcribe import decode_audio, read_file
    audio = decode_audio(read_file(path), str(path))
    if not decode_only:
        found = list(model.transcribe(audio)[0])
        segments, words = len(found), [s.text for s in found]
        if finder is not None:
            labelled = finder.attribute(found, audio, path).segments
            speakers = len({s.speaker for s in labelled})
print(json.dumps({
    "elapsed_s": time.perf_counter() - started,
    "peak_bytes": peak_rss_bytes(os.getpid()),
    "loaded_bytes": loaded,
    "segments": segments,
    "speakers": speakers,
    "text": " ".join(words),
}))
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("longrec", help="a one-hour recording: RTF and peak memory")
    p.add_argument("--minutes", type=float, default=60.0, help="length of the made recording")
    p.add_argument("--file", type=Path, help="measure this recording instead of making one")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--no-speakers", action="store_true", help="transcription alone")
    p.add_argument("--decode-only", action="store_true", help="decode, do not transcribe")
    p.add_argument("--sides", default="streamed,whole", help="streamed, whole or both")
    p.add_argument("--before", type=Path, help="a checkout whose localrag runs the whole-file side")
    p.add_argument(
        "--stop-whole-after",
        type=float,
        metavar="S",
        help="kill the whole-file side after S seconds and report its peak so far",
    )
    common.add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag.audio_stream import AudioStream
    from localrag.models import model_path

    sides = [s for s in args.sides.split(",") if s]
    if not sides or set(sides) - set(SIDES):
        raise UsageError(f"--sides takes {' and '.join(SIDES)}, comma-separated")
    settings = common.settings(args)
    whisper = model_path(settings, "whisper")
    speaker = "" if args.no_speakers else str(model_path(settings, "speaker"))
    with tempfile.TemporaryDirectory(prefix="localrag-longrec-") as folder:
        path = args.file or Path(folder) / "meeting.m4a"
        made_of, reference = f"{path.name}, given", ""
        if args.file is None:
            made_of, reference = write_recording(path, args.minutes * 60)
        result: dict[str, Any] = {"recording": made_of, "size_bytes": path.stat().st_size}
        result["duration_s"] = AudioStream(path).declared_s or 1.0
        for side in sides:
            tree = args.before if side == "whole" and args.before else None
            stop = args.stop_whole_after if side == "whole" else None
            measured = measure(
                side, path, whisper, speaker, args.threads, args.decode_only, tree, stop
            )
            text = measured.pop("text", "")
            if reference and text:
                measured["wer"] = _wer(reference, text)
            result[side] = measured
            if not args.json:
                print(f"{side}: {json.dumps(measured)}", file=sys.stderr, flush=True)
    for side in sides:
        if "elapsed_s" in result[side]:
            result[side]["rtf"] = round(result[side]["elapsed_s"] / result["duration_s"], 4)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    if args.json:
        common.print_json(result)
    else:
        print(json.dumps(result, indent=1))
    return 0


def measure(
    side: str,
    path: Path,
    whisper: Path,
    speaker: str,
    threads: int,
    decode_only: bool,
    tree: Path | None = None,
    stop_after_s: float | None = None,
) -> dict[str, Any]:
    """One side in a child process (of `tree`'s localrag if given): its time and peak memory;
    killed after `stop_after_s` if given (then only the peak so far)."""
    from localrag.bench.cli_child import SOURCE_ROOT
    from localrag.worker.memory import peak_rss_bytes

    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree or SOURCE_ROOT)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    argv = [side, str(path), str(whisper), speaker, str(threads), "1" if decode_only else "0"]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    began = time.monotonic()
    while child.poll() is None:
        peak = max(peak, peak_rss_bytes(child.pid) or 0)
        if stop_after_s and time.monotonic() - began > stop_after_s:
            child.kill()
            child.communicate()
            # VmHWM so far: the whole file's samples and their spectrum are made in the first
            # minutes, so this is a lower bound of that side's peak, and the time is not a rate.
            return {"stopped_after_s": stop_after_s, "peak_mb_so_far": round(peak / 1e6, 1)}
        time.sleep(0.2)
    stdout, stderr = child.communicate()
    if child.returncode:
        raise UsageError(f"the {side} side failed: {stderr.strip().splitlines()[-1:]}")
    out = json.loads(stdout.strip().splitlines()[-1])
    return {
        "elapsed_s": round(out["elapsed_s"], 1),
        "peak_mb": round(out["peak_bytes"] / 1e6, 1),
        "models_loaded_mb": round(out["loaded_bytes"] / 1e6, 1),
        "segments": out["segments"],
        "speakers": out["speakers"],
        "text": out.get("text", ""),
    }


def _wer(reference: str, text: str) -> float:
    """Word error rate of `text` against what the made recording says (Whisper's normaliser)."""
    from localrag.evaluate.asr import english_normalizer, word_errors

    normalize = english_normalizer()
    ref, hyp = normalize(reference).split(), normalize(text).split()
    return round(word_errors(ref, hyp) / max(1, len(ref)), 4)


def write_recording(path: Path, seconds: float) -> tuple[str, str]:
    """A recording of about `seconds` made of real speech and espeak-ng voices (see the module
    docstring); what it is made of, in words, and what is said in it."""
    from localrag.bench.meeting import STANDUP, VOICES, build_meeting, espeak_available
    from localrag.bench.sounds import encode
    from localrag.bench.speakers import REAL_SPEECH, REAL_WORDS
    from localrag.transcribe import SAMPLE_RATE, read_audio

    if not espeak_available() or not REAL_SPEECH.is_file():
        raise UsageError(f"the made recording needs espeak-ng and {REAL_SPEECH}")
    real = {"Jon": (read_audio(REAL_SPEECH), REAL_WORDS)}
    script = [*STANDUP[:6], ("Jon", REAL_WORDS), *STANDUP[6:]]
    names, voices = list(VOICES), [*VOICES.values(), "en-us+f2"]
    meetings = []
    for turn in range(len(voices)):  # each meeting gives the voices to the speakers in turn
        given = {n: voices[(i + turn) % len(voices)] for i, n in enumerate(names)}
        meetings.append(build_meeting(script, given, real).audio)
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        piece = meetings[len(parts) // 2 % len(meetings)]
        parts += [piece, gap]
        total += len(piece) + len(gap)
    path.write_bytes(encode(np.concatenate(parts), path.suffix))
    minutes = total / SAMPLE_RATE / 60
    said = " ".join(text for _, text in script)
    made_of = (
        f"{minutes:.1f} min of {len(parts) // 2} made stand-ups ({REAL_SPEECH.name} and "
        f"{len(voices)} espeak-ng voices in turn), AAC in .m4a"
    )
    return made_of, " ".join([said] * (len(parts) // 2))
