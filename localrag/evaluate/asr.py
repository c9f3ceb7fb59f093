"""`localrag eval asr DIR`: word error rate and real-time factor of the transcriber.

DIR is laid out like LibriSpeech: `*.trans.txt` files (one `UTTERANCE-ID TRANSCRIPT` a line) beside
the audio files, named by utterance id. Both sides are normalised with Whisper's English text
normaliser (the `whisper-normalizer` package ships it: lower case, no punctuation, spellings and
numbers made uniform), as Whisper's own published word error rates are.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from localrag.errors import UsageError
from localrag.transcribe import AUDIO_EXTENSIONS, SAMPLE_RATE, Transcriber, read_audio


@dataclass(frozen=True)
class Utterance:
    """One labelled recording."""

    id: str
    audio: Path
    reference: str
    """The reference transcript as written in the .trans.txt file."""


@dataclass(frozen=True)
class Scored:
    """One recording transcribed and scored."""

    id: str
    reference: str
    """Normalised reference."""
    hypothesis: str
    """Normalised transcript."""
    errors: int
    """Substitutions, deletions and insertions, in words."""
    words: int
    """Words in the normalised reference."""
    duration_s: float
    elapsed_s: float
    """Time to decode and transcribe it."""


@dataclass(frozen=True)
class AsrReport:
    """The whole folder's figures."""

    utterances: int
    words: int
    errors: int
    wer: float
    """Errors over reference words, for the whole folder (not a mean of per-file rates)."""
    audio_s: float
    elapsed_s: float
    rtf: float
    """Real-time factor: seconds spent per second of audio (lower is faster)."""
    model: str
    results: list[Scored]


def english_normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """The word-level Levenshtein distance: fewest substitutions, deletions and insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def find_utterances(folder: Path) -> list[Utterance]:
    """Every line of every `*.trans.txt` under `folder` whose audio file is beside it."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    found: list[Utterance] = []
    for listing in sorted(folder.rglob("*.trans.txt")):
        for line in listing.read_text(encoding="utf-8").splitlines():
            uid, _, text = line.strip().partition(" ")
            if not uid:
                continue
            audio = next(
                (
                    listing.parent / f"{uid}{ext}"
                    for ext in AUDIO_EXTENSIONS
                    if (listing.parent / f"{uid}{ext}").is_file()
                ),
                None,
            )
            if audio is None:
                raise UsageError(f"{listing}: no audio file for utterance {uid} beside it")
            found.append(Utterance(uid, audio, text.strip()))
    if not found:
        raise UsageError(f"{folder}: no *.trans.txt file with utterances in it")
    return found


def score(
    transcriber: Transcriber,
    utterances: list[Utterance],
    normalize: Callable[[str], str] | None = None,
) -> Iterator[Scored]:
    """Transcribe and score each utterance, in order.

    The first recording is transcribed once untimed, so that the real-time factor is not that of
    the model's first call (memory allocation and caches warming up).
    """
    normalize = normalize or english_normalizer()
    if utterances:
        list(transcriber.transcribe(read_audio(utterances[0].audio))[0])
    for u in utterances:
        start = time.perf_counter()
        audio = read_audio(u.audio)
        segments, _ = transcriber.transcribe(audio)
        hypothesis = " ".join(s.text for s in segments)
        elapsed_s = time.perf_counter() - start
        ref, hyp = normalize(u.reference).split(), normalize(hypothesis).split()
        yield Scored(
            id=u.id,
            reference=" ".join(ref),
            hypothesis=" ".join(hyp),
            errors=word_errors(ref, hyp),
            words=len(ref),
            duration_s=len(audio) / SAMPLE_RATE,
            elapsed_s=elapsed_s,
        )


def summarize(results: list[Scored], model: str) -> AsrReport:
    words = sum(r.words for r in results)
    errors = sum(r.errors for r in results)
    audio_s = sum(r.duration_s for r in results)
    elapsed_s = sum(r.elapsed_s for r in results)
    return AsrReport(
        utterances=len(results),
        words=words,
        errors=errors,
        wer=errors / words if words else 0.0,
        audio_s=audio_s,
        elapsed_s=elapsed_s,
        rtf=elapsed_s / audio_s if audio_s else 0.0,
        model=model,
        results=results,
    )


def register(sub: argparse._SubParsersAction) -> None:
    from localrag.cli.common import add_json

    p = sub.add_parser("asr", help="word error rate and real-time factor of speech recognition")
    p.add_argument("folder", type=Path, help="a LibriSpeech-style folder (*.trans.txt + audio)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag.cli.common import print_json, settings
    from localrag.transcribe import build_transcriber

    utterances = find_utterances(args.folder)
    s = settings(args)
    transcriber = build_transcriber(s)
    results: list[Scored] = []
    for r in score(transcriber, utterances):
        results.append(r)
        if not args.json:
            mark = "ok " if r.errors == 0 else f"{r.errors:>2} "
            print(f"{mark} {r.id}: {r.hypothesis}", file=sys.stderr)
    report = summarize(results, transcriber.model_dir.name)
    if args.json:
        print_json(report)
        return 0
    print(
        f"{report.utterances} recordings, {report.audio_s:.1f} s of audio, "
        f"{report.words} reference words ({report.model})\n"
        f"word error rate  {report.wer:.1%}  ({report.errors} errors)\n"
        f"real-time factor {report.rtf:.3f}  ({report.elapsed_s:.2f} s to decode and transcribe)"
    )
    return 0
