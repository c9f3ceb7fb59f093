"""The library: the documents in the vault; add files or folders, delete with a confirmation;
the watched folders kept in sync while the app runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label

from localrag.cli.common import human_size
from localrag.display import SKIPS_NAMED, one_line, skipped_summary
from localrag.records import Document
from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.file_progress import FileProgress
from localrag.tui.format import short_time
from localrag.tui.messages import DocumentsLoaded, Ingested, IngestEnded
from localrag.tui.path_input import PathInput
from localrag.tui.tables import refill


class LibraryPane(Vertical):
    """Documents with kind, size, chunks and date; a path input; a progress row per file."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Named as the app's actions, so the palette test can match them.
        Binding("a", "add_files", "Add"),
        Binding("d,delete", "delete_document", "Delete"),
        Binding("ctrl+t", "app.record_note", "Record"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents: list[Document] = []
        self.skipped: list[str] = []
        """This batch's files of formats localrag does not read."""
        self.skipped_row: Label | None = None
        """The row that counts them once there are more than `SKIPS_NAMED`."""

    def compose(self) -> ComposeResult:
        yield PathInput(
            placeholder="Path of a file or folder to add (Tab completes, Enter adds)",
            id="add-path",
        )
        ingest = VerticalScroll(id="ingest")
        ingest.can_focus = False  # Tab goes from the path straight to the documents
        yield ingest
        table: DataTable[str | Text] = DataTable(
            id="documents", cursor_type="row", zebra_stripes=True
        )
        table.add_columns("Name", "Kind", "Size", "Chunks", "Added")
        yield table

    def on_mount(self) -> None:
        self.query_one("#ingest").display = False
        self.reload()
        self.keep_in_sync()

    def keep_in_sync(self) -> None:
        """While the app runs, the watched folders (`localrag folders add`) stay in sync: a file
        added, changed, moved or deleted on disk shows here after its change settles."""
        assistant = self.app.assistant  # type: ignore[attr-defined]
        stopping = self.app.stopping  # type: ignore[attr-defined]

        def work() -> None:
            if not assistant.folders():
                return
            events = assistant.watch(stopping)
            for event in events:
                if stopping.is_set():
                    events.close()
                    break
                if event.status != "unchanged":
                    self.post_message(Ingested(event))

        self.app.background(work, name="watch", group="watch")  # type: ignore[attr-defined]

    def reload(self) -> None:
        assistant = self.app.assistant  # type: ignore[attr-defined]
        self.app.background(  # type: ignore[attr-defined]
            lambda: self.post_message(DocumentsLoaded(assistant.documents())),
            name="documents",
            group="documents",
            exclusive=True,
        )

    def on_documents_loaded(self, message: DocumentsLoaded) -> None:
        self.documents = message.documents
        table = self.query_one("#documents", DataTable)
        cursor = table.cursor_row
        rows = [
            (
                # A str cell is read as markup: `notes [draft].md` would lose `[draft]`.
                (
                    Text(one_line(Path(doc.path).name)),
                    doc.kind,
                    human_size(doc.size_bytes),
                    str(doc.chunk_count),
                    short_time(doc.added_at),
                ),
                str(doc.id),
            )
            for doc in message.documents
        ]
        refill(table, rows)
        if message.documents:
            table.move_cursor(row=min(cursor, len(message.documents) - 1))
        table.border_title = f"Documents ({len(message.documents)})"

    def focus_default(self) -> None:
        """The table if there is something in it, else the path input to add the first file."""
        target = "#documents" if self.documents else "#add-path"
        self.query_one(target).focus()

    # Adding

    def action_add_files(self) -> None:
        self.query_one("#add-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "add-path":
            return
        event.stop()
        text = event.value.strip()
        if not text:
            return
        path = Path(text).expanduser()
        if not path.exists():
            self.app.notify(f"{path}: no such file or folder", severity="error")
            return
        event.input.value = ""
        self.add([path.resolve()])

    def add(self, paths: list[Path]) -> None:
        assistant = self.app.assistant  # type: ignore[attr-defined]
        stopping = self.app.stopping  # type: ignore[attr-defined]
        self.skipped, self.skipped_row = [], None

        def work() -> None:
            try:
                events = assistant.add(paths)
                for event in events:
                    self.post_message(Ingested(event))
                    if stopping.is_set():  # the app is closing: stop between files' steps
                        getattr(events, "close", lambda: None)()
                        break
            finally:
                self.post_message(IngestEnded())

        self.app.background(work, name="ingest")  # type: ignore[attr-defined]

    def row_for(self, path: str) -> FileProgress | None:
        for row in self.query(FileProgress):
            if row.path == path and row.status != "done":
                return row
        return None

    async def on_ingested(self, message: Ingested) -> None:
        event = message.event
        if event.status == "skipped":
            self.skipped.append(event.path)
            if len(self.skipped) > SKIPS_NAMED:
                await self.summarize_skipped()
                return
        row = self.row_for(event.path)
        if row is None:
            row = FileProgress(event.path)
            self.query_one("#ingest").display = True
            await self.query_one("#ingest", VerticalScroll).mount(row)
            self.query_one("#ingest", VerticalScroll).scroll_end(animate=False)
        row.update_from(event)
        if event.final:
            row.status = "done"
            if event.status == "failed":
                name = Path(event.path).name
                # The core's messages usually name the file already.
                text = event.detail if name in event.detail else f"{name}: {event.detail}"
                self.app.notify(text, title="Could not add", severity="error")
            else:
                self.reload()

    async def summarize_skipped(self) -> None:
        """One row counts the skipped files by extension in place of a row each, as `add` does."""
        ingest = self.query_one("#ingest", VerticalScroll)
        for row in self.query(FileProgress):
            if row.path in self.skipped[:SKIPS_NAMED]:
                await row.remove()
        text = f"skipped {skipped_summary(self.skipped)}"
        if self.skipped_row is None:
            self.skipped_row = Label(text, classes="file-status", markup=False)
            await ingest.mount(self.skipped_row)
            ingest.scroll_end(animate=False)
        self.skipped_row.update(text)

    def on_ingest_ended(self, message: IngestEnded) -> None:
        self.reload()

    # Deleting

    def selected(self) -> Document | None:
        table = self.query_one("#documents", DataTable)
        if not self.documents or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((d for d in self.documents if str(d.id) == key), None)

    def action_delete_document(self) -> None:
        doc = self.selected()
        if doc is None:
            self.app.notify("No document selected.", severity="warning")
            return
        name = one_line(Path(doc.path).name)

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete(doc)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete {name} from the vault?\n\nIts text, vectors and any transcript are erased,"
                " and answers that quote or cite it are scrubbed from your conversations."
                " The file on disk is not touched."
            ),
            confirmed,
        )

    def delete(self, doc: Document) -> None:
        assistant = self.app.assistant  # type: ignore[attr-defined]
        name = Path(doc.path).name

        def work() -> None:
            assistant.remove(str(doc.id))
            self.app.call_from_thread(self.app.notify, f"Deleted {name}.")
            self.post_message(DocumentsLoaded(assistant.documents()))

        self.app.background(work, name="delete")  # type: ignore[attr-defined]
