"""`localrag eval qa --squad FILE`: answer quality on a SQuAD 2.0-format file.

Every paragraph of the file goes into a throwaway encrypted vault (a random key never written
down, in a temporary folder removed afterwards); then the questions are asked through
`Assistant.ask`, exactly as `localrag ask` does. Reported:
- exact match and F1 (SQuAD's normalisation: lower case, no punctuation, no articles) on the
  answerable questions, and `answer_in_text`: the share whose gold answer appears in the answer
  (a fairer view of a model that answers in sentences);
- precision and recall of abstaining, where the unanswerable questions are the positives;
- hit@k: the gold paragraph among the sources the model was given (none when the abstain
  gate abstained, or when it did not fit the context), and `retrieval_hit_at_k`: among the `k`
  chunks retrieval found, whatever the gate and the context budget did with them;
- citation precision: the share of cited answers (to answerable questions) whose cited
  sources hold a gold answer;
- SQuAD 2.0's official overall exact match and F1, over every question (an unanswerable one
  scores 1 when the answer abstains, an answerable one 0);
- latency p50/p95 of whole answers, and of the first token.

With `--adapter PATH` (a PEFT folder or a GGUF LoRA) the same questions are asked twice, of the
base model and of the base with the adapter (imported into the throwaway vault and merged as
`adapter merge` would, or applied at run time with `--runtime`), and the figures are shown side
by side. `--articles` asks only the questions of some articles (every paragraph is still
indexed), so that an adapter is measured on articles its training never saw.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from localrag.errors import UsageError
from localrag.evaluate.retrieval import PREFIX
from localrag.evaluate.scoring import score, summarize

T = TypeVar("T")


@dataclass(frozen=True)
class Question:
    """One SQuAD question with where its answer is."""

    text: str
    answers: tuple[str, ...]
    """Gold answers; empty for an unanswerable question."""
    paragraph: str
    """Id of the paragraph it was written about."""
    article: str = ""
    """Title of its article."""


def read_squad(path: Path) -> list[dict[str, Any]]:
    """The articles of a SQuAD 2.0 file, as JSON; a usage error names what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a SQuAD 2.0 JSON file ({exc})") from exc
    if not isinstance(data, list):
        raise UsageError(f"{path}: not a SQuAD 2.0 JSON file (data is not a list)")
    return data


def load_squad(path: Path) -> tuple[dict[str, tuple[str, str]], list[Question]]:
    """Paragraphs (id to (title, text)) and questions of a SQuAD 2.0 file."""
    data = read_squad(path)
    paragraphs: dict[str, tuple[str, str]] = {}
    questions: list[Question] = []
    for a, article in enumerate(data):
        title = article.get("title", "").replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            pid = f"{a}.{p}"
            paragraphs[pid] = (title, paragraph["context"])
            for qa in paragraph["qas"]:
                gold = () if qa.get("is_impossible") else tuple(x["text"] for x in qa["answers"])
                questions.append(Question(qa["question"], gold, pid, title))
    return paragraphs, questions


