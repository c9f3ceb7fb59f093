"""`localrag bench speakers`: how well and how fast speakers are told apart, on a made meeting.

The meeting (`localrag.bench.meeting`) is a stand-up of three espeak-ng voices with known turns,
long and very short ones, pauses of 0.3 to 0.8 s; with `shared/data/audio/jfk.flac` present, a
fourth person speaks in it with real recorded speech. Reported, for the voice encoder and the
MFCC baseline: DER (standard, 0.25 s collar, `evaluate.diarization`; the reference is where
each voice is heard, pauses under 0.3 s bridged: `Meeting.speech`) with the count of speakers
found and with it given; then, through Whisper as `localrag add` runs it:
speaker-attributed WER (cpWER) against plain WER, and the real-time factor of transcription
with diarization off and on, Whisper and the voice encoder on `--threads` threads (default 2),
medians of `--runs` runs. Goal: RTF with diarization on at most 0.15.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from localrag.cli import common
from localrag.errors import UsageError
from localrag.settings import CHECKOUT

REAL_SPEECH = CHECKOUT.parent / "shared" / "data" / "audio" / "jfk.flac"
REAL_WORDS = (
    "And so my fellow Americans, ask not what your country can do for you, ask what you can "
    "do for your country."
)
RTF_GOAL = 0.15
SNR_DB = 10
"""The meeting is also scored under white noise this far below the speech."""


def noisy(meeting: Any, snr_db: float = SNR_DB, seed: int = 0) -> Any:
    """The meeting's audio under white noise `snr_db` below its speech's mean power."""
    import numpy as np

    audio = meeting.audio
    speech_power = float(np.mean(audio[np.abs(audio) > 0.01] ** 2))
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    return (audio + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))).astype(np.float32)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speakers", help="diarization error rate, speaker WER and RTF")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each side (medians)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--no-real", action="store_true", help="leave out the real recording")
    common.add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.threads < 1:
        raise UsageError("--runs and --threads must be at least 1")
    # numpy's BLAS takes every core unless told before it starts; the LSTM runs in it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    result = measure(common.settings(args), args.runs, args.threads, not args.no_real)
    if args.json:
        common.print_json(result)
    else:
        _print(result)
    return 0


def _meeting(with_real: bool) -> tuple[Any, str]:
    from localrag.bench.meeting import STANDUP, build_meeting, espeak_available
    from localrag.transcribe import read_audio

    if not espeak_available():
        raise UsageError("the test meeting is spoken by espeak-ng: apt install espeak-ng")
    if with_real and REAL_SPEECH.is_file():
        script = [*STANDUP[:6], ("Jon", REAL_WORDS), *STANDUP[6:]]
        real = {"Jon": (read_audio(REAL_SPEECH), REAL_WORDS)}
        return build_meeting(script, real=real), f"3 espeak-ng voices + {REAL_SPEECH.name}"
    return build_meeting(), "3 espeak-ng voices"


def measure(settings: Any, runs: int, threads: int, with_real: bool) -> dict[str, Any]:
    from localrag.evaluate.asr import english_normalizer, word_errors
    from localrag.evaluate.diarization import Words, der, speaker_attributed_wer
    from localrag.models import model_path
    from localrag.speakers import build_embedder
    from localrag.speakers.diarize import diarize, label_segments, speech_regions
    from localrag.speakers.mfcc import MfccEmbedder
    from localrag.transcribe import WhisperTranscriber

    meeting, made_of = _meeting(with_real)
    truth = meeting.turns
    heard = meeting.speech()
    voice = build_embedder(settings)
    true_count = len({t.speaker for t in truth})
    diarization: dict[str, Any] = {}
    for condition, audio in (("clean", meeting.audio), (f"noise {SNR_DB} dB SNR", noisy(meeting))):
        regions = speech_regions(audio)
        for name, embedder in (("voice encoder", voice), ("MFCC baseline", MfccEmbedder())):
            found = der(heard, diarize(audio, embedder, regions=regions))
            given = der(heard, diarize(audio, embedder, true_count, regions=regions))
            diarization[f"{name}, {condition}"] = {
                "der": round(found.der, 4),
                "missed": round(found.missed, 4),
                "false_alarm": round(found.false_alarm, 4),
                "confusion": round(found.confusion, 4),
                "speakers_found": found.speakers_found,
                "der_count_given": round(given.der, 4),
            }

    whisper = WhisperTranscriber(model_path(settings, "whisper"), cpu_threads=threads)
    duration_s = meeting.duration_s

    def transcribe() -> list[Any]:
        segments, _ = whisper.transcribe(meeting.audio)
        return list(segments)

    def transcribe_and_diarize() -> list[Any]:
        return label_segments(transcribe(), diarize(meeting.audio, voice))

    def diarize_alone() -> list[Any]:
        return diarize(meeting.audio, voice)

    timings: dict[str, list[float]] = {"off": [], "on": [], "alone": []}
    labelled: list[Any] = []
    for i in range(runs + 1):  # the first round warms up and is not counted
        sides = (("off", transcribe), ("on", transcribe_and_diarize), ("alone", diarize_alone))
        for side, work in sides:
            started = time.perf_counter()
            out = work()
            if i:
                timings[side].append(time.perf_counter() - started)
            if side == "on":
                labelled = out
    normalize = english_normalizer()
    turns = diarize(meeting.audio, voice)
    mapping = der(heard, turns).mapping
    reference = [Words(t.speaker, t.text) for t in truth]
    hypothesis = [Words(s.speaker, s.text) for s in labelled]
    ref_words = normalize(" ".join(t.text for t in truth)).split()
    hyp_words = normalize(" ".join(s.text for s in labelled)).split()
    off, on, alone = (statistics.median(timings[k]) for k in ("off", "on", "alone"))
    return {
        "meeting": made_of,
        "duration_s": round(duration_s, 2),
        "speakers": true_count,
        "turns": len(truth),
        "collar_s": 0.25,
        "diarization": diarization,
        "wer": round(word_errors(ref_words, hyp_words) / len(ref_words), 4),
        "cp_wer": round(speaker_attributed_wer(reference, hypothesis, mapping, normalize), 4),
        "threads": threads,
        "runs": runs,
        "rtf_diarization_off": round(off / duration_s, 4),
        "rtf_diarization_on": round(on / duration_s, 4),
        "rtf_diarization_alone": round(alone / duration_s, 4),
        "goal_rtf_met": on / duration_s <= RTF_GOAL,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _print(r: dict[str, Any]) -> None:
    print(
        f"meeting: {r['meeting']}, {r['duration_s']:.0f} s, {r['speakers']} speakers, "
        f"{r['turns']} turns; DER with a {r['collar_s']} s collar"
    )
    for name, d in r["diarization"].items():
        print(
            f"  {name:<28} DER {d['der']:.1%} (missed {d['missed']:.1%}, false alarm "
            f"{d['false_alarm']:.1%}, confusion {d['confusion']:.1%}; "
            f"{d['speakers_found']} speakers found); with --speakers {r['speakers']}: "
            f"{d['der_count_given']:.1%}"
        )
    print(f"  Whisper WER {r['wer']:.1%}, speaker-attributed WER (cpWER) {r['cp_wer']:.1%}")
    goal = "met" if r["goal_rtf_met"] else "NOT met"
    print(
        f"  RTF on {r['threads']} threads, median of {r['runs']}: diarization off "
        f"{r['rtf_diarization_off']:.3f}, on {r['rtf_diarization_on']:.3f} "
        f"(goal ≤ {RTF_GOAL}: {goal}); diarization alone {r['rtf_diarization_alone']:.4f}; "
        f"load average {r['load_average_1min']}"
    )
