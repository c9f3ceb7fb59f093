"""`localrag folders`, `sync` and `watch`: folders the vault keeps in line with the disk."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from localrag.cli.common import add_json, add_passphrase_file, open_assistant, print_json
from localrag.cli.library import report_ingest
from localrag.display import one_line, safe_json, visible

if TYPE_CHECKING:
    from localrag.service import Assistant

NO_FOLDERS = "no watched folders; add one with `localrag folders add DIR`"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("folders", help="list, add or remove the folders the vault keeps in sync")
    actions = p.add_subparsers(dest="folders_action", metavar="ACTION")
    add = actions.add_parser("add", help="watch a folder and index it now")
    add.add_argument("folder", type=Path)
    add.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="PATTERN",
        help=".gitignore-style pattern to leave out (repeatable; the folder's .gitignore and "
        ".localragignore files count too)",
    )
    add.add_argument("--no-sync", action="store_true", help="register only; index with `sync`")
    rm = actions.add_parser("rm", help="stop watching a folder (its documents stay)")
    rm.add_argument("folder")
    rm.add_argument("--forget", action="store_true", help="also delete its documents")
    for parser in (p, add, rm):
        add_passphrase_file(parser)
        add_json(parser)
    p.set_defaults(func=run_folders)

    p = sub.add_parser(
        "sync", help="bring the vault in line with the watched folders (new, changed, gone)"
    )
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_sync)

    p = sub.add_parser("watch", help="keep the watched folders in sync until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks (default 2)")
    p.add_argument(
        "--quiet",
        type=float,
        default=1.0,
        help="seconds a change must settle before it is indexed (default 1)",
    )
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=run_watch)


def _sizes(assistant: Assistant) -> dict[str, int]:
    from localrag.folders import scan

    sizes = {}
    for folder in assistant.folders():
        if Path(folder.path).is_dir():
            for path in scan(folder, assistant.settings.home).files:
                sizes[str(path.resolve())] = path.stat().st_size
    return sizes


def run_folders(args: argparse.Namespace) -> int:
    with open_assistant(args) as assistant:
        if args.folders_action == "add":
            folder = assistant.watch_folder(args.folder, args.ignore)
            if not args.json:
                print(f"watching {one_line(folder.path)}", file=sys.stderr)
            if args.no_sync:
                if args.json:
                    print_json({"watching": folder})
                return 0
            return report_ingest(args, assistant.sync(), _sizes(assistant))
        if args.folders_action == "rm":
            folder, removed = assistant.unwatch_folder(args.folder, forget=args.forget)
            if args.json:
                print_json({"unwatched": folder, "documents_removed": removed})
            else:
                kept = f"{removed} documents removed" if args.forget else "its documents stay"
                print(f"stopped watching {one_line(folder.path)}; {kept}")
            return 0
        folders = assistant.folders()
    if args.json:
        print_json(folders)
    for f in [] if args.json else folders:
        rules = f"  (ignoring {', '.join(f.ignore)})" if f.ignore else ""
        print(f"{one_line(f.path)}{visible(rules)}")
    if not folders and not args.json:
        print(NO_FOLDERS, file=sys.stderr)
    return 0


def run_sync(args: argparse.Namespace) -> int:
    with open_assistant(args) as assistant:
        if not assistant.folders():
            print(NO_FOLDERS, file=sys.stderr)
            return 0
        return report_ingest(args, assistant.sync(), _sizes(assistant))


def run_watch(args: argparse.Namespace) -> int:
    stop = threading.Event()
    with open_assistant(args) as assistant:
        if not assistant.folders():
            print(NO_FOLDERS, file=sys.stderr)
            return 1
        if not args.json:
            names = ", ".join(one_line(f.path) for f in assistant.folders())
            print(f"watching {names}; Ctrl-C to stop", file=sys.stderr)
        try:
            for e in assistant.watch(stop, args.interval, args.quiet):
                if not e.final or e.status == "unchanged":
                    continue
                if args.json:  # one line per event, for a script reading as it comes
                    record = {"status": e.status, "path": e.path, "detail": e.detail}
                    print(safe_json(record), flush=True)
                else:
                    what = e.detail if e.status in ("failed", "skipped") else one_line(e.path)
                    print(f"{time.strftime('%H:%M:%S')} {e.status}: {visible(what)}", flush=True)
        except KeyboardInterrupt:
            stop.set()
            if not args.json:
                print("stopped watching", file=sys.stderr)
    return 0
