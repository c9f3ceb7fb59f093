"""`localrag eval make-qa`: a question set made from the user's own vault, kept in the vault.

Chunks (of documents and recordings alike) are sampled at random; for each, the local model is
asked, with a short prompt, for one question the text answers and the answer copied from it.
A pair is kept only if its answer really occurs in its chunk (SQuAD-normalised, whole words),
is short, and is not given away by the question: a small model often invents, and a question
whose gold answer is not in the vault measures nothing.

Where the model's proposal fails the check (on technical text it nearly always does), one of
the chunk's sentences is asked back instead, its most specific term made "what"
(`localrag.evaluate.in_place`); the set's `asked_back` counts such questions.

Unanswerable questions are made from kept ones, without the model: the question's most
specific word that comes from its chunk (a code name, else a name, else its longest content
word) is replaced by a made-up name that the vault's keyword index does not hold. "When did
the Lindqvist Bridge open?" becomes "When did the Vesterholm Bridge open?": retrieval still
finds the bridge, so the question tests whether the answer abstains rather than answers about
the wrong subject.

About `HELD_OUT` of the chunks' questions are marked held out: `adapter train --from-set`
leaves them out, and `eval compare --set NAME --held-out` asks only them.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from localrag.errors import UsageError
from localrag.evaluate import in_place
from localrag.evaluate.scoring import normalize, occurs_in
from localrag.records import Chunk, QaItem, QaSet

if TYPE_CHECKING:
    from localrag.service import Assistant

PROMPT = (
    "You write one quiz question about a text, and its answer: a few words copied exactly "
    "from the text."
)
EXAMPLES = (
    (
        "The Eiffel Tower was built for the 1889 World's Fair in Paris. It is 330 metres tall "
        "and was the tallest structure in the world until 1930.",
        "Q: For which event was the Eiffel Tower built?\nA: the 1889 World's Fair",
    ),
    (
        "Invoices are paid within 30 days. Refunds must be approved by the finance manager "
        "before they are sent.",
        "Q: Who must approve a refund?\nA: the finance manager",
    ),
)
"""Shown before each text as earlier turns: a small model follows a shown form far better than
a described one."""
CHUNK_WORDS = 120
"""A chunk is cut to about this many words for the prompt: a short prompt, a quick answer."""
MIN_CHUNK_WORDS = 12
"""Shorter chunks (a heading, a line of a recording) are skipped."""
MAX_ANSWER_WORDS = 8
MAX_TOKENS = 64
TRIES_PER_QUESTION = 3
"""At most this many chunks are tried per question wanted."""
UNANSWERABLE_SHARE = 0.25
"""Unanswerable questions added, as a share of the answerable ones kept."""
HELD_OUT = 0.3
"""Share of the chunks whose questions are held out of training."""
MADE_UP_NAMES = (
    "Vesterholm",
    "Quillanet",
    "Marrowfeld",
    "Ostravine",
    "Pellmoor",
    "Dunkarrow",
    "Zelmira",
    "Thornquist",
    "Brackenvale",
    "Halloran",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PAIR = re.compile(r"Q\s*[:.]\s*(?P<q>.+?)\s*\n+\s*A\s*[:.]\s*(?P<a>.+)", re.S)
_WORD = re.compile(r"[A-Za-z][\w'-]*")


@dataclass(frozen=True)
class MakeProgress:
    """How far `make_set` is; the last event names the stored set."""

    tried: int
    """Chunks the model was asked about."""
    kept: int
    """Answerable pairs kept so far."""
    wanted: int
    stored: QaSet | None = None


def parse(reply: str) -> tuple[str, str] | None:
    """The (question, answer) of a `Q: ... / A: ...` reply; None if it has no such pair."""
    m = _PAIR.search(reply.strip())
    if not m:
        return None
    question = m.group("q").strip().splitlines()[0].strip()
    answer = m.group("a").strip().splitlines()[0].strip().strip("\"'").rstrip(".")
    return (question, answer) if question and answer else None


def acceptable(question: str, answer: str, text: str) -> bool:
    """Keep a pair only if its answer occurs in the chunk, is short, and the question does not
    already hold it."""
    return (
        question.endswith("?")
        and len(question.split()) >= 3
        and 1 <= len(answer.split()) <= MAX_ANSWER_WORDS
        and occurs_in(answer, text)
        and not occurs_in(answer, question)
    )


def unanswerable(question: str, text: str, name: str) -> str | None:
    """The question about `name` instead of its most specific word from the chunk; None if no
    word of it comes from the chunk."""
    from localrag.excerpt import content_words

    in_text = content_words(text)
    words = [
        (m.start(), m.group())
        for m in _WORD.finditer(question)
        if m.group().lower() in in_text and len(m.group()) >= 4
    ]
    if not words:
        return None
    # A code name (`ffi_cif`), then a name (capitalised, not the question's first word) says
    # most what a question is about.
    start, word = max(words, key=lambda w: ("_" in w[1], w[0] > 0 and w[1][0].isupper(), len(w[1])))
    return question[:start] + name + question[start + len(word) :]


def propose(generator: Any, text: str) -> tuple[str, str] | None:
    """Ask the model for a question and answer about `text`."""
    excerpt = " ".join(text.split()[:CHUNK_WORDS])
    messages = [{"role": "system", "content": PROMPT}]
    for shown, reply in EXAMPLES:
        messages += [
            {"role": "user", "content": f"Text: {shown}"},
            {"role": "assistant", "content": reply},
        ]
    messages.append({"role": "user", "content": f"Text: {excerpt}"})
    return parse("".join(generator.stream(messages, MAX_TOKENS)))


def default_name() -> str:
    return datetime.now().strftime("vault-%Y%m%d-%H%M%S")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} cannot name a question set: use letters, digits, '.', '_', '-'")
    return name


def make_set(
    assistant: Assistant, n: int, name: str | None, *, seed: int = 0
) -> Iterator[MakeProgress]:
    """Propose and check questions until `n` are kept (or `TRIES_PER_QUESTION * n` chunks were
    tried), add the unanswerable ones, split off the held-out part and store the set."""
    from localrag.adapter.registry import Registry

    if n < 1:
        raise UsageError("--n must be at least 1")
    name = check_name(name or default_name())
    store = assistant.store
    if store.evaluations.set_info(name) is not None:
        raise UsageError(f"a question set named {name!r} exists; choose another --name")
    ids = store.chunk_ids()
    if not ids:
        raise UsageError("the vault holds no documents yet; add some with `localrag add PATH`")
    rng = random.Random(seed)
    rng.shuffle(ids)
    # The base model writes the questions: an answer adapter is trained to answer, not to ask.
    ref = "base" if Registry(store).active is not None else None
    generator = assistant.models.generator(ref)
    kept: list[tuple[str, str, Chunk]] = []
    seen: set[str] = set()
    tried = by_rule = 0
    for chunk_id in ids:
        if len(kept) >= n or tried >= TRIES_PER_QUESTION * n:
            break
        chunk = store.chunks([chunk_id])[0]
        if len(chunk.text.split()) < MIN_CHUNK_WORDS:
            continue
        tried += 1
        pair = propose(generator, chunk.text)
        asked_back = pair is None or not acceptable(*pair, chunk.text)
        if asked_back:
            pair = in_place.question(chunk.text, rng, spoken=chunk.span.start_s is not None)
        if pair is not None and acceptable(*pair, chunk.text) and normalize(pair[0]) not in seen:
            seen.add(normalize(pair[0]))
            kept.append((pair[0], pair[1], chunk))
            by_rule += asked_back
        yield MakeProgress(tried, len(kept), n)
    if not kept:
        raise UsageError(
            f"no question could be made from the {tried} chunks tried: none of the model's "
            "proposals passed the check (a question, and a short answer found in its text), and "
            "no sentence could be asked back; try a larger --n, or a bigger model "
            "(`localrag models add`)"
        )
    items = _items(kept, store, rng)
    meta = {
        "model": generator.name,
        "adapter": getattr(generator, "adapter", None),
        "chunks_tried": tried,
        "asked_back": by_rule,
        "seed": seed,
        "unanswerable": "a kept question about a made-up name absent from the vault",
    }
    yield MakeProgress(tried, len(kept), n, store.evaluations.save_set(name, items, meta))


def _items(kept: Sequence[tuple[str, str, Chunk]], store: Any, rng: random.Random) -> list[QaItem]:
    chunks = sorted({c.id for _, _, c in kept})
    rng.shuffle(chunks)
    held = set(chunks[: round(HELD_OUT * len(chunks))] if len(chunks) > 1 else [])
    items = [QaItem(q, (a,), "answerable", c.doc_id, c.id, c.id in held) for q, a, c in kept]
    names = [m for m in MADE_UP_NAMES if not store.keyword(m.lower().split(), 1)]
    wanted = max(1, round(UNANSWERABLE_SHARE * len(kept)))
    for q, _, c in rng.sample(list(kept), len(kept)):
        if len(items) - len(kept) >= wanted or not names:
            break
        made = unanswerable(q, c.text, names[(len(items) - len(kept)) % len(names)])
        if made is not None:
            items.append(QaItem(made, (), "unanswerable", c.doc_id, c.id, c.id in held))
    return items


# -- the commands -----------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    from localrag.cli.common import add_json, add_passphrase_file

    p = sub.add_parser("make-qa", help="make a question set from your vault, kept in the vault")
    p.add_argument("--n", type=int, default=20, help="answerable questions wanted (default 20)")
    p.add_argument("--name", help="the set's name (default: vault-DATE-TIME)")
    p.add_argument("--seed", type=int, default=0, help="fixes which chunks are sampled")
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_make)
    p = sub.add_parser("sets", help="the question sets made from your vault")
    p.add_argument("--delete", metavar="NAME", help="delete this set")
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_sets)


def run_make(args: argparse.Namespace) -> int:
    from localrag.cli.common import open_assistant, print_json
    from localrag.evaluate.progress import progress_bar

    with open_assistant(args) as assistant:
        events = assistant.make_qa(args.n, args.name, seed=args.seed)
        stored = None
        with progress_bar("making questions", args.n) as update:
            for event in events:
                update(event.kept)
                stored = event.stored or stored
    assert stored is not None
    if args.json:
        print_json(stored)
        return 0
    print(
        f"stored question set {stored.name}: {stored.counts()}; "
        f"compare with `localrag eval compare --set {stored.name}`"
    )
    return 0


def run_sets(args: argparse.Namespace) -> int:
    from localrag.cli.common import open_assistant, print_json
    from localrag.display import visible

    with open_assistant(args) as assistant:
        if args.delete:
            assistant.delete_qa_set(args.delete)
            print(f"deleted question set {args.delete}")
            return 0
        sets = assistant.qa_sets()
    if args.json:
        print_json(sets)
        return 0
    if not sets:
        print("no question sets yet; make one with `localrag eval make-qa`")
    for s in sets:
        made = visible(str(s.meta.get("model")))
        if s.asked_back:
            made += f", {s.asked_back} asked back"
        print(
            f"{visible(s.name):<28} {s.questions:>4} questions  {s.unanswerable:>3} unanswerable"
            f"  {s.held_out:>3} held out  {s.created_at}  ({made})"
        )
    return 0
