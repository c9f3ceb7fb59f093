"""`localrag speakers DOC` lists who speaks in a recording; `localrag speakers rename DOC
"Speaker 2" Dana` names them. Also the `--speakers N` / `--no-speakers` options of `add` and
`transcribe`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from localrag.cli import common
from localrag.display import clock, one_line
from localrag.errors import UsageError

if TYPE_CHECKING:
    from localrag.speakers import SpeakerChoice, SpeakerFinder

USAGE = "localrag speakers DOC [--json]  |  localrag speakers rename DOC SPEAKER NAME"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speakers",
        help="list the speakers of a recording, or rename one",
        usage=USAGE,
        description="List who speaks in a recording (by document id or path) with their talk "
        'time and turns; `rename DOC "Speaker 2" Dana` gives one a name that citations, the '
        "transcript and search use.",
    )
    p.add_argument("words", nargs="+", metavar="DOC | rename DOC SPEAKER NAME")
    common.add_passphrase_file(p)
    common.add_json(p)
    p.set_defaults(func=run)


def add_speaker_options(p: argparse.ArgumentParser) -> None:
    """`--speakers N` and `--no-speakers` for a command that takes recordings."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--speakers",
        type=int,
        metavar="N",
        help="the recording has N speakers (default: found from the voices)",
    )
    group.add_argument(
        "--no-speakers",
        action="store_true",
        help="do not tell speakers apart (config.toml: speakers = false for always)",
    )


def speaker_choice(args: argparse.Namespace) -> SpeakerChoice | None:
    """What `--speakers`/`--no-speakers` ask for; None: what the settings say."""
    from localrag.speakers import SpeakerChoice

    if getattr(args, "no_speakers", False):
        return SpeakerChoice(enabled=False)
    count = getattr(args, "speakers", None)
    if count is None:
        return None
    if count < 1:
        raise UsageError("--speakers must be at least 1")
    return SpeakerChoice(enabled=True, count=count)


def run(args: argparse.Namespace) -> int:
    words = args.words
    if words[0] == "rename" and len(words) == 4:
        return _rename(args, *words[1:])
    if len(words) != 1:
        raise UsageError(f"usage: {USAGE}")
    with common.open_assistant(args) as assistant:
        doc = assistant.store.document(words[0])
        speakers = assistant.speakers(words[0])
    path = doc.path if doc else words[0]
    if args.json:
        common.print_json({"path": path, "speakers": speakers})
        return 0
    if not speakers:
        why = "one voice, no speech, or added with --no-speakers"
        print(f"{one_line(path)}: no speakers told apart ({why})")
        return 0
    print(f"{one_line(path)}: {len(speakers)} speaker{'s' if len(speakers) != 1 else ''}")
    width = max(len(one_line(s.name)) for s in speakers)
    for s in speakers:
        turns = f"{s.turns} turn{'s' if s.turns != 1 else ''}"
        print(f"  {one_line(s.name):<{width}}  {clock(s.talk_s)} talking, {turns}")
    return 0


def _rename(args: argparse.Namespace, doc: str, speaker: str, name: str) -> int:
    with common.open_assistant(args) as assistant:
        changed = assistant.rename_speaker(doc, speaker, name)
    if args.json:
        common.print_json({"doc": doc, "speaker": speaker, "name": name, "chunks": changed})
    else:
        print(f"{one_line(speaker)} is now {one_line(name)} ({changed} passages re-indexed)")
    return 0


def speakers_expected(args: argparse.Namespace) -> bool:
    """Whether this `transcribe` run will tell speakers apart."""
    if not hasattr(args, "no_speakers"):
        return False  # a command without the options (record): never
    choice = speaker_choice(args)
    return choice.enabled if choice is not None else common.settings(args).speakers


def finder(args: argparse.Namespace) -> SpeakerFinder | None:
    """`transcribe --no-index`: what tells speakers apart as the options ask, as the vault path
    has; None when they are not wanted."""
    from localrag import speakers

    if not speakers_expected(args):
        return None
    choice = speaker_choice(args)
    settings = common.settings(args)
    count = choice.count if choice else None
    return speakers.SpeakerFinder(lambda: speakers.build_embedder(settings), count)
