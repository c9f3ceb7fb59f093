"""Scoring answers against gold answers: shared by `eval qa` and `eval compare`.

SQuAD's normalisation (lower case, no punctuation, no articles), exact match and F1; one record
per asked question (`score`), and the summary of many (`summarize`): exact match and F1 on the
answerable questions, precision and recall of abstaining (the unanswerable questions are the
positives), citation precision, the share of refused answerable questions whose closest passage
(`localrag.closest`) holds the answer, SQuAD 2.0's overall scores, hit@k and latency percentiles.
"""

from __future__ import annotations

import re
import statistics
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from localrag.answer import best_supporting
from localrag.excerpt import content_words

_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_PUNCTUATION = frozenset(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def occurs_in(answer: str, text: str) -> bool:
    """Whether the normalised answer is a run of whole words of the normalised text."""
    needle = normalize(answer)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def score(
    answer: Any, question: str, answers: Sequence[str], gold_path: str | None
) -> dict[str, Any]:
    """The record of one answered question (`answer` read to its end): what it said, whether it
    abstained, and its scores; `gold_path` is the document that holds the answer, if known."""
    text = answer.text()
    prediction = "" if answer.abstained else _CITATION.sub("", text).strip()
    record: dict[str, Any] = {
        "question": question,
        "answers": list(answers),
        "prediction": prediction,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "cited": [c.n for c in answer.citations],
        "hit": any(s.chunk.path == gold_path for s in answer.sources),
        "retrieval_hit": any(h.chunk.path == gold_path for h in answer.retrieved),
        "total_ms": answer.timings_ms["total"],
        "first_token_ms": answer.timings_ms["first_token"],
        "tokens_per_s": answer.tokens_per_s,
    }
    if not answer.abstained and answer.sources:
        # Whether a source holds the answer's own words: what a check of every answer would keep.
        known = content_words(question)
        record["supported"] = best_supporting(text, answer.sources, known) is not None
    if answers:
        # As SQuAD's official script: a gold answer that normalises to nothing (one of the dev
        # set's is ".") is dropped, else a refusal (empty prediction) would match it exactly.
        golds = [g for g in answers if normalize(g)] or list(answers)
        record["em"] = max(float(normalize(prediction) == normalize(g)) for g in golds)
        record["f1"] = max(f1(prediction, g) for g in golds)
        record["in_text"] = any(
            normalize(g) and normalize(g) in normalize(prediction) for g in golds
        )
        record["squad_em"], record["squad_f1"] = record["em"], record["f1"]
        if answer.abstained:
            # Whether the sentence a refusal points at holds the answer: what the user reads.
            closest = answer.closest.text if answer.closest else ""
            record["closest_ok"] = any(occurs_in(g, closest) for g in golds)
        if answer.citations and not answer.abstained:
            cited = [normalize(c.chunk.text) for c in answer.citations]
            record["cited_ok"] = any(normalize(g) in t for t in cited for g in golds)
    else:
        record["squad_em"] = record["squad_f1"] = float(answer.abstained)
    return record


def summarize(records: Sequence[dict[str, Any]], retrieval: bool) -> dict[str, Any]:
    """The figures of many records (see the module's docstring)."""
    answerable = [r for r in records if r["answers"]]
    unanswerable = [r for r in records if not r["answers"]]
    abstained = [r for r in records if r["abstained"]]
    refused = [r for r in answerable if r["abstained"]]
    right = sum(1 for r in unanswerable if r["abstained"])

    def mean(rows: Sequence[dict[str, Any]], key: str) -> float | None:
        return round(sum(float(r[key]) for r in rows) / len(rows), 3) if rows else None

    return {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "exact_match": mean(answerable, "em"),
        "f1": mean(answerable, "f1"),
        "answer_in_text": mean(answerable, "in_text"),
        "abstain_precision": round(right / len(abstained), 3) if abstained else None,
        "abstain_recall": round(right / len(unanswerable), 3) if unanswerable else None,
        "abstained_answerable": mean(answerable, "abstained"),
        "citation_precision": mean([r for r in answerable if "cited_ok" in r], "cited_ok"),
        "refused_closest_ok": mean(refused, "closest_ok"),
        "overall_exact_match": mean(records, "squad_em"),
        "overall_f1": mean(records, "squad_f1"),
        "hit_at_k": mean(answerable, "hit") if retrieval else None,
        "retrieval_hit_at_k": mean(answerable, "retrieval_hit") if retrieval else None,
        "latency_ms": {
            "p50": percentile([r["total_ms"] for r in records], 0.5),
            "p95": percentile([r["total_ms"] for r in records], 0.95),
            "first_token_p50": percentile([r["first_token_ms"] for r in records], 0.5),
        },
        "tokens_per_s_median": round(
            statistics.median([r["tokens_per_s"] for r in records if r["tokens_per_s"]] or [0]), 1
        ),
    }
