"""`localrag eval compare`: RAG or fine-tuning, measured side by side on the same questions.

Each question is asked under each configuration: the base model alone, the base with retrieval,
and (when an adapter is named or active) the adapter alone and the adapter with retrieval.
Every answer is scored as `eval qa` scores it (`scoring.py`) and kept in the vault as soon as
it is scored, so Ctrl-C loses at most the answer being written: the same command run again
resumes (`store.evaluations`). The questions are a set made from the vault (`--set`, asked of
the vault itself) or a SQuAD 2.0 file (`--squad`, indexed into a throwaway vault as `eval qa`
does; its answers are still kept in the user's vault, never in a file).

Per configuration: `summarize`'s figures, and the peak resident memory of the model worker
while it answered (its high-water mark is set back after the first, uncounted answer, which
loads the model; see `localrag.worker.memory`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.errors import UsageError
from localrag.evaluate.scoring import score, summarize

if TYPE_CHECKING:
    from localrag.service import Assistant
    from localrag.store.evaluations import Evaluations

CONFIGURATIONS = ("base", "base+retrieval", "adapter", "adapter+retrieval")
WARM_UP = "Say hello."
"""Asked (without retrieval, not counted) before each configuration, to load its model."""


@dataclass(frozen=True)
class Item:
    """One question to ask under every configuration."""

    question: str
    answers: tuple[str, ...]
    """Gold answers; empty for a question the data cannot answer."""
    gold_path: str | None = None
    """The document that holds the answer (for hit@k), if known."""


@dataclass(frozen=True)
class Config:
    """One way of answering."""

    name: str
    """One of `CONFIGURATIONS`."""
    model: str | None
    """The model to ask: None the active one, `base`, or a merged version `NAME@vN`."""
    retrieval: bool


@dataclass(frozen=True)
class Progress:
    """How far a compare is; the last event carries the result."""

    config: str
    """The configuration of the answer just scored ("" before the first and after the last)."""
    done: int
    """Answers scored so far, over all configurations, counting those resumed."""
    total: int
    resumed: int
    """Answers taken from an interrupted run instead of asked again."""
    result: dict[str, Any] | None = None


def configurations(adapter: str | None) -> list[Config]:
    """The configurations to run: with no adapter, the active model (the base) alone."""
    base = "base" if adapter else None
    configs = [Config("base", base, False), Config("base+retrieval", base, True)]
    if adapter:
        configs += [Config("adapter", adapter, False), Config("adapter+retrieval", adapter, True)]
    return configs


def run_key(items: Sequence[Item], configs: Sequence[Config], **how: Any) -> str:
    """What makes two runs the same run (so one may resume the other): the questions, the
    configurations and how they are asked (`how`: model, k, grounding)."""
    data = {
        "items": [asdict(i) for i in items],
        "configs": [asdict(c) for c in configs],
        **how,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def compare(
    assistant: Assistant,
    items: Sequence[Item],
    configs: Sequence[Config],
    runs: Evaluations,
    *,
    k: int,
    meta: dict[str, Any],
    forget_turns: bool,
) -> Iterator[Progress]:
    """Ask every item under every configuration through `assistant.ask`; `runs` (a vault's
    `Evaluations`) keeps each scored answer. `forget_turns` deletes the conversation each
    question makes (a compare is no chat of the user's). The last event has the result."""
    from localrag.worker import memory

    if not items:
        raise UsageError("no questions to ask")
    key = run_key(items, configs, k=k, model=meta.get("model"), grounded=meta.get("grounded"))
    run_id, kept = runs.start_run(key, meta)
    total = len(items) * len(configs)
    resumed = sum(1 for c in configs for i in range(len(items)) if (c.name, i) in kept)
    done = resumed
    yield Progress("", done, total, resumed)
    for config in configs:
        missing = [i for i in range(len(items)) if (config.name, i) not in kept]
        if not missing:
            continue
        # One answer first, not counted: loading the model is not answering. Not one of the
        # questions, whose prompt the worker would then have cached.
        warm = assistant.ask(WARM_UP, retrieval=False, adapter=config.model)
        warm.text()
        if forget_turns:
            assistant.store.delete_conversation(warm.conversation_id)
        pid = getattr(assistant.models.generator(config.model), "pid", None)
        memory.reset_peak_rss(pid)
        for i in missing:
            record = _ask(assistant, items[i], config, k, forget_turns)
            record["peak_rss_bytes"] = memory.peak_rss_bytes(pid)
            runs.add_record(run_id, config.name, i, record)
            kept[(config.name, i)] = record
            done += 1
            yield Progress(config.name, done, total, resumed)
    result = {
        **meta,
        "questions": len(items),
        "k": k,
        "resumed": resumed,
        "configurations": [
            _summary(config, [kept[(config.name, i)] for i in range(len(items))])
            for config in configs
        ],
    }
    from localrag.evaluate.report import recommend

    result["recommendation"] = recommend(result)
    runs.finish_run(run_id, result)
    yield Progress("", total, total, resumed, result)


def _ask(assistant: Assistant, item: Item, config: Config, k: int, forget: bool) -> dict[str, Any]:
    answer = assistant.ask(item.question, k=k, retrieval=config.retrieval, adapter=config.model)
    record = score(answer, item.question, item.answers, item.gold_path)
    if forget:
        assistant.store.delete_conversation(answer.conversation_id)
    return record


def _summary(config: Config, records: list[dict[str, Any]]) -> dict[str, Any]:
    peaks = [r["peak_rss_bytes"] for r in records if r.get("peak_rss_bytes")]
    return {
        "name": config.name,
        "model": config.model or "active",
        "retrieval": config.retrieval,
        **summarize(records, config.retrieval),
        "peak_memory_mb": round(max(peaks) / 1e6, 1) if peaks else None,
        "records": records,
    }


# -- where the questions come from ------------------------------------------------------------


def set_items(store: Any, name: str, held_out: bool = False) -> list[Item]:
    """The questions of a set made from the vault (only its held-out part with `held_out`)."""
    chosen = [i for i in store.evaluations.items(name) if i.held_out or not held_out]
    if not chosen:
        raise UsageError(f"the question set {name!r} has no held-out questions; omit --held-out")
    paths = {d.id: d.path for d in store.documents()}
    return [Item(i.question, i.answers, paths.get(i.doc_id) if i.answers else None) for i in chosen]


def squad_items(path: Path, limit: int | None) -> tuple[dict[str, tuple[str, str]], list[Item]]:
    """The paragraphs of a SQuAD 2.0 file and `limit` of its questions, spread evenly."""
    from localrag.evaluate.qa import load_squad, spread
    from localrag.evaluate.retrieval import PREFIX

    paragraphs, questions = load_squad(path)
    chosen = spread(questions, limit)
    return paragraphs, [Item(q.text, q.answers, PREFIX + q.paragraph) for q in chosen]


def resolve_adapter(store: Any, ref: str | None) -> str | None:
    """The version to compare: `NAME@vN` for `ref` (`NAME`: its latest), else the active one."""
    from localrag.adapter.registry import BASE, Registry

    registry = Registry(store)
    if ref is None:
        active = registry.active
        return active.ref if active is not None else None
    if ref == BASE:
        raise UsageError("--adapter names an adapter; the base model is always compared")
    return registry.version(ref).ref


# -- the command ------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    from localrag.cli.common import add_json, add_passphrase_file

    p = sub.add_parser(
        "compare",
        help="base, base + retrieval, adapter, adapter + retrieval on the same questions",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--set", metavar="NAME", help="a question set made by `eval make-qa`")
    source.add_argument("--squad", type=Path, metavar="FILE", help="a SQuAD 2.0-format JSON file")
    p.add_argument(
        "--adapter",
        metavar="NAME[@vN]",
        help="the merged adapter version to compare (default: the active one, if any)",
    )
    p.add_argument("--limit", type=int, help="ask only this many questions (spread evenly)")
    p.add_argument(
        "--held-out",
        action="store_true",
        help="with --set: only the questions `adapter train --from-set` kept out of training",
    )
    p.add_argument("-k", type=int, help="sources per question (default: top_k of the settings)")
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write compare.md and compare.png here (they hold your questions)",
    )
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag.cli.common import open_assistant, print_json
    from localrag.evaluate import report, text_chart

    if args.held_out and args.set is None:
        raise UsageError("--held-out applies to --set, not --squad")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.squad is not None and not args.squad.is_file():
        raise UsageError(f"{args.squad}: no such file")
    with open_assistant(args) as assistant:
        events = (
            assistant.compare_set(
                args.set, adapter=args.adapter, limit=args.limit, held_out=args.held_out, k=args.k
            )
            if args.set is not None
            else compare_squad(assistant, args.squad, args.adapter, args.limit, args.k)
        )
        result = _with_progress(events)
    if args.report is not None:
        written = report.write(result, args.report)
        for line in written.notes:
            print(f"localrag: {line}", file=sys.stderr)
        print(f"report: {written.markdown}", file=sys.stderr)
    if args.json:
        print_json(result)
        return 0
    print(report.table(result))
    print()
    print("\n".join(text_chart.draw(result["configurations"]).lines))
    print()
    for line in result["recommendation"]:
        print(f"- {line}")
    return 0


def compare_squad(
    assistant: Assistant, path: Path, adapter: str | None, limit: int | None, k: int | None
) -> Iterator[Progress]:
    """`compare` on a SQuAD file: its paragraphs in a throwaway vault, asked of the models of
    the user's vault (`assistant`), whose vault keeps the answers."""
    from localrag import models
    from localrag.evaluate.scratch import squad_vault
    from localrag.service import Assistant

    s = assistant.settings
    version = resolve_adapter(assistant.store, adapter)
    paragraphs, items = squad_items(path, limit)
    if not items:
        raise UsageError(f"{path}: no questions to ask")
    meta = {
        "source": f"squad:{path.name}",
        "model": models.active_name(s, "llm"),
        "adapter": version,
        "grounded": s.grounded_answers,
    }
    with squad_vault(paragraphs, assistant.embedder, "localrag-eval-compare-") as (store, folder):
        # Not closed: its models and embedder belong to `assistant`; the scratch vault closes
        # with its block.
        scratch = Assistant(
            s.with_changes(home=folder), store, assistant.embedder, models=assistant.models
        )
        yield from compare(
            scratch,
            items,
            configurations(version),
            assistant.store.evaluations,
            k=k or s.top_k,
            meta=meta,
            forget_turns=False,
        )


def _with_progress(events: Iterator[Progress]) -> dict[str, Any]:
    """Draw one bar over every configuration; on Ctrl-C say how to resume."""
    from localrag.evaluate.progress import progress_bar

    first = next(events)
    done = first.done
    try:
        with progress_bar("comparing", first.total) as update:
            update(first.done)
            for event in events:
                done = event.done
                update(event.done)
                if event.result is not None:
                    return event.result
    except KeyboardInterrupt:
        print(
            f"localrag: interrupted; {done} of {first.total} answers are kept in the vault: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        raise
    raise RuntimeError("the compare ended without a result")
