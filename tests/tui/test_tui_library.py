"""Library: add a file and watch its progress to completion; delete one after confirming."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import ProgressBar
from tui_fakes import FakeAssistant
from tui_helpers import SIZE, names, notifications, screen_text, table, wait_until

from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.file_progress import FileProgress
from localrag.tui.library import LibraryPane
from localrag.tui.main_screen import MainScreen

pytestmark = pytest.mark.anyio


async def open_library(pilot) -> None:
    await pilot.press("f2")
    await wait_until(pilot, lambda: table(pilot.app).row_count == len(pilot.app.assistant.docs))


async def test_library_lists_documents_with_kind_size_chunks_and_date(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        assert [str(c) for c in table(app).get_row_at(1)] == [
            "standup.flac",
            "audio",
            "2.0 MB",
            "3",
            "2026-11-25 09:00",
        ]


async def test_adding_a_file_shows_its_progress_then_the_document(
    app, assistant: FakeAssistant, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nThe launch code is blue.\n")
    assistant.release_ingest.clear()
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        await pilot.press("a", *str(tmp_path / "no"), "tab", "enter")
        await wait_until(pilot, lambda: app.screen.query(FileProgress))
        row = app.screen.query_one(FileProgress)
        await wait_until(pilot, lambda: row.query_one(ProgressBar).progress == 40)
        assert "1/3 chunks" in str(row.query_one(".file-status").render())
        assistant.release_ingest.set()
        await wait_until(pilot, lambda: "notes.md" in names(app), "the new document is listed")
        assert "added, 3 chunks" in str(row.query_one(".file-status").render())
        assert row.query_one(ProgressBar).progress == 100


async def test_a_recording_shows_its_transcription_and_real_time_factor(
    app, assistant: FakeAssistant, tmp_path: Path
) -> None:
    (tmp_path / "meeting.flac").write_bytes(b"fLaC")
    assistant.release_ingest.clear()
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        app.screen.query_one(LibraryPane).add([tmp_path / "meeting.flac"])
        await wait_until(pilot, lambda: app.screen.query(FileProgress))
        row = app.screen.query_one(FileProgress)
        status = row.query_one(".file-status")
        await wait_until(pilot, lambda: "transcribing" in str(status.render()))
        assert str(status.render()) == "transcribing 42 % · RTF 0.06"
        assert row.query_one(ProgressBar).progress == 42
        await pilot.pause()
        assert "transcribing 42 % · RTF 0.06" in screen_text(app)  # not cut off at 80 columns
        assistant.release_ingest.set()
        await wait_until(pilot, lambda: "meeting.flac" in names(app), "the recording is listed")
        assert str(status.render()) == "added, 3 chunks"
        assert row.query_one(ProgressBar).progress == 100


async def test_a_file_that_fails_is_reported_and_the_rest_goes_on(app, tmp_path: Path) -> None:
    (tmp_path / "broken.bad").write_bytes(b"\x00\x01")
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        app.screen.query_one(LibraryPane).add([tmp_path / "broken.bad"])
        await wait_until(pilot, lambda: notifications(pilot))
        assert notifications(pilot) == ["broken.bad: not a document this version can read"]
        assert "failed" in app.screen.query_one(FileProgress).classes


async def test_many_skipped_files_are_counted_in_one_row(
    app, assistant: FakeAssistant, tmp_path: Path
) -> None:
    files = ["a.gz", "b.gz", "c.conf", "d.gz", "notes.md"]
    for name in files:
        (tmp_path / name).write_text("x")
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        pane = app.screen.query_one(LibraryPane)
        pane.add([tmp_path / name for name in files])
        await wait_until(pilot, lambda: "notes.md" in names(app), "the readable file is added")
        await pilot.pause()
        assert [Path(row.path).name for row in app.screen.query(FileProgress)] == ["notes.md"]
        assert "skipped 4 files of formats localrag does not read (.gz 3, .conf 1)" in (
            screen_text(app)
        )


async def test_a_missing_path_is_refused(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        await pilot.press("a", *"/nowhere/at/all.md", "enter")
        await wait_until(pilot, lambda: notifications(pilot))
        assert "no such file or folder" in notifications(pilot)[0]


async def test_delete_asks_first_and_keeps_the_document_on_no(app, assistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen)
        assert len(assistant.docs) == 2
        await pilot.press("down", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: names(app) == ["handbook.md"], "standup.flac is gone")
        assert [d.title for d in assistant.docs] == ["handbook.md"]
        assert "Deleted standup.flac." in notifications(pilot)


async def test_tab_from_the_path_reaches_the_documents(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_library(pilot)
        await pilot.press("a", "tab", "down", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete standup.flac" in app.screen.question


def test_the_status_names_the_step_a_file_is_in() -> None:
    from localrag.records import IngestEvent
    from localrag.tui.file_progress import describe

    assert describe(IngestEvent("/d/a.pdf", "progress", fraction=0.25)) == "reading 25 %"
    assert describe(IngestEvent("/d/a.pdf", "progress", chunks_done=2, chunks_total=9)) == (
        "2/9 chunks"
    )
    talk = IngestEvent("/d/talk.m4a", "progress", fraction=0.5, rtf=0.06)
    assert describe(talk) == "transcribing 50 % · RTF 0.06"  # too early to know how long
    talk = IngestEvent("/d/talk.m4a", "progress", fraction=0.5, rtf=0.06, eta_s=125.0)
    assert describe(talk) == "transcribing 50 % · RTF 0.06, 02:05 left"


async def test_columns_fit_their_widest_cell_as_soon_as_rows_are_shown(app) -> None:
    """Textual sizes auto-width columns at the table's next idle; rows drawn before that kept
    the header's widths (names cut to four characters) until the tab changed."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: names(app) == ["handbook.md", "standup.flac"])
        widths = [c.width for c in table(app).ordered_columns]
        assert widths == [len("standup.flac"), len("audio"), len("12.3 KB"), len("Chunks"), 16]
        assert not any(c.auto_width for c in table(app).ordered_columns)
