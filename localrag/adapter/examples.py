"""Training examples for an answer adapter: the prompt `ask` builds, and the reply to learn.

An `Example` is a question, the numbered sources the prompt would show for it, and the reply
(the shortest span that answers, cited: `1622 [2]`; or the not-found sentence). `messages()`
turns it into exactly the chat messages `localrag ask` sends (`prompt.build_messages`), so what
the adapter learns is what it will see.

Examples come from a SQuAD 2.0 file (`from_squad`: the gold paragraph and one or two distractor
paragraphs that share the question's words, as retrieval would find them, in a random order,
each cut around the question's words as `ask` cuts its sources, or for the gold one around
the answer when that cut would lose it), from JSON lines (`from_jsonl`:
`{"question", "sources": [text, ...], "answer", "cited": [n, ...]}`, an empty answer meaning
the sources do not hold it), and from the generated kinds of `localrag.adapter.synthetic`.
No torch here: building and checking data needs none.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrag.errors import UsageError
from localrag.evaluate.qa import read_squad
from localrag.excerpt import SOURCE_WORDS, content_words, focus, window
from localrag.generate import Message
from localrag.prompt import NOT_FOUND, Source, build_messages
from localrag.records import Chunk, Hit, Span


@dataclass(frozen=True)
class Passage:
    """One source as the prompt shows it."""

    text: str
    path: str = "notes.txt"
    """The file it is from: its name is the `from=` of the block."""
    span: Span = field(default_factory=Span)
    """Where in the file (lines, page, or a time range for a recording)."""


@dataclass(frozen=True)
class Example:
    """A question, its numbered sources and the reply to learn."""

    question: str
    sources: tuple[Passage, ...]
    reply: str
    """The target: a short cited answer, or `prompt.NOT_FOUND`."""
    kind: str
    """squad, unanswerable, distractors, yes-no, steps, technical, recording, injection, jsonl
    or set."""
    group: str = ""
    """Examples of one group (a paragraph) go to the same side of the validation split."""

    @property
    def abstains(self) -> bool:
        return self.reply == NOT_FOUND


def messages(example: Example) -> list[Message]:
    """The chat messages `localrag ask` would send for this question and these sources."""
    sources = [
        Source(n, Hit(Chunk(n, n, p.path, 0, p.text, p.span), 1.0))
        for n, p in enumerate(example.sources, start=1)
    ]
    return build_messages(example.question, sources, retrieval=True)


# -- SQuAD ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class SquadQuestion:
    question: str
    paragraph: Paragraph
    answers: tuple[tuple[str, int], ...]
    """(text, start character) of each gold answer; empty when it cannot be answered."""


def squad_questions(
    paths: Sequence[Path], articles: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[SquadQuestion]:
    """The questions of the chosen articles of one or more SQuAD files (by title; all but
    `exclude` when `articles` is None)."""
    data = [article for path in paths for article in read_squad(path)]
    titles = [a.get("title", "") for a in data]
    wanted = set(articles) if articles is not None else set(titles) - set(exclude)
    unknown = (wanted | set(exclude)) - set(titles)
    if unknown:
        names = ", ".join(str(p) for p in paths)
        raise UsageError(
            f"{names}: no article {', '.join(sorted(unknown))}; there are {', '.join(titles)}"
        )
    out = []
    for a, article in enumerate(data):
        if article.get("title", "") not in wanted:
            continue
        for p, para in enumerate(article["paragraphs"]):
            paragraph = Paragraph(f"{a}.{p}", article.get("title", ""), para["context"])
            for qa in para["qas"]:
                answers = () if qa.get("is_impossible") else _answers(qa["answers"])
                out.append(SquadQuestion(qa["question"], paragraph, answers))
    return out


def _answers(raw: Sequence[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    """Gold answers, the one most annotators chose first (then the shorter)."""
    counts = Counter(a["text"].strip() for a in raw)
    seen: dict[str, int] = {}
    for a in raw:
        seen.setdefault(a["text"].strip(), int(a["answer_start"]))
    ranked = sorted(seen, key=lambda t: (-counts[t], len(t)))
    return tuple((t, seen[t]) for t in ranked)


def _file_for(paragraph: Paragraph, rng: random.Random) -> tuple[str, Span]:
    """A plausible file and place for a paragraph, so `from=` looks like a user's files."""
    stem = re.sub(r"\W+", "-", paragraph.title.lower()).strip("-") or "notes"
    line = rng.randint(1, 120)
    kind = rng.random()
    if kind < 0.4:
        return f"{stem}.pdf", Span(page=rng.randint(1, 30), line_start=line, line_end=line + 6)
    if kind < 0.7:
        return f"{stem}.md", Span(line_start=line, line_end=line + rng.randint(0, 4))
    if kind < 0.85:
        return f"{stem}.docx", Span(line_start=line, line_end=line + rng.randint(0, 3))
    return f"{stem}.html", Span(line_start=line, line_end=line + rng.randint(2, 9))


