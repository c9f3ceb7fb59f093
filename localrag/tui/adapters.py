"""The adapters view: imported adapters and their merged versions with provenance; import an
adapter, use one, roll back, delete a version, merge an adapter into a new version, verify a merge.

Every call to the core runs in a thread worker; a merge reports each step to the job row and can
be cancelled between steps (nothing is stored until its last step).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from localrag.display import one_line, visible
from localrag.tui.adapter_rows import COLUMNS, AdapterRow, adapter_rows
from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.import_screen import ImportScreen, default_name
from localrag.tui.job_progress import JobProgress
from localrag.tui.messages import AdapterJobEnded, MergeStepped
from localrag.tui.model_picker import ModelChoice
from localrag.tui.quant_picker import QuantPicker
from localrag.tui.tables import refill

HINT = "Enter/u use · i import · m merge · b roll back · d delete · v verify"
"""Names every key: the footer leaves out Roll back, Delete and Verify to fit 80 columns."""


class AdaptersPane(Vertical):
    """The table of models, the provenance of the highlighted one, and a row for a running job."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Named as the app's actions, so the palette test can match them.
        Binding("u", "use_model", "Use"),
        Binding("i", "import_adapter", "Import"),
        Binding("m", "merge_adapter", "Merge"),
        Binding("b", "app.rollback_model", "Roll back", show=False),
        Binding("d,delete", "delete_version", "Delete", show=False),
        Binding("v", "verify_version", "Verify", show=False),
        Binding("escape", "cancel_merge", "Cancel", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[AdapterRow] = []
        self.job: str | None = None
        """What runs now (`importing tone`, `merging legal`, `verifying legal@v1`), or None."""
        self.cancel = threading.Event()
        self.made: str | None = None
        """The adapter or version the last job made: the cursor goes to it once it is listed."""
        self.typed = ("", "")
        """The import box's path and name (empty: the default) when it was last submitted, until
        that import succeeds: after a refusal the box opens with them, to fix, not retype."""

    def compose(self) -> ComposeResult:
        yield Static(HINT, classes="hint", markup=False)
        table: DataTable[str | Text] = DataTable(id="adapter-table", cursor_type="row")
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="adapter-detail", markup=False)
        yield JobProgress(id="adapter-job", classes="job-progress")

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#adapter-table", DataTable)

    def show(self, listing: Any, runtime: str | None) -> None:
        """Redraw from `Assistant.adapters()`, keeping the cursor on the same model."""
        if not self.query("#adapter-table"):  # the app is closing: an answer ended meanwhile
            return
        table = self.table
        keep = self.selected().ref if self.rows and table.row_count else None
        self.rows = adapter_rows(listing, runtime)
        refs = [r.ref for r in self.rows]
        if self.made in refs:  # an import or a merge just ended: show what it made
            keep, self.made = self.made, None
        # Names and paths are the user's: Text, so they are never read as markup.
        refill(
            table,
            [
                (tuple(Text(one_line(c), style="bold" if r.active else "") for c in r.cells), r.ref)
                for r in self.rows
            ],
        )
        table.move_cursor(row=refs.index(keep) if keep in refs else 0)
        self.show_detail()

    def selected(self) -> AdapterRow:
        return self.rows[max(0, min(self.table.cursor_row, len(self.rows) - 1))]

    def show_detail(self) -> None:
        if self.rows:
            self.query_one("#adapter-detail", Static).update(visible(self.selected().detail))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_use_model()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_merge":
            return self.job is not None and self.job.startswith("merging")
        return True

    # Using and deleting

    def action_use_model(self) -> None:
        if not self.rows:
            return
        row = self.selected()
        if row.kind == "adapter":  # not merged: applied to the base at run time
            choice = ModelChoice(row.ref, row.ref, runtime=True)
        else:
            choice = ModelChoice(row.ref, row.ref)
        self.app.apply_choice(choice)  # type: ignore[attr-defined]

    def action_delete_version(self) -> None:
        if not self.rows or self.selected().kind == "base":
            self.app.notify("Choose a version or an adapter to delete.", severity="warning")
            return
        row = self.selected()
        if row.kind == "version":
            question = f"Delete {row.ref} from the vault?\n\nIts merged model is erased."
        else:
            versions = [r.ref for r in self.rows if r.kind == "version" and r.name == row.name]
            question = f"Delete the adapter {row.ref} from the vault?\n\n" + (
                f"Its merged versions go with it: {', '.join(versions)}."
                if versions
                else "It has no merged version."
            )
        if any(r.active for r in self.rows if r.ref == row.ref or r.name == row.ref):
            question += " Answers go back to the base model."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete(row)

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def delete(self, row: AdapterRow) -> None:
        app: Any = self.app
        assistant = app.assistant

        def work() -> None:
            removed = assistant.remove_adapter(row.ref)
            app.call_from_thread(app.adapter_removed, removed)

        app.background(work, name="remove-adapter")

    # Importing, merging and verifying: one job at a time

    def busy(self) -> bool:
        if self.job is not None:
            self.app.notify(f"Wait: {self.job} is running (Esc cancels a merge).")
        return self.job is not None

    def action_import_adapter(self) -> None:
        if self.busy():
            return

        def chosen(choice: tuple[Path, str] | None) -> None:
            if choice is not None:
                self.import_adapter(*choice)

        self.app.push_screen(ImportScreen(*self.typed), chosen)

    def import_adapter(self, path: Path, name: str) -> None:
        app: Any = self.app
        assistant = app.assistant
        # A default name is left out: the box would give it to the next path too.
        self.typed = (str(path), "" if name == default_name(str(path)) else name)
        self.job, self.made = f"importing {name}", None
        self.query_one(JobProgress).start(self.job, "checking it against the base model…")
        self.refresh_bindings()

        def work() -> None:
            ended, made = "", None
            try:
                # A refusal (pickle, shapes, truncated) raises before anything is stored.
                info = assistant.import_adapter(path, name)
                ended, made = imported(info), info.name
            finally:
                self.post_message(AdapterJobEnded(ended, made=made))

        app.background(work, name="import-adapter")

    def action_merge_adapter(self) -> None:
        if not self.rows or self.busy():
            return
        name = self.selected().name
        if name is None:
            self.app.notify("Choose an adapter (or one of its versions) to merge.")
            return

        def chosen(quant: str | None) -> None:
            if quant is not None:
                self.merge(name, quant)

        self.app.push_screen(QuantPicker(name), chosen)

    def merge(self, name: str, quant: str) -> None:
        app: Any = self.app
        assistant, stopping, cancel = app.assistant, app.stopping, self.cancel
        cancel.clear()
        self.job, self.made = f"merging {name}", None
        self.query_one(JobProgress).start(f"merging {name}", f"reading {name}… (Esc cancels)")
        self.refresh_bindings()

        def work() -> None:
            ended = ""
            try:
                events = assistant.merge_adapter(name, quant)
                for event in events:
                    self.post_message(MergeStepped(event))
                    if event.step == "done":
                        ended = f"Merged {event.detail} ({quant}): u answers with it."
                    elif cancel.is_set() or stopping.is_set():
                        # Closing stops it at this step; nothing is stored before the last one.
                        events.close()
                        ended = f"Merge of {name} cancelled; nothing was stored."
                        break
            finally:
                self.post_message(AdapterJobEnded(ended))

        app.background(work, name="merge-adapter")

    def on_merge_stepped(self, message: MergeStepped) -> None:
        event, job = message.event, self.query_one(JobProgress)
        if event.step == "merge":
            total = event.tensors_total
            job.step(event.tensors_done, total, f"{event.tensors_done}/{total} weights")
        elif event.step == "quantize":
            job.busy(f"quantizing to {event.detail}…")
        elif event.step == "store":
            job.busy("storing in the vault…")
        elif event.step == "done":
            self.made = event.detail

    def action_cancel_merge(self) -> None:
        if self.job is not None and self.job.startswith("merging"):
            self.cancel.set()
            self.query_one(JobProgress).busy("cancelling at the next step…")

    def action_verify_version(self) -> None:
        if not self.rows or self.busy():
            return
        row = self.selected()
        if row.kind != "version":
            self.app.notify("Choose a merged version to verify.")
            return
        app: Any = self.app
        assistant = app.assistant
        self.job = f"verifying {row.ref}"
        self.query_one(JobProgress).start(self.job, "running both models on fixed prompts…")
        self.refresh_bindings()

        def work() -> None:
            ended, severity = "", "information"
            try:
                report = assistant.verify_adapter(row.ref)
                ended, severity = verdict(report)
            finally:
                self.post_message(AdapterJobEnded(ended, severity))

        app.background(work, name="verify-adapter")

    def on_adapter_job_ended(self, message: AdapterJobEnded) -> None:
        if message.made is not None:  # an import succeeded: the next box starts empty
            self.made, self.typed = message.made, ("", "")
        self.job = None
        self.query_one(JobProgress).stop()
        self.refresh_bindings()
        if message.text:
            self.app.notify(message.text, severity=message.severity)  # type: ignore[arg-type]
        self.app.load_status()  # type: ignore[attr-defined]

    def focus_default(self) -> None:
        self.table.focus()


def imported(info: Any) -> str:
    """The notification for an `AdapterInfo` just imported."""
    return (
        f"Imported {info.name} ({info.source_format}, rank {info.rank}, {info.tensor_count}"
        " weights): m merges it, u applies it at run time."
    )


def verdict(report: Any) -> tuple[str, str]:
    """The notification for a `VerifyReport`, and its severity."""
    g = report.f16_vs_runtime
    numbers = (
        f"max logit difference {g.max_rel_logit_diff:.2%} of the range, "
        f"top-1 agreement {g.top1_agreement:.0%}"
    )
    if report.ok:
        return f"{report.ref} matches the base with its runtime LoRA ({numbers}).", "information"
    return (
        f"{report.ref} failed verification ({numbers}); "
        f"`localrag adapter verify {report.ref}` shows each side.",
        "error",
    )


__all__ = ["AdaptersPane"]
