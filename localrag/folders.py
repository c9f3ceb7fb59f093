"""Watched folders: registered in the vault, brought in line with the disk by `sync`, kept in line
by `watch`.

A sync adds new files, re-reads changed ones, follows moved ones (the pipeline finds a stored
document whose content reappears under a new path) and removes completely the documents of files
that are gone or now ignored. A folder that is missing (an unplugged drive) is reported and its
documents are kept. Hidden files and folders, the vault's own home, files of formats localrag
cannot read and what the ignore rules name (`ignore.py`) are left out.

Watching polls the folders' file sizes and modification times (portable, no watcher library) and
syncs once the changes have stopped for a moment, so a burst of saves is indexed once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from localrag import ignore, ingest
from localrag.errors import UsageError
from localrag.records import Document, IngestEvent

FOLDERS_META = "folders"


@dataclass(frozen=True)
class Folder:
    path: str
    """Absolute."""
    ignore: tuple[str, ...] = ()
    """Ignore patterns given when it was registered (besides its .gitignore files)."""


class FolderStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def documents(self) -> list[Document]: ...
    def delete_document(self, doc_id: int, history: str = "scrub") -> int: ...


def registered(store: FolderStore) -> list[Folder]:
    raw = store.get_meta(FOLDERS_META)
    return [Folder(f["path"], tuple(f.get("ignore", ()))) for f in json.loads(raw or "[]")]


def _save(store: FolderStore, folders: list[Folder]) -> None:
    value = [{"path": f.path, "ignore": list(f.ignore)} for f in folders]
    store.set_meta(FOLDERS_META, json.dumps(value))


def register(store: FolderStore, path: Path, patterns: list[str], home: Path) -> Folder:
    """Watch `path` (its ignore patterns replaced if it is watched already)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"{path}: not a folder; give the folder to watch")
    if _within(folder, home.resolve()):
        raise UsageError(f"{path}: this is inside localrag's own home; watch your files' folders")
    new = Folder(str(folder), tuple(patterns))
    _save(store, [f for f in registered(store) if f.path != new.path] + [new])
    return new


def unregister(store: FolderStore, path: Path | str, forget: bool = False) -> tuple[Folder, int]:
    """Stop watching a folder; with `forget`, also delete the documents under it. Returns the
    folder and how many documents were deleted."""
    given = str(Path(path).expanduser().resolve())
    folders = registered(store)
    match = next((f for f in folders if f.path in (given, str(path))), None)
    if match is None:
        raise UsageError(f"{path}: not a watched folder; see `localrag folders`")
    _save(store, [f for f in folders if f is not match])
    removed = 0
    if forget:
        for doc in store.documents():
            if _within(Path(doc.path), Path(match.path)):
                store.delete_document(doc.id)
                removed += 1
    return match, removed


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass
class Scan:
    """What a folder holds for the vault."""

    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One line per folder that could not be read."""
    unsupported: int = 0
    state: list[tuple[str, int, int]] = field(default_factory=list)
    """(path, size, mtime_ns) of every file that decides what is indexed (ignore files too):
    what `watch` compares."""


def scan(folder: Folder, home: Path) -> Scan:
    root = Path(folder.path)
    home = home.resolve()
    out = Scan()
    pending: list[tuple[Path, str, list[ignore.Rule]]] = [(root, "", ignore.parse(folder.ignore))]
    while pending:
        here, base, inherited = pending.pop()
        rules = inherited + ignore.rules_in(here, base)
        try:
            entries = list(os.scandir(here))
        except OSError as exc:
            out.problems.append(f"{here}: cannot read this folder ({exc.strerror or exc})")
            continue
        for entry in entries:
            relative = f"{base}/{entry.name}" if base else entry.name
            path = Path(entry.path)
            try:
                if entry.name in ignore.IGNORE_FILES:
                    stat = entry.stat()
                    out.state.append((entry.path, stat.st_size, stat.st_mtime_ns))
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if path.resolve() != home and not ignore.ignored(rules, relative, True):
                        pending.append((path, relative, rules))
                elif entry.is_file() and not ignore.ignored(rules, relative, False):
                    if ingest.format_of(path) is None:
                        out.unsupported += 1
                        continue
                    stat = entry.stat()
                    out.files.append(path)
                    out.state.append((entry.path, stat.st_size, stat.st_mtime_ns))
            except OSError:
                continue  # gone between the listing and the stat: the next scan sees it
    out.files.sort()
    return out


AddFiles = Callable[[list[Path]], Iterator[IngestEvent]]


def sync(store: FolderStore, add: AddFiles, home: Path) -> Iterator[IngestEvent]:
    """Bring the vault in line with every watched folder; events as `add`, plus "removed" for a
    document whose file is gone or now ignored."""
    present: list[Folder] = []
    wanted: list[Path] = []
    for folder in registered(store):
        if not Path(folder.path).is_dir():
            yield IngestEvent(
                folder.path,
                "failed",
                f"{folder.path}: the watched folder is missing; its documents are kept "
                "(stop watching it with `localrag folders rm`)",
            )
            continue
        found = scan(folder, home)
        for problem in found.problems:
            yield IngestEvent(folder.path, "failed", problem)
        present.append(folder)
        wanted += found.files
    yield from add(wanted)
    keep = {str(p.resolve()) for p in wanted}
    for doc in store.documents():
        if doc.path not in keep and any(_within(Path(doc.path), Path(f.path)) for f in present):
            store.delete_document(doc.id)
            yield IngestEvent(doc.path, "removed", doc_id=doc.id)


def state(store: FolderStore, home: Path) -> list[tuple[str, int, int]]:
    """Everything whose change calls for a sync, in one comparable value."""
    out: list[tuple[str, int, int]] = []
    for folder in registered(store):
        if Path(folder.path).is_dir():
            out += scan(folder, home).state
    return sorted(out)


class Debounce:
    """Says when to sync: once what it is shown has changed and then stayed the same for
    `quiet` seconds."""

    def __init__(self, quiet: float, seen: object) -> None:
        self.quiet = quiet
        self.seen = seen
        self.changed_at: float | None = None

    def due(self, current: object, now: float) -> bool:
        if current != self.seen:
            self.seen = current
            self.changed_at = now
            return False
        if self.changed_at is not None and now - self.changed_at >= self.quiet:
            self.changed_at = None
            return True
        return False


def watch(
    store: FolderStore,
    run_sync: Callable[[], Iterator[IngestEvent]],
    home: Path,
    stop: threading.Event,
    interval: float = 2.0,
    quiet: float = 1.0,
) -> Iterator[IngestEvent]:
    """Sync now, then again after each settled change, until `stop` is set."""
    debounce = Debounce(quiet, state(store, home))
    yield from run_sync()
    while not stop.wait(interval):
        if debounce.due(state(store, home), time.monotonic()):
            yield from run_sync()