class Distractors:
    """Paragraphs that retrieval would also find for a question: those sharing most of its
    content words, from any article, never ones holding a gold answer."""

    def __init__(self, paragraphs: Iterable[Paragraph]) -> None:
        self.paragraphs = list({p.id: p for p in paragraphs}.values())
        self.words = [content_words(p.text) for p in self.paragraphs]

    def pick(
        self, question: str, avoid: Paragraph, answers: Sequence[str], n: int, rng: random.Random
    ) -> list[Paragraph]:
        wanted = content_words(question)
        scored = []
        for p, words in zip(self.paragraphs, self.words, strict=True):
            if p.id == avoid.id or any(a.lower() in p.text.lower() for a in answers):
                continue
            scored.append((len(wanted & words) + rng.random() * 0.5, p))
        scored.sort(key=lambda t: -t[0])
        pool = [p for _, p in scored[: max(n, 5)]]
        return rng.sample(pool, min(n, len(pool)))


def from_squad(
    questions: Sequence[SquadQuestion],
    rng: random.Random,
    *,
    distractor_only: float = 0.1,
    headings: float = 0.0,
    pool: Iterable[Paragraph] | None = None,
) -> list[Example]:
    """One example per question, plus (a share `distractor_only` of the answerable ones) the
    same question with only distractors, whose reply is the not-found sentence. A share
    `headings` of the paragraphs start with their article's title (see `_chunk_text`)."""
    distractors = Distractors(pool if pool is not None else (q.paragraph for q in questions))
    out = []
    for q in questions:
        texts = [a for a, _ in q.answers]
        others = distractors.pick(q.question, q.paragraph, texts, rng.choice((1, 2, 2)), rng)
        paragraph, shift = _chunk_text(q.paragraph, headings, rng)
        gold = focus(paragraph, q.question, SOURCE_WORDS)
        if q.answers and q.answers[0][0] not in gold:
            text, start = q.answers[0]
            gold = window(paragraph, SOURCE_WORDS, start + shift, len(text))
        passages = [_passage(p, q.question, rng, headings) for p in others]
        at = rng.randrange(len(passages) + 1)
        passages.insert(at, Passage(gold, *_file_for(q.paragraph, rng)))
        if q.answers:
            reply = f"{q.answers[0][0]} [{at + 1}]"
            out.append(Example(q.question, tuple(passages), reply, "squad", q.paragraph.id))
            if rng.random() < distractor_only:
                alone = tuple(_passage(p, q.question, rng, headings) for p in others)
                if alone:
                    out.append(Example(q.question, alone, NOT_FOUND, "distractors", q.paragraph.id))
        else:
            out.append(
                Example(q.question, tuple(passages), NOT_FOUND, "unanswerable", q.paragraph.id)
            )
    return out


