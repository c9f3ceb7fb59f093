"""`localrag ask`, `localrag chat` and `localrag history`: questions answered from the vault.

`ask` streams the answer to stdout, then lists its citations (`[n] path, page p, lines a-b`, or
`path @ mm:ss–mm:ss` for a recording); when the model found no answer in its sources, the
sentence of them closest to the question, quoted and cited, so the user can read it. `chat` is a
line-by-line conversation for scripts and SSH. `history` lists the stored conversations, or the
turns of one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from localrag.answer import Answer
from localrag.cli import common
from localrag.closest import Passage
from localrag.display import one_line, visible
from localrag.errors import UsageError
from localrag.prompt import locator
from localrag.records import Citation


def register(sub: argparse._SubParsersAction) -> None:
    ask = sub.add_parser("ask", help="answer a question from your documents, with citations")
    ask.add_argument("question", nargs="+", help="the question")
    _answer_options(ask)
    ask.add_argument(
        "--adapter", metavar="NAME", help="answer with this merged adapter version (NAME[@vN])"
    )
    ask.add_argument(
        "--runtime",
        action="store_true",
        help="with --adapter: apply the adapter to the base model at run time instead",
    )
    common.add_json(ask)
    common.add_passphrase_file(ask)
    ask.set_defaults(func=run_ask)

    chat = sub.add_parser("chat", help="a line-by-line conversation in the terminal")
    _answer_options(chat)
    common.add_passphrase_file(chat)
    chat.set_defaults(func=run_chat)

    history = sub.add_parser(
        "history", help="list stored conversations, show one (ID), or delete some (rm ID...)"
    )
    history.add_argument(
        "conversation", nargs="*", metavar="ID | rm ID...", help="show this conversation"
    )
    common.add_json(history)
    common.add_passphrase_file(history)
    history.set_defaults(func=run_history)


def _answer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-k", type=int, metavar="N", help="how many sources to give the model")
    parser.add_argument(
        "--no-retrieval",
        dest="retrieval",
        action="store_false",
        help="let the model answer alone, with no sources (the fine-tuned-only mode)",
    )
    parser.add_argument(
        "--conversation", type=int, metavar="ID", help="continue this stored conversation"
    )


def citation_line(c: Citation) -> str:
    """`[n] /full/path, page p, lines a-b`, or `[n] /full/path @ mm:ss–mm:ss`."""
    return f"[{c.n}] {one_line(locator(c.chunk, full_path=True))}"


def stream(answer: Answer, out: TextIO) -> None:
    """Print the answer as it comes, then its citations; Ctrl-C stops the model."""
    try:
        for piece in answer:
            out.write(visible(piece))
            out.flush()
    except KeyboardInterrupt:
        answer.cancel()
        out.write(" [stopped]")
    out.write("\n")
    if answer.citations:
        out.write("\n")
        for c in answer.citations:
            out.write(citation_line(c) + "\n")
    if answer.closest is not None:
        out.write("\n" + closest_lines(answer.closest))
    out.flush()


def closest_lines(p: Passage) -> str:
    """`Closest passage [n] /full/path, lines a-b:` and the quoted sentence under it."""
    where = one_line(locator(p.chunk, full_path=True))
    return f"Closest passage [{p.source.n}] {where}:\n  \u201c{one_line(p.text)}\u201d\n"


def run_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question)
    with common.open_assistant(args) as assistant:
        answer = assistant.ask(
            question,
            k=args.k,
            retrieval=args.retrieval,
            conversation_id=args.conversation,
            adapter=args.adapter,
            runtime_adapter=args.runtime,
        )
        if args.json:
            common.print_json(answer.to_dict())
        else:
            stream(answer, sys.stdout)
    return 0


def run_chat(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty()
    conversation = args.conversation
    with common.open_assistant(args) as assistant:
        if interactive:
            print("Ask a question; an empty line or Ctrl-D ends the chat.", file=sys.stderr)
        while True:
            if interactive:
                sys.stderr.write("> ")
                sys.stderr.flush()
            line = sys.stdin.readline()
            if not line.strip():
                break
            answer = assistant.ask(
                line.strip(), k=args.k, retrieval=args.retrieval, conversation_id=conversation
            )
            stream(answer, sys.stdout)
            conversation = answer.conversation_id
    if conversation is not None:
        print(f"conversation {conversation}", file=sys.stderr)
    return 0


def _ids(words: list[str]) -> list[int]:
    if not words or not all(w.isdigit() for w in words):
        raise UsageError("conversation ids are numbers: `localrag history [ID | rm ID...]`")
    return [int(w) for w in words]


def run_history(args: argparse.Namespace) -> int:
    words = list(args.conversation)
    deleting = bool(words) and words[0] == "rm"
    ids = _ids(words[1:] if deleting else words) if words else []
    if len(ids) > 1 and not deleting:
        raise UsageError("show one conversation at a time: `localrag history ID`")
    with common.open_assistant(args) as assistant:
        if deleting:
            for conversation_id in ids:
                assistant.delete_conversation(conversation_id)
            if args.json:
                common.print_json({"deleted": ids})
            else:
                print(
                    f"deleted conversation{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
                )
            return 0
        if ids:
            turns = assistant.turns(ids[0])
            if args.json:
                common.print_json(turns)
                return 0
            for t in turns:
                print(f"{t.role}: {visible(t.text)}")
                for c in t.citations:
                    place = f"{one_line(c.get('path'))}  {one_line(c.get('where', ''))}"
                    print(f"    [{c.get('n')}] {place}")
            return 0
        conversations = assistant.conversations()
        if args.json:
            common.print_json(conversations)
            return 0
        rows: list[Any] = conversations
        if not rows:
            print("no conversations yet; ask a question with `localrag ask`")
        for conv in rows:
            title = one_line(conv.title)
            print(f"{conv.id:>5}  {conv.updated_at[:16]}  {conv.turn_count:>3} turns  {title}")
    return 0
