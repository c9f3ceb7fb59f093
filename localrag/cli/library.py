"""`localrag add`, `docs`, `rm` and `search`: the documents in the vault."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.cli.common import (
    add_json,
    add_passphrase_file,
    human_size,
    open_assistant,
    print_json,
    settings,
)
from localrag.cli.speakers import add_speaker_options, speaker_choice
from localrag.display import SKIPS_NAMED, one_line, rate_and_eta, skipped_summary, visible
from localrag.errors import IngestError, LocalragError
from localrag.records import Hit, IngestEvent
from localrag.retrieve import MODES
from localrag.store.conversations import HISTORY_CHOICES

if TYPE_CHECKING:  # rich costs a fresh `localrag search` about 50 ms it does not need
    from rich.console import Console
    from rich.progress import TaskID

FINAL = ("added", "updated", "unchanged", "moved", "removed", "failed", "skipped")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add", help="add files and folders (text, md, html, pdf, docx, images, audio)"
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_speaker_options(p)
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_add)

    p = sub.add_parser("docs", help="list the documents in the vault")
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_docs)

    p = sub.add_parser("rm", help="delete documents completely, by id or path")
    p.add_argument("refs", nargs="+", metavar="ID|PATH")
    p.add_argument(
        "--history",
        choices=HISTORY_CHOICES,
        default="scrub",
        help="what happens to conversation turns that quote or cite the document: "
        "scrub their text and citations (default) or delete them",
    )
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_rm)

    p = sub.add_parser("search", help="search the documents (no model answer)")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    p.add_argument("--mode", choices=MODES, default="hybrid")
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_search)


def _sizes(paths: list[Path]) -> dict[str, int]:
    from localrag.ingest.pipeline import expand

    return {
        str(path.resolve()): path.stat().st_size
        for path, problem in expand(paths)
        if problem is None
    }


class _Bar:
    """Files, chunks, chunks per second and time left (by bytes) on stderr; while a recording
    is transcribed, a row of its own with the share of its audio done and the real-time factor
    (its bytes say nothing about how long it takes)."""

    def __init__(self, console: Console, sizes: dict[str, int], enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.sizes = sizes
        self.done_bytes = 0
        self.files = 0
        self.chunks = 0
        self.started = time.perf_counter()
        columns = (
            TextColumn("{task.fields[count]}"),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            TextColumn("{task.description}", markup=False),
        )
        self.progress = Progress(*columns, console=console, transient=True, disable=not enabled)
        self.task = self.progress.add_task(
            "", total=max(sum(sizes.values()), 1), count=self._count(), stats=""
        )
        self.recording: TaskID | None = None

    def _count(self) -> str:
        return f"{self.files}/{len(self.sizes)} files"

    def update(self, e: IngestEvent) -> None:
        if e.rtf is not None:
            self._recording(e)
        elif e.final and self.recording is not None:
            self.progress.remove_task(self.recording)
            self.recording = None
        size = self.sizes.get(e.path, 0)
        if e.final:
            self.files += e.status not in ("skipped", "removed")
            self.done_bytes += size
            if e.status in ("added", "updated"):
                self.chunks += e.chunks_total
            at = self.done_bytes
        elif e.chunks_total:
            at = self.done_bytes + int(size * (0.5 + 0.5 * e.chunks_done / e.chunks_total))
        elif e.rtf is None:
            at = self.done_bytes + int(size * 0.5 * (e.fraction or 0.0))
        else:
            at = self.done_bytes  # the recording's own row shows how far it got
        running = self.chunks + (e.chunks_done if not e.final else 0)
        rate = running / max(time.perf_counter() - self.started, 1e-6)
        self.progress.update(
            self.task,
            completed=at,
            count=self._count(),
            stats=f"{running} chunks, {rate:.1f} chunks/s",
            description=one_line(Path(e.path).name),
        )

    def _recording(self, e: IngestEvent) -> None:
        done = e.fraction or 0.0
        stats = ", ".join(filter(None, [f"{done:.0%} of the audio", rate_and_eta(e.rtf, e.eta_s)]))
        if self.recording is None:
            self.recording = self.progress.add_task(
                one_line(Path(e.path).name), total=1.0, count="transcribing", stats=stats
            )
        self.progress.update(self.recording, completed=done, stats=stats)


def run_add(args: argparse.Namespace) -> int:
    from localrag.cli.reembed import pending_note

    with open_assistant(args) as assistant:
        events = assistant.add(args.paths, speakers=speaker_choice(args))
        code = report_ingest(args, events, _sizes(args.paths))
        # Added with the embedder of the vault's vectors: the switch re-embeds them too.
        note = pending_note(assistant)
    if note and not args.json:
        print(note, file=sys.stderr)
    return code


def report_ingest(
    args: argparse.Namespace, events: Iterable[IngestEvent], sizes: dict[str, int]
) -> int:
    """Show the progress of `add` or `sync` on stderr, one line per failed file, then a summary
    (or, with --json, every file's outcome); the exit code says whether a file failed."""
    from rich.console import Console

    console = Console(stderr=True)

    def say(line: str) -> None:
        if not args.json:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    results: dict[str, list[dict[str, Any]]] = {status: [] for status in FINAL}
    started = time.perf_counter()
    bar = _Bar(console, sizes, enabled=not args.json)
    with bar.progress:
        for e in events:
            bar.update(e)
            if not e.final:
                continue
            entry: dict[str, Any] = {"path": e.path}
            if e.status in ("failed", "skipped"):
                entry["reason"] = e.detail
                if e.status == "failed":
                    say(f"failed: {visible(e.detail or '')}")
            else:
                entry["doc_id"] = e.doc_id
            if e.status in ("added", "updated"):
                entry["chunks"] = e.chunks_total
                if e.detail:  # a notice, e.g. a recording with no speech
                    entry["notice"] = e.detail
                    say(f"{one_line(e.path)}: {visible(e.detail)}")
            if e.status == "moved":
                entry["from"] = e.detail
            results[e.status].append(entry)
    elapsed = time.perf_counter() - started
    for line in _skipped_lines(results["skipped"]):
        say(line)
    if args.json:
        print_json({**results, "elapsed_s": round(elapsed, 2)})
    else:
        chunks = sum(r.get("chunks", 0) for r in results["added"] + results["updated"])
        counts = ", ".join(f"{len(results[s])} {s}" for s in FINAL if results[s] or s == "added")
        print(f"{counts}; {chunks} chunks in {elapsed:.1f} s")
    return IngestError.exit_code if results["failed"] else 0


def _skipped_lines(skipped: list[dict[str, Any]]) -> list[str]:
    if len(skipped) <= SKIPS_NAMED:
        return [f"skipped: {visible(s['reason'] or '')}" for s in skipped]
    return [f"skipped {skipped_summary([s['path'] for s in skipped])}; --json lists them"]


def run_docs(args: argparse.Namespace) -> int:
    with open_assistant(args) as assistant:
        docs = assistant.documents()
    if args.json:
        print_json(docs)
        return 0
    for d in docs:
        when = d.added_at[:16].replace("T", " ")
        size = human_size(d.size_bytes)
        path = one_line(d.path)
        print(f"{d.id:>5}  {d.kind:<5} {d.chunk_count:>5} chunks {size:>9}  {when}  {path}")
    if not docs:
        print("no documents yet; add some with `localrag add PATH`", file=sys.stderr)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    removed, failed = [], []
    with open_assistant(args) as assistant:
        for ref in args.refs:
            try:
                doc = assistant.remove(ref, history=args.history)
            except LocalragError as exc:
                failed.append({"ref": ref, "reason": exc.message})
                if not args.json:
                    print(f"localrag: {visible(exc.message)}", file=sys.stderr)
                continue
            removed.append({"doc_id": doc.id, "path": doc.path})
            if not args.json:
                print(f"removed {doc.id} {one_line(doc.path)}")
    if args.json:
        print_json({"removed": removed, "failed": failed})
    return 1 if failed else 0


def hit_dict(hit: Hit) -> dict[str, Any]:
    c, s = hit.chunk, hit.chunk.span
    return {
        "doc_id": c.doc_id,
        "path": c.path,
        "chunk_id": c.id,
        "score": round(hit.score, 6),
        "text": c.text,
        "page": s.page,
        "line_start": s.line_start,
        "line_end": s.line_end,
        "heading": s.heading,
        "start_s": s.start_s,
        "end_s": s.end_s,
        "speaker": s.speaker,
    }


def where(hit: Hit) -> str:
    """`path, p. 3, lines 4-9` or `path @ 01:02–01:30`: how a hit's place is shown."""
    s = hit.chunk.span
    parts = [one_line(hit.chunk.path)]
    if s.page is not None:
        parts.append(f"p. {s.page}")
    if s.line_start is not None:
        parts.append(f"lines {s.line_start}-{s.line_end}")
    text = ", ".join(parts)
    if s.start_s is not None:
        text += f" @ {_clock(s.start_s)}–{_clock(s.end_s or s.start_s)}"
    if s.speaker:
        text += f", {one_line(s.speaker)}"
    return text


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m:02d}:{s:02d}"


def run_search(args: argparse.Namespace) -> int:
    from localrag import embed

    query = " ".join(args.query)
    # The embedder starts and embeds the query in a thread while the passphrase unlocks the
    # vault (both wait in C code that lets the other run); keyword search needs none.
    parts = {}
    if args.mode != "keyword":
        parts["embedder"] = embed.preload_for_query(settings(args), query)
    try:
        with open_assistant(args, **parts) as assistant:
            hits = assistant.search(query, k=args.k, mode=args.mode)
    finally:
        for part in parts.values():
            part.close()  # never leave the loading thread running into interpreter shutdown
    if args.json:
        print_json([hit_dict(h) for h in hits])
        return 0
    for n, h in enumerate(hits, start=1):
        print(f"{n:>2}. {h.score:.4f}  {where(h)}")
        if h.chunk.span.heading and not h.chunk.span.speaker:  # a speaker's is in where()
            print(f"    § {one_line(h.chunk.span.heading)}")
        text = one_line(" ".join(h.chunk.text.split()))
        print(f"    {text[:240]}{'…' if len(text) > 240 else ''}")
    if not hits:
        print("no matches", file=sys.stderr)
    return 0