def _chunk_text(paragraph: Paragraph, headings: float, rng: random.Random) -> tuple[str, int]:
    """The paragraph's text, and how far its characters moved: under a share `headings` of
    them, its article's title comes first, as a vault chunk that starts a section begins with
    the heading (and every paragraph `eval qa` indexes does), so the adapter learns that a
    heading names the topic, not the answer."""
    if headings and rng.random() < headings:
        head = paragraph.title.replace("_", " ") + "\n\n"
        return head + paragraph.text, len(head)
    return paragraph.text, 0


def _passage(paragraph: Paragraph, question: str, rng: random.Random, headings: float) -> Passage:
    """A distractor as `ask` would show it: cut around the question's words."""
    text, _ = _chunk_text(paragraph, headings, rng)
    return Passage(focus(text, question, SOURCE_WORDS), *_file_for(paragraph, rng))


# -- JSON lines -------------------------------------------------------------------------------


def from_jsonl(path: Path) -> list[Example]:
    """`{"question", "sources": [text or {"text", "from"}], "answer", "cited": [n]}` per line."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = str(row["question"]).strip()
            sources = tuple(_jsonl_source(s, i) for i, s in enumerate(row["sources"], start=1))
            answer = str(row.get("answer") or "").strip()
            cited = [int(n) for n in row.get("cited") or []]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"{path}, line {number}: expected {{question, sources, answer, cited}} ({exc})"
            ) from exc
        if not question or not sources:
            raise UsageError(f"{path}, line {number}: a question and at least one source")
        if any(not 1 <= n <= len(sources) for n in cited):
            raise UsageError(f"{path}, line {number}: cited {cited}, but {len(sources)} sources")
        reply = NOT_FOUND
        if answer:
            marks = "".join(f" [{n}]" for n in cited if f"[{n}]" not in answer)
            reply = answer + marks
        out.append(Example(question, sources, reply, "jsonl", f"line{number}"))
    if not out:
        raise UsageError(f"{path}: no examples")
    return out


def _jsonl_source(value: Any, n: int) -> Passage:
    if isinstance(value, dict):
        return Passage(str(value["text"]), str(value.get("from") or f"source-{n}.txt"))
    return Passage(str(value), f"source-{n}.txt")


# -- a question set made from the vault ------------------------------------------------------


def from_set(store: Any, name: str, rng: random.Random) -> tuple[list[Example], int]:
    """(examples, questions held out) of a question set made by `eval make-qa`.

    Only its training part: the held-out questions stay out for `eval compare --held-out`.
    An answerable question is shown with the chunk it was made from and one other chunk of the
    vault, as retrieval would show them, in a random order; the reply is its answer citing its
    chunk. An unanswerable one (about a name the vault lacks) is shown with the chunk its
    question was made from, which does not hold that name; the reply is the not-found sentence.
    Questions whose document was deleted since are gone with it.
    """
    items = store.evaluations.items(name)
    training = [i for i in items if not i.held_out and i.chunk_id is not None]
    ids = store.chunk_ids()
    wanted = {i.chunk_id for i in training}
    others = {
        i.chunk_id: rng.choice([c for c in ids if c != i.chunk_id] or [i.chunk_id])
        for i in training
        if i.answers
    }
    chunks = {c.id: c for c in store.chunks(sorted(wanted | set(others.values())))}
    out = []
    for item in training:
        gold = chunks.get(item.chunk_id)
        if gold is None:
            continue
        passages = [Passage(gold.text, gold.path, gold.span)]
        reply = NOT_FOUND
        if item.answers:
            other = chunks.get(others[item.chunk_id])
            if other is not None and other.id != gold.id:
                passages.append(Passage(other.text, other.path, other.span))
            rng.shuffle(passages)
            n = next(k for k, p in enumerate(passages, start=1) if p.text == gold.text)
            reply = f"{item.answers[0]} [{n}]"
        out.append(Example(item.question, tuple(passages), reply, "set", str(gold.id)))
    if not out:
        raise UsageError(
            f"the question set {name!r} has no questions to train on "
            "(all held out, or their documents deleted); make a larger one with `eval make-qa`"
        )
    return out, sum(1 for i in items if i.held_out)


# -- splitting --------------------------------------------------------------------------------


def split(
    examples: Sequence[Example], rng: random.Random, share: float = 0.05, most: int = 64
) -> tuple[list[Example], list[Example]]:
    """(train, validation): whole groups go to validation until it holds `share` of the
    examples (at most `most`; at least one when there are two groups or more)."""
    groups = sorted({e.group for e in examples})
    rng.shuffle(groups)
    want = min(most, max(1, round(share * len(examples)))) if len(groups) > 1 else 0
    held: set[str] = set()
    count = 0
    by_group = Counter(e.group for e in examples)
    for g in groups:
        if count >= want:
            break
        held.add(g)
        count += by_group[g]
    train = [e for e in examples if e.group not in held]
    return train, [e for e in examples if e.group in held]


def kinds(examples: Iterable[Example]) -> dict[str, int]:
    return dict(sorted(Counter(e.kind for e in examples).items()))


@dataclass(frozen=True)
class DataPlan:
    """What `build` makes of a data file."""

    exclude_articles: tuple[str, ...] = ()
    """SQuAD articles (titles) kept out of training, for evaluation."""
    generated: int = 0
    """About this many examples of each generated kind (yes/no, steps, recordings, injected
    instructions, distractors only) are added; 0 adds none."""
    distractor_only: float = 0.1
    """Share of answerable SQuAD questions also asked with distractors only."""
    unanswerable: float = 1.0
    """Share of SQuAD's unanswerable questions kept. A 135M model cannot tell most of them
    (written to look answerable) from answerable ones: all of them taught the 45-step adapter
    to abstain on 93 % of answerable held-out questions."""
    technical: int = 0
    """About this many generated questions on READMEs whose answers are paths, commands and
    options (a kind of its own, so that adding it left the shipped adapter's data as it was)."""
    variants: int = 1
    """Each SQuAD question is shown this many times, each with other distractors, in another
    order and from other files: more to learn from than repeating the same prompt."""
    headings: float = 0.0
    """Share of SQuAD paragraphs shown with their article's title as a first line."""


def build(paths: Sequence[Path], plan: DataPlan, seed: int) -> list[Example]:
    """The examples of SQuAD 2.0 files and JSON-lines files, plus the generated kinds, in a
    shuffled order fixed by `seed`. The SQuAD files' articles are one pool: a question's
    distractors may come from any of them."""
    rng = random.Random(seed)
    lines = [p for p in paths if p.suffix.lower() in (".jsonl", ".ndjson")]
    squads = [p for p in paths if p not in lines]
    if plan.exclude_articles and not squads:
        raise UsageError("--exclude-articles applies to SQuAD files, not JSON lines")
    base = [e for path in lines for e in from_jsonl(path)]
    if squads:
        questions = squad_questions(squads, exclude=plan.exclude_articles)
        questions = [q for q in questions if q.answers or rng.random() < plan.unanswerable]
        base += [
            e
            for _ in range(plan.variants)
            for e in from_squad(
                questions, rng, distractor_only=plan.distractor_only, headings=plan.headings
            )
        ]
    return with_generated(base, plan, rng)


def with_generated(base: Sequence[Example], plan: DataPlan, rng: random.Random) -> list[Example]:
    """`base` and the generated kinds `plan` asks for, shuffled."""
    from localrag.adapter import synthetic

    out = list(base)
    if plan.generated:
        n = plan.generated
        fillers = synthetic.fillers_from(base, rng)
        answered = [e for e in base if not e.abstains]
        out += synthetic.yes_no(n, rng, fillers)
        out += synthetic.steps(n, rng, fillers)
        out += synthetic.off_topic(n // 2, rng, fillers)
        out += synthetic.recordings(rng.sample(answered, min(n, len(answered))), rng)
        injected = rng.sample(base, min(n, len(base)))
        out += synthetic.injections(injected, rng)
    if plan.technical:
        out += synthetic.technical(plan.technical, rng, synthetic.fillers_from(base, rng))
    rng.shuffle(out)
    return out
