"""Nothing printed to a terminal can drive it (../shared/security.md item 25): paths and text from
documents, models and recordings are shown with their control characters made visible, in the
CLI and in the app, and file names are never read as markup."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from localrag import embed, service
from localrag.cli import main
from localrag.cli.library import _Bar
from localrag.display import one_line, safe_json, visible
from localrag.embed import HashingEmbedder
from localrag.generate import EchoGenerator
from localrag.model_choice import FixedModel
from localrag.records import IngestEvent
from localrag.tui.file_progress import describe
from localrag.tui.sources import Source

RETITLE, CLEAR, CSI = "\x1b]0;owned\x07", "\x1b[2J", "\x9b31m"
DRIVERS = ("\x1b", "\x07", "\x9b", "\u202e")
"""Characters that must never reach the terminal raw."""


def _raw(text: str) -> list[str]:
    return [c for c in DRIVERS if c in text]


def test_control_characters_are_shown_not_obeyed() -> None:
    assert visible(f"a{RETITLE}b\nc\td") == "a\\x1b]0;owned\\x07b\nc\td"
    assert one_line(f"x{CLEAR}\ny\r") == "x\\x1b[2J\\ny\\r"
    assert one_line(f"{CSI}\u202etxt.exe") == "\\x9b31m\\u202etxt.exe"
    assert visible("Ünïcode, 日本語, emoji 🦫") == "Ünïcode, 日本語, emoji 🦫"
    text = f"{RETITLE}{CSI}\u202e\x7f ü"
    dumped = safe_json({"t": text})
    assert _raw(dumped) == [] and json.loads(dumped) == {"t": text}  # the data is unchanged


@pytest.fixture
def hostile_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A vault holding one document whose name and text carry terminal escapes."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse")
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    reply = f"The capybara {RETITLE}is large{CLEAR} [1]."
    echo = FixedModel(EchoGenerator(reply))
    monkeypatch.setattr(service, "WorkerModels", lambda settings, store: echo)
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = folder / f"notes{RETITLE}.txt"
    doc.write_text(
        f"# Heading {CSI}\n\nThe capybara {RETITLE}is the largest{CLEAR} rodent \u202e.\n",
        encoding="utf-8",
    )
    assert main(["init"]) == 0
    assert main(["add", str(folder)]) == 0
    capsys.readouterr()
    return doc


def test_the_cli_shows_escapes_from_documents_and_answers(
    hostile_vault: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = {}
    for argv in (
        ["search", "capybara rodent"],
        ["docs"],
        ["ask", "how large is the capybara?"],
        ["history"],
        ["history", "1"],
        ["search", "capybara", "--json"],
        ["rm", str(hostile_vault)],
    ):
        assert main(argv) == 0, argv
        out, err = capsys.readouterr()
        printed[" ".join(argv)] = out + err
    assert {argv: _raw(text) for argv, text in printed.items() if _raw(text)} == {}
    search = printed["search capybara rodent"]
    assert "notes\\x1b]0;owned\\x07.txt" in search and "\\x1b[2J" in search
    assert "\\x9b31m" in search  # the heading
    assert "is large\\x1b[2J" in printed["ask how large is the capybara?"]
    assert "\\x1b]0;owned" in printed["history 1"]
    hits = json.loads(printed["search capybara --json"])
    assert RETITLE in hits[0]["text"]  # JSON keeps the data itself, escaped for the terminal


def test_a_file_name_is_never_read_as_markup_in_the_progress_bar() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    name = f"/in/notes [bold]x[red] {CLEAR}.txt"
    bar = _Bar(console, {name: 100}, enabled=True)
    bar.update(IngestEvent(name, "progress", fraction=0.5))
    console.print(bar.progress.get_renderable())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "notes [bold]x[red] \\x1b[2J.txt" in shown


def test_the_app_shows_escapes_in_sources_and_file_rows() -> None:
    source = Source(1, 7, f"/d/a{RETITLE}.pdf", f"a{RETITLE}.pdf, page 2", score=0.5)
    assert _raw(source.label()) == [] and "\\x1b]0;owned" in source.label()
    failed = IngestEvent(f"/d/x{CLEAR}.pdf", "failed", detail=f"/d/x{CLEAR}.pdf: bad {CSI}")
    assert _raw(describe(failed)) == [] and "\\x9b31m" in describe(failed)
