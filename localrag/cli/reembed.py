"""`localrag reembed`: switch the vault to the active embedder, or resume the switch."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from localrag.cli.common import add_json, add_passphrase_file, open_assistant, print_json
from localrag.display import one_line
from localrag.errors import UsageError
from localrag.records import EmbedderInfo, ReembedProgress

if TYPE_CHECKING:
    from localrag.service import Assistant

INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reembed",
        help="re-embed the vault with the active embedder (resumes an interrupted switch)",
    )
    add_batch(p)
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run)


def add_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch",
        type=_positive,
        default=None,
        metavar="N",
        help="chunks stored per transaction (a kill loses at most these; default 128)",
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    with open_assistant(args) as assistant:
        return switch(args, assistant)


def switch(args: argparse.Namespace, assistant: Assistant) -> int:
    """Re-embed with the settings' embedder, with a progress bar on stderr; Ctrl-C keeps every
    finished batch and says how to go on."""
    from rich.console import Console

    console = Console(stderr=True)
    old = assistant.embedder_info()
    last: ReembedProgress | None = None
    try:
        last = _follow(assistant.reembed(batch_chunks=args.batch), console, old, args.json)
    except KeyboardInterrupt:
        pending = assistant.embedder_switch()
        done = f"{pending.chunks_done} of {pending.chunks_total}" if pending else "no"
        if args.json:
            print_json({"status": "interrupted", **_counts(pending)})
        else:
            console.print(
                f"interrupted: {done} chunks re-embedded and kept; `localrag reembed` goes on"
                f"{_meanwhile(old)}",
                markup=False,
                highlight=False,
            )
        return INTERRUPTED
    if last is None:  # the generator always yields; a guard for the type checker
        raise UsageError("nothing to re-embed")
    if args.json:
        print_json(
            {
                "status": last.status,
                "embedder": last.to,
                "cancelled": last.cancelled,
                "chunks_done": last.chunks_done,
                "chunks_total": last.chunks_total,
                "elapsed_s": round(last.elapsed_s, 2),
                "chunks_per_s": round(last.chunks_per_s, 1),
            }
        )
    else:
        print(_summary(last))
    return 0


def _follow(
    events: Iterable[ReembedProgress], console: Any, old: EmbedderInfo | None, quiet: bool
) -> ReembedProgress | None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks {task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    last = None
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = None
        for last in events:
            if last.status == "started":
                if not quiet:
                    console.print(
                        f"re-embedding {last.chunks_total - last.chunks_done} chunks with"
                        f" {one_line(last.to.name)}{_meanwhile(old)}",
                        markup=False,
                        highlight=False,
                    )
                task = bar.add_task(
                    f"embedder {last.to.name}",
                    total=last.chunks_total,
                    completed=last.chunks_done,
                    rate="",
                )
            elif task is not None:
                rate = f"{last.chunks_per_s:.0f}/s" if last.chunks_per_s else ""
                bar.update(task, completed=last.chunks_done, total=last.chunks_total, rate=rate)
    return last


def _meanwhile(old: EmbedderInfo | None) -> str:
    return f"; search uses {one_line(old.name)} until it is done" if old else ""


def _summary(last: ReembedProgress) -> str:
    name = one_line(last.to.name)
    if last.status == "done":
        return (
            f"the vault's vectors are now from {name}: {last.chunks_total} chunks,"
            f" {last.elapsed_s:.1f} s ({last.chunks_per_s:.0f} chunks/s)"
        )
    if last.status == "current":
        cancelled = "the switch under way was cancelled; " if last.cancelled else ""
        return f"{cancelled}the vault's vectors are already from {name}"
    return f"the vault has no vectors yet: {name} will make them"


def _counts(pending: Any) -> dict[str, int]:
    if pending is None:
        return {"chunks_done": 0, "chunks_total": 0}
    return {"chunks_done": pending.chunks_done, "chunks_total": pending.chunks_total}


def pending_note(assistant: Assistant) -> str | None:
    """A line for commands that write while a switch is under way, or None."""
    pending = assistant.embedder_switch()
    if pending is None:
        return None
    return (
        f"a switch to the embedder {one_line(pending.to.name)} is under way"
        f" ({pending.chunks_done} of {pending.chunks_total} chunks); `localrag reembed` finishes it"
    )