def of_articles(questions: Sequence[Question], titles: str) -> list[Question]:
    """The questions of the articles named in `titles` (comma separated; `_` or spaces)."""
    wanted = {t.strip().replace("_", " ") for t in titles.split(",") if t.strip()}
    known = {q.article for q in questions}
    unknown = wanted - known
    if unknown:
        raise UsageError(
            f"no article {', '.join(sorted(unknown))}; the file has {', '.join(sorted(known))}"
        )
    return [q for q in questions if q.article in wanted]


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """`limit` items evenly spaced through the list, so every article is represented."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qa", help="exact match, F1, abstaining and latency on SQuAD 2.0")
    p.add_argument("--squad", type=Path, required=True, help="a SQuAD 2.0-format JSON file")
    p.add_argument("--limit", type=int, help="ask only this many questions (spread evenly)")
    p.add_argument("-k", type=int, help="sources per question (default: top_k of the settings)")
    p.add_argument("--no-retrieval", dest="retrieval", action="store_false")
    p.add_argument(
        "--grounded",
        action="store_true",
        help="decode-time grounding: the answer is copied from a source (default: as config.toml)",
    )
    p.add_argument(
        "--abstain-margin",
        type=float,
        metavar="LOGITS",
        help="the model refuses only when that beats its best answer by this many logits "
        "(default: as config.toml)",
    )
    p.add_argument(
        "--articles", metavar="TITLE,...", help="ask only the questions of these articles"
    )
    p.add_argument(
        "--adapter",
        type=Path,
        metavar="PATH",
        help="also answer with this adapter (PEFT folder or GGUF LoRA) and compare with the base",
    )
    p.add_argument("--quant", default="Q4_K_M", help="merge the adapter at this quantization")
    p.add_argument(
        "--runtime", action="store_true", help="apply the adapter at run time instead of merging"
    )
    from localrag.cli.common import add_json

    add_json(p)
    p.set_defaults(func=run)


def evaluate(
    assistant: Any,
    questions: Sequence[Question],
    k: int,
    retrieval: bool,
    adapter: str | None = None,
    runtime: bool = False,
) -> Iterator[dict[str, Any]]:
    """Ask each question (of the model `adapter` names, else the active one); yields one
    record per question."""
    for q in questions:
        answer = assistant.ask(
            q.text, k=k, retrieval=retrieval, adapter=adapter, runtime_adapter=runtime
        )
        yield score(answer, q.text, q.answers, PREFIX + q.paragraph)


ADAPTER_NAME = "evaluated"


def run(args: argparse.Namespace) -> int:
    from localrag import embed, models
    from localrag.cli.common import print_json, settings
    from localrag.evaluate.progress import progress_bar
    from localrag.evaluate.scratch import squad_vault
    from localrag.model_choice import WorkerModels
    from localrag.service import Assistant

    s = settings(args)
    s = s.with_changes(grounded_answers=args.grounded or s.grounded_answers)
    if args.abstain_margin is not None:
        s = s.with_changes(abstain_margin=args.abstain_margin)
    paragraphs, questions = load_squad(args.squad)
    if args.articles:
        questions = of_articles(questions, args.articles)
    chosen = spread(questions, args.limit)
    if not chosen:
        raise UsageError(f"{args.squad}: no questions to ask")
    k = args.k or s.top_k
    embedder = embed.from_settings(s)
    runs: dict[str, list[dict[str, Any]]] = {}
    with squad_vault(paragraphs, embedder, "localrag-eval-qa-") as (store, folder):
        answering = WorkerModels(s, store)
        with Assistant(s.with_changes(home=folder), store, embedder, models=answering) as assistant:
            labels = ["base"] + (["adapter"] if args.adapter is not None else [])
            for label in labels:
                ref = None
                if label == "adapter":
                    ref = _prepare_adapter(assistant, args.adapter, args.quant, args.runtime)
                runtime = ref is not None and args.runtime
                # One answer first, not counted: loading the model is not answering.
                assistant.ask(
                    chosen[0].text,
                    k=k,
                    retrieval=args.retrieval,
                    adapter=ref,
                    runtime_adapter=runtime,
                ).text()
                records: list[dict[str, Any]] = []
                with progress_bar(f"asking ({label})", len(chosen)) as update:
                    for record in evaluate(assistant, chosen, k, args.retrieval, ref, runtime):
                        records.append(record)
                        update(len(records))
                runs[label] = records
    result: dict[str, Any] = {
        "data": str(args.squad),
        "articles": args.articles,
        "model": models.active_name(s, "llm"),
        "retrieval": args.retrieval,
        "grounded": s.grounded_answers,
        "abstain_margin": s.abstain_margin,
        "k": k,
        **summarize(runs["base"], args.retrieval),
    }
    if "adapter" in runs:
        result["adapter"] = {
            "path": str(args.adapter),
            "how": "runtime LoRA" if args.runtime else f"merged, {args.quant}",
            **summarize(runs["adapter"], args.retrieval),
        }
    if args.json:
        result["records"] = runs["base"]
        if "adapter" in runs:
            result["adapter"]["records"] = runs["adapter"]
        print_json(result)
        return 0
    _print_side_by_side(result)
    return 0


def _prepare_adapter(assistant: Any, path: Path, quant: str, runtime: bool) -> str:
    """Import the adapter into the throwaway vault (and merge it, unless `runtime`)."""
    from localrag.adapter import manage

    manage.import_adapter(assistant.store, assistant.settings, path, ADAPTER_NAME)
    if runtime:
        return ADAPTER_NAME
    from localrag.evaluate.progress import progress_bar

    with progress_bar(f"merging ({quant})", 1):
        for _ in manage.merge_adapter(assistant.store, assistant.settings, ADAPTER_NAME, quant):
            pass
    return ADAPTER_NAME


def _print_side_by_side(result: dict[str, Any]) -> None:
    adapter = result.get("adapter")
    for name, value in result.items():
        if name == "adapter":
            continue
        if adapter is None or name not in adapter:
            print(f"{name:<22} {value}")
            continue
        print(f"{name:<22} {value!s:<28} {adapter[name]}")
    if adapter is not None:
        print(f"{'':<22} {'(base)':<28} (adapter {adapter['path']}, {adapter['how']})")
