"""How well speakers were told apart: diarization error rate and speaker-attributed WER.

DER is the standard one (NIST RT, as md-eval and pyannote.metrics compute it): the share of the
reference speech time that is missed, falsely detected as speech, or given to the wrong
speaker, after mapping each found speaker to at most one true speaker so as to maximise the time
they share. A collar of 0.25 s around each reference boundary is not scored (a turn's exact edge
is a matter of opinion). Scored on 10 ms frames; overlapping speech is not modelled (the bench
meeting has none).

Speaker-attributed WER (concatenated minimum-permutation WER, "cpWER"): the words of each true
speaker against the words the transcript gives the speaker mapped to them, errors summed over
speakers and divided by the reference's words; text attributed to no one or to the wrong person
counts as errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from localrag.evaluate.asr import word_errors

FRAME_S = 0.01
COLLAR_S = 0.25


class Timed(Protocol):
    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def speaker(self) -> str | None: ...


@dataclass(frozen=True)
class DerReport:
    """DER and its parts, as shares of the scored reference speech."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    scored_s: float
    """Reference speech time scored (outside the collars)."""
    mapping: dict[str, str]
    """Found speaker -> true speaker."""
    speakers_found: int
    speakers_true: int


def _frames(turns: Sequence[Timed], n: int, names: dict[str, int]) -> np.ndarray:
    labels = np.full(n, -1, dtype=int)
    for t in turns:
        if t.speaker is None:
            continue
        code = names.setdefault(t.speaker, len(names))
        labels[round(t.start_s / FRAME_S) : round(t.end_s / FRAME_S)] = code
    return labels


def best_mapping(overlap: np.ndarray) -> dict[int, int]:
    """Hypothesis index -> reference index maximising the shared time (one-to-one)."""
    n_hyp, n_ref = overlap.shape
    best: tuple[float, dict[int, int]] = (-1.0, {})
    if max(n_hyp, n_ref) <= 7:
        for refs in itertools.permutations(range(max(n_hyp, n_ref)), n_hyp):
            chosen = {h: r for h, r in enumerate(refs) if r < n_ref}
            total = sum(overlap[h, r] for h, r in chosen.items())
            if total > best[0]:
                best = (total, chosen)
        return best[1]
    pairs: dict[int, int] = {}  # many speakers: greedy, largest shared time first
    for flat in np.argsort(-overlap, axis=None):
        h, r = divmod(int(flat), n_ref)
        if h not in pairs and r not in pairs.values() and overlap[h, r] > 0:
            pairs[h] = r
    return pairs


def der(
    reference: Sequence[Timed], hypothesis: Sequence[Timed], collar_s: float = COLLAR_S
) -> DerReport:
    """The diarization error rate of `hypothesis` against `reference` turns."""
    end = max([t.end_s for t in [*reference, *hypothesis]] or [0.0])
    n = round(end / FRAME_S) + 1
    ref_names: dict[str, int] = {}
    hyp_names: dict[str, int] = {}
    ref, hyp = _frames(reference, n, ref_names), _frames(hypothesis, n, hyp_names)
    scored = np.ones(n, dtype=bool)
    collar = round(collar_s / FRAME_S)
    for t in reference:
        for edge in (t.start_s, t.end_s):
            at = round(edge / FRAME_S)
            scored[max(0, at - collar) : at + collar] = False
    ref, hyp = ref[scored], hyp[scored]
    overlap = np.zeros((len(hyp_names), len(ref_names)))
    both = (ref >= 0) & (hyp >= 0)
    np.add.at(overlap, (hyp[both], ref[both]), 1)
    pairs = best_mapping(overlap)
    mapped = np.array([pairs.get(int(h), -2) if h >= 0 else -1 for h in hyp])
    speech = int((ref >= 0).sum())
    missed = int(((ref >= 0) & (hyp < 0)).sum())
    false_alarm = int(((ref < 0) & (hyp >= 0)).sum())
    confusion = int(((ref >= 0) & (hyp >= 0) & (mapped != ref)).sum())
    share = (lambda k: k / speech) if speech else (lambda k: 0.0)
    ref_by_code = {v: k for k, v in ref_names.items()}
    hyp_by_code = {v: k for k, v in hyp_names.items()}
    return DerReport(
        der=share(missed + false_alarm + confusion),
        missed=share(missed),
        false_alarm=share(false_alarm),
        confusion=share(confusion),
        scored_s=speech * FRAME_S,
        mapping={hyp_by_code[h]: ref_by_code[r] for h, r in pairs.items()},
        speakers_found=len(hyp_names),
        speakers_true=len(ref_names),
    )


@dataclass(frozen=True)
class Words:
    """Something said with its speaker (a reference turn, or a transcript segment)."""

    speaker: str | None
    text: str


def speaker_attributed_wer(
    reference: Sequence[Words],
    hypothesis: Sequence[Words],
    mapping: dict[str, str],
    normalize: Callable[[str], str],
) -> float:
    """cpWER: each true speaker's words against the words of the found speaker mapped to them;
    words given to an unmapped speaker are all insertions."""
    ref_words: dict[str, list[str]] = {}
    for r in reference:
        ref_words.setdefault(r.speaker or "", []).extend(normalize(r.text).split())
    hyp_words: dict[str, list[str]] = {}
    for h in hypothesis:
        who = mapping.get(h.speaker or "", f"unmapped {h.speaker}")
        hyp_words.setdefault(who, []).extend(normalize(h.text).split())
    errors = sum(
        word_errors(ref_words.get(s, []), hyp_words.get(s, []))
        for s in set(ref_words) | set(hyp_words)
    )
    total = sum(len(w) for w in ref_words.values())
    return errors / total if total else 0.0
