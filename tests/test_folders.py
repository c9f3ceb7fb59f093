"""Watched folders: `folders add/rm`, `sync` and `watch` keep the vault in line with the disk."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from localrag import ignore
from localrag.cli import main
from localrag.folders import Debounce, Folder, scan
from localrag.records import IngestEvent
from localrag.service import Assistant
from localrag.settings import Settings


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def paths(result: dict, status: str) -> list[str]:
    return sorted(Path(r["path"]).name for r in result[status])


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/down/a.log", False, True),
        ("/*.log", "deep/a.log", False, False),
        ("build/", "build", True, True),
        ("build/", "build", False, False),
        ("docs/*.md", "docs/a.md", False, True),
        ("docs/*.md", "docs/sub/a.md", False, False),
        ("docs/**/*.md", "docs/sub/x/a.md", False, True),
        ("**/tmp", "a/b/tmp", True, True),
        ("secret?.txt", "secret1.txt", False, True),
        ("[ab].txt", "c.txt", False, False),
        ("# comment", "# comment", False, False),
    ],
)
def test_ignore_patterns_follow_gitignore(
    pattern: str, path: str, is_dir: bool, expected: bool
) -> None:
    assert ignore.ignored(ignore.parse([pattern]), path, is_dir) is expected


def test_the_last_matching_rule_wins_and_nested_files_are_relative() -> None:
    rules = ignore.parse(["*.txt", "!keep.txt"]) + ignore.parse(["/local.txt"], base="sub")
    assert ignore.ignored(rules, "a.txt", False)
    assert not ignore.ignored(rules, "keep.txt", False)
    assert not ignore.ignored(rules, "sub/keep.txt", False)
    assert ignore.ignored(ignore.parse(["/local.txt"], base="sub"), "sub/local.txt", False)
    assert not ignore.ignored(ignore.parse(["/local.txt"], base="sub"), "local.txt", False)


def test_a_scan_leaves_out_hidden_ignored_unreadable_formats_and_the_home(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    home = root / "localrag-home"
    for name in ("a.md", "skip.log", "drafts/b.md", "sub/c.txt", "sub/d.txt", ".hidden/e.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("text", encoding="utf-8")
    home.mkdir()
    (home / "notes.md").write_text("the vault's own", encoding="utf-8")
    (root / "code.py").write_text("print()", encoding="utf-8")
    (root / ".gitignore").write_text("*.log\n", encoding="utf-8")
    (root / "sub" / ".localragignore").write_text("d.txt\n", encoding="utf-8")
    found = scan(Folder(str(root), ("drafts/",)), home)
    assert [p.relative_to(root).as_posix() for p in found.files] == ["a.md", "sub/c.txt"]
    assert found.unsupported == 1
    assert {Path(p).name for p, _, _ in found.state} >= {".gitignore", ".localragignore"}


def test_a_burst_of_changes_is_synced_once_after_it_settles() -> None:
    debounce = Debounce(quiet=1.0, seen="v0")
    assert not debounce.due("v0", 0.0)  # nothing changed
    due = [debounce.due(f"v{i}", 10.0 + i * 0.3) for i in range(1, 6)]  # five saves in 1.5 s
    assert due == [False] * 5
    assert not debounce.due("v5", 11.5)  # still settling
    assert debounce.due("v5", 12.6)
    assert not debounce.due("v5", 20.0)  # once


@pytest.mark.usefixtures("vault", "hashing")
def test_sync_follows_added_changed_moved_deleted_and_ignored_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "tea.md").write_text("Green tea steeps for two minutes.", encoding="utf-8")
    (docs / "sub" / "lathe.txt").write_text("The lathe needs oil on Tuesdays.", encoding="utf-8")
    (docs / "gone.txt").write_text("The old policy said ten days.", encoding="utf-8")
    (docs / "skip.log").write_text("a log line", encoding="utf-8")
    code, first = run_json(capsys, "folders", "add", str(docs), "--ignore", "*.log")
    assert code == 0 and paths(first, "added") == ["gone.txt", "lathe.txt", "tea.md"]
    code, listed = run_json(capsys, "folders")
    assert listed == [{"path": str(docs.resolve()), "ignore": ["*.log"]}]

    (docs / "tea.md").write_text("Green tea steeps for three minutes.", encoding="utf-8")
    (docs / "sub" / "lathe.txt").rename(docs / "lathe.txt")
    (docs / "gone.txt").unlink()
    (docs / "new.txt").write_text("The kettle is blue.", encoding="utf-8")
    code, result = run_json(capsys, "sync")
    assert code == 0
    assert paths(result, "added") == ["new.txt"]
    assert paths(result, "updated") == ["tea.md"]
    assert paths(result, "moved") == ["lathe.txt"]
    assert result["moved"][0]["from"] == str((docs / "sub" / "lathe.txt").resolve())
    assert paths(result, "removed") == ["gone.txt"]
    code, hits = run_json(capsys, "search", "old policy ten days", "--mode", "keyword")
    assert all(Path(h["path"]).name != "gone.txt" for h in hits)

    (docs / ".gitignore").write_text("new.txt\n", encoding="utf-8")
    code, result = run_json(capsys, "sync")
    assert paths(result, "removed") == ["new.txt"] and paths(result, "unchanged") == [
        "lathe.txt",
        "tea.md",
    ]
    code, again = run_json(capsys, "sync")
    assert not again["added"] + again["updated"] + again["moved"] + again["removed"]


@pytest.mark.usefixtures("vault", "hashing")
def test_a_missing_folder_keeps_its_documents_and_rm_forget_deletes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "usb"
    docs.mkdir()
    (docs / "a.txt").write_text("Backups run at night.", encoding="utf-8")
    assert main(["folders", "add", str(docs)]) == 0
    capsys.readouterr()
    docs.rename(tmp_path / "unplugged")
    code, result = run_json(capsys, "sync")
    assert code != 0 and "watched folder is missing" in result["failed"][0]["reason"]
    assert not result["removed"]
    code, listed = run_json(capsys, "docs")
    assert len(listed) == 1
    code, result = run_json(capsys, "folders", "rm", str(docs), "--forget")
    assert result["documents_removed"] == 1
    code, listed = run_json(capsys, "docs")
    assert listed == []
    assert main(["folders", "add", str(tmp_path / "nowhere")]) != 0
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.usefixtures("vault", "hashing")
def test_watch_indexes_a_burst_of_saves_once_and_a_deletion(
    tmp_path: Path, settings: Settings
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.md").write_text("Indexed when the watch starts.", encoding="utf-8")
    stop = threading.Event()
    events: list[IngestEvent] = []
    with Assistant.open(settings, bytearray(b"correct horse")) as assistant:
        assistant.watch_folder(docs)

        def run() -> None:
            for e in assistant.watch(stop, interval=0.2, quiet=0.6):
                if e.final and e.status != "unchanged":
                    events.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            _wait_for(events, "added")  # the first sync, before anything changes
            note = docs / "note.md"
            for i in range(5):
                with note.open("a", encoding="utf-8") as f:
                    f.write(f"Save number {i} of the meeting notes.\n")
                time.sleep(0.05)
            _wait_for(events, "added", count=2)
            note.unlink()
            _wait_for(events, "removed")
        finally:
            stop.set()
            thread.join(timeout=30)
        left = [Path(d.path).name for d in assistant.documents()]
    assert [(e.status, Path(e.path).name) for e in events] == [
        ("added", "first.md"),
        ("added", "note.md"),
        ("removed", "note.md"),
    ]
    assert left == ["first.md"]


def _wait_for(
    events: list[IngestEvent], status: str, count: int = 1, timeout: float = 60.0
) -> None:
    end = time.monotonic() + timeout
    while sum(e.status == status for e in events) < count:
        assert time.monotonic() < end, f"no {status} event within {timeout} s: {events}"
        time.sleep(0.1)
