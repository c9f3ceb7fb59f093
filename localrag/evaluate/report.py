"""The report of `eval compare`: a table, a chart, and a recommendation drawn only from them.

`recommend` turns the figures into plain sentences (which configuration answers best, what
retrieval costs in milliseconds, whether the adapter is worth keeping); `compare` stores them
in its result, so the JSON, the terminal and the report say the same. `write` puts
`compare.md` (which holds the user's questions, and says so at its top) and `compare.png`
(quality against latency, drawn with matplotlib) only where the user asks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrag.display import visible

CLOSE = 0.02
"""Overall F1 differences smaller than this are called a tie."""
MARKDOWN = "compare.md"
CHART = "compare.png"
_COLUMNS = (
    ("configuration", "name", "{}"),
    ("EM", "exact_match", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("overall F1", "overall_f1", "{:.3f}"),
    ("abstain P", "abstain_precision", "{:.3f}"),
    ("abstain R", "abstain_recall", "{:.3f}"),
    ("citation P", "citation_precision", "{:.3f}"),
    ("p50 ms", ("latency_ms", "p50"), "{:.0f}"),
    ("p95 ms", ("latency_ms", "p95"), "{:.0f}"),
    ("tokens/s", "tokens_per_s_median", "{:.1f}"),
    ("peak MB", "peak_memory_mb", "{:.0f}"),
)


@dataclass(frozen=True)
class Written:
    """What `write` wrote."""

    markdown: Path
    chart: Path | None
    notes: list[str] = field(default_factory=list)
    """What could not be done, one line each (no matplotlib)."""


def _value(config: dict[str, Any], key: str | tuple[str, str]) -> Any:
    if isinstance(key, tuple):
        return config.get(key[0], {}).get(key[1])
    return config.get(key)


def quality(config: dict[str, Any]) -> float:
    """SQuAD 2.0's overall F1: answering the answerable and abstaining on the rest both count."""
    return float(config.get("overall_f1") or 0.0)


def p50(config: dict[str, Any]) -> float:
    return float(config["latency_ms"]["p50"])


def recommend(result: dict[str, Any]) -> list[str]:
    """Plain sentences drawn only from the numbers of `result`."""
    configs = {c["name"]: c for c in result["configurations"]}
    n = result["questions"]
    best = max(configs.values(), key=lambda c: (quality(c), -p50(c)))
    lines = [
        f"{best['name']} answers best: overall F1 {quality(best):.3f} on {n} questions "
        f"({best['answerable']} answerable, {best['unanswerable']} unanswerable), "
        f"median answer {p50(best):.0f} ms."
    ]
    runners = [c for c in configs.values() if c is not best]
    close = [c["name"] for c in runners if quality(best) - quality(c) < CLOSE]
    if close:
        lines.append(
            f"{', '.join(close)} {'is' if len(close) == 1 else 'are'} within {CLOSE} of it: "
            "a difference these questions cannot tell apart."
        )
    for model in ("base", "adapter"):
        alone, rag = configs.get(model), configs.get(f"{model}+retrieval")
        if alone is None or rag is None:
            continue
        cost = p50(rag) - p50(alone)
        gain = quality(rag) - quality(alone)
        lines.append(
            f"Retrieval {'adds' if cost >= 0 else 'saves'} {abs(cost):.0f} ms to the median "
            f"answer of the {model} model ({p50(alone):.0f} -> {p50(rag):.0f} ms) and changes "
            f"its overall F1 by {gain:+.3f}."
        )
    adapters = [c for c in configs.values() if c["name"].startswith("adapter")]
    bases = [c for c in configs.values() if c["name"].startswith("base")]
    if not adapters:
        lines.append(
            "No adapter was compared: train one on a question set with `localrag adapter train "
            "--from-set NAME`, merge it, and compare again."
        )
    else:
        a, b = max(adapters, key=quality), max(bases, key=quality)
        diff = quality(a) - quality(b)
        if diff >= CLOSE:
            verdict = f"is worth keeping: its best configuration ({a['name']}) scores"
        elif diff <= -CLOSE:
            verdict = f"is not worth keeping on these questions: its best ({a['name']}) scores"
        else:
            verdict = "makes no measurable difference on these questions: its best scores"
        lines.append(
            f"The adapter {result.get('adapter')} {verdict} {diff:+.3f} overall F1 against the "
            f"base model's best ({b['name']})."
        )
    if n < 50:
        lines.append(f"With {n} questions one answer moves a score by {1 / n:.3f}.")
    return lines


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    return fmt.format(value)


def rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(column titles, one row of formatted cells per configuration): the table, anywhere."""
    cells = [
        [_cell(_value(c, key), fmt) for _, key, fmt in _COLUMNS] for c in result["configurations"]
    ]
    return [title for title, _, _ in _COLUMNS], cells


def table(result: dict[str, Any]) -> str:
    """The figures of every configuration as a Markdown table."""
    titles, cells = rows(result)
    head = "| " + " | ".join(titles) + " |"
    rule = "|" + "|".join("---" for _ in titles) + "|"
    return "\n".join([head, rule, *("| " + " | ".join(r) + " |" for r in cells)])


def _escape(text: str, width: int = 80) -> str:
    text = " ".join(visible(text).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|") or "(abstained)"


def markdown(result: dict[str, Any], chart: str | None) -> str:
    configs = result["configurations"]
    parts = [
        "# localrag compare: RAG or fine-tuning, on your data",
        "",
        "> **This report contains your questions** and the model's answers to them, made "
        "from your own documents: keep it as private as they are.",
        "",
        f"Questions: {result['source']}, {result['questions']} asked under each configuration "
        f"(model {result.get('model')}, adapter {result.get('adapter') or 'none'}, "
        f"{result['k']} sources per question)."
        + (
            f" {result['asked_back']} of the set's questions were asked back from a sentence of "
            "your documents (the model proposed none that passed the check there): they repeat "
            "its words, so they test reading more than retrieval."
            if result.get("asked_back")
            else ""
        ),
        "",
        table(result),
        "",
        "## Recommendation",
        "",
        *[f"- {line}" for line in result["recommendation"]],
        "",
    ]
    if chart:
        parts += [f"![quality against latency]({chart})", ""]
    parts += [
        "## The questions",
        "",
        "| question | gold | " + " | ".join(c["name"] for c in configs) + " |",
        "|" + "|".join("---" for _ in range(len(configs) + 2)) + "|",
    ]
    for i, first in enumerate(configs[0]["records"]):
        gold = " / ".join(first["answers"]) or "(none in the data)"
        answers = [_escape(c["records"][i]["prediction"]) for c in configs]
        parts.append(f"| {_escape(first['question'])} | {_escape(gold)} | {' | '.join(answers)} |")
    return "\n".join(parts) + "\n"


def _private(path: Path) -> Any:
    """A new file only its owner can read (it holds the user's questions)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def chart(configs: Sequence[dict[str, Any]], path: Path) -> None:
    """Overall F1 against median latency, one labelled point per configuration."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    try:
        for c in configs:
            x, y = p50(c), quality(c)
            ax.scatter([x], [y], s=60)
            ax.annotate(c["name"], (x, y), textcoords="offset points", xytext=(6, 6))
        ax.set_xlabel("median answer latency (ms)")
        ax.set_ylabel("overall F1 (SQuAD 2.0)")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(left=0)
        ax.set_title("quality against latency")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        with _private(path) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)


def write(result: dict[str, Any], folder: Path) -> Written:
    """`compare.md` and `compare.png` in `folder` (made if needed)."""
    from localrag.errors import UsageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot make the report folder ({exc.strerror})") from exc
    notes: list[str] = []
    drawn: Path | None = folder / CHART
    try:
        chart(result["configurations"], folder / CHART)
    except ImportError:
        drawn = None
        notes.append(
            "no chart: matplotlib cannot be imported (reinstall localrag: pip install -e .)"
        )
    path = folder / MARKDOWN
    with _private(path) as f:
        f.write(markdown(result, CHART if drawn else None).encode("utf-8"))
    return Written(path, drawn, notes)
