"""The Textual app: built by `build_app()` from a vault access (or an open `Assistant`).

Everything that calls the core runs in a thread worker started by `background()`, and the one
`on_worker_state_changed` handler turns a failed worker into a notification, never a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from localrag.display import one_line, visible
from localrag.errors import LocalragError
from localrag.settings import Settings
from localrag.tui.adapters import AdaptersPane
from localrag.tui.chat import ChatPane
from localrag.tui.evaluate_screen import EvaluateScreen
from localrag.tui.library import LibraryPane
from localrag.tui.main_screen import MainScreen
from localrag.tui.messages import ConversationOpened, StatusLoaded, VaultOpened
from localrag.tui.model_picker import BASE, ModelChoice, ModelPicker, model_choices
from localrag.tui.palette import PALETTE
from localrag.tui.record_screen import RecordScreen
from localrag.tui.status_bar import StatusBar
from localrag.tui.unlock_screen import UnlockScreen
from localrag.tui.vault import ServiceVault, VaultAccess

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""How long quitting waits for workers to stop before leaving the vault to the process exit."""
MAIN_ACTIONS = {
    "show_tab",
    "toggle_retrieval",
    "choose_model",
    "new_conversation",
    "record_note",
}
"""Actions that need the open vault."""
MAKE_QA_QUESTIONS = 20
"""Answerable questions the app's "Make questions" asks for (`eval make-qa --n` for more)."""


class LocalragApp(App[None]):
    """Unlock, then chat with your documents, manage the library and reopen past conversations."""

    TITLE = "localrag"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # The tabs name their keys, so the footer leaves them out.
        Binding("f1", "show_tab('chat')", "Chat", show=False),
        Binding("f2", "show_tab('library')", "Library", show=False),
        Binding("f3", "show_tab('history')", "History", show=False),
        Binding("f4", "show_tab('adapters')", "Adapters", show=False),
        Binding("ctrl+r", "toggle_retrieval", "Retrieval"),
        Binding("ctrl+o", "choose_model", "Model"),
        Binding("ctrl+n", "new_conversation", "New chat"),
        # Shown by the chat and the library: on the adapters tab the footer has no room for it.
        Binding("ctrl+t", "record_note", "Record", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, vault: VaultAccess | None = None, assistant: Any | None = None) -> None:
        super().__init__()
        if vault is None and assistant is None:
            raise ValueError("give the app a vault access or an open assistant")
        self.vault = vault
        self.assistant: Any = assistant
        """The open `Assistant`, once the vault is unlocked."""
        self.owns_assistant = assistant is None
        """Whether the app opened the vault itself, and so closes it when it exits."""
        self.retrieval = True
        """Whether answers search the vault (on) or come from the model alone (off)."""
        self.runtime_adapter: str | None = None
        """An adapter applied to the base at run time for each question, if one is chosen."""
        self.active_ref: str | None = None
        """The adapter version the vault's registry makes active (None: the base model)."""
        self.model = ""
        self.choices: list[ModelChoice] = []
        self.listing: Any = None
        """`Assistant.adapters()` as last loaded: what the adapters view shows."""
        self.threads: set[threading.Thread] = set()
        """The worker threads running now."""
        self.stopping = threading.Event()
        """Set when the app exits: long workers stop at their next step."""
        self.recorder: Any = None
        """The voice note's `Recorder` while one records (stopped when the app exits)."""

    def on_mount(self) -> None:
        if self.assistant is not None:
            self.open_main()
        else:
            assert self.vault is not None
            self.push_screen(UnlockScreen(self.vault, create=not self.vault.exists()))

    # Workers and their errors

    def background(
        self, work: Callable[[], None], *, name: str, group: str = "core", exclusive: bool = False
    ) -> Worker[None]:
        """Run `work` (which calls the core) in a thread; its errors become notifications."""

        def tracked() -> None:
            thread = threading.current_thread()
            self.threads.add(thread)
            try:
                work()
            finally:
                self.threads.discard(thread)

        return self.run_worker(
            tracked, name=name, group=group, exclusive=exclusive, thread=True, exit_on_error=False
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report(event.worker.error)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's `notify`, with markup off unless asked for.

        Notifications carry file names and the core's messages (`a[/b].md: cannot parse it`);
        read as markup they would lose their brackets or raise while drawing.
        """
        # Control characters in a file name or a document's text must not drive the terminal.
        message, title = visible(message), one_line(title)
        if severity != "information":  # a notification fades; the log (`-v`) keeps it
            log.warning("%s%s", f"{title}: " if title else "", message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def report(self, error: BaseException) -> None:
        if isinstance(error, LocalragError):
            self.notify(error.message, title=error.title, severity="error", timeout=10)
            return
        # Logged once, with its traceback; the notification itself is not logged again.
        log.error("unexpected error in %s", type(error).__name__, exc_info=error)
        super().notify(
            visible(f"{type(error).__name__}: {error}"),
            title="Unexpected error",
            severity="error",
            timeout=10,
            markup=False,
        )

    # The vault and the main screen

    def on_vault_opened(self, message: VaultOpened) -> None:
        self.assistant = message.assistant
        self.open_main()

    def open_main(self) -> None:
        if self.screen_stack and isinstance(self.screen, UnlockScreen):
            self.switch_screen(MainScreen())
        else:
            self.push_screen(MainScreen())
        self.load_status()

    def load_status(self) -> None:
        assistant = self.assistant

        def work() -> None:
            listing = assistant.adapters()
            self.post_message(StatusLoaded(dict(assistant.status()), listing))
            assistant.keep_search_warm()  # every later search finds its vectors in memory
            assistant.prepare_answers()

        self.background(work, name="status")

    def on_status_loaded(self, message: StatusLoaded) -> None:
        self.model = str(message.status.get("model") or "")
        listing = message.adapters
        self.active_ref = getattr(listing, "active", None) or message.status.get("adapter")
        self.choices = model_choices(listing)
        self.listing = listing
        self.refresh_status()

    @property
    def adapter_label(self) -> str | None:
        if self.runtime_adapter is not None:
            return f"{self.runtime_adapter} (runtime)"
        return self.active_ref

    def ask_options(self) -> dict[str, Any]:
        """What `Assistant.ask()` needs besides the question, from the user's choices."""
        options: dict[str, Any] = {"retrieval": self.retrieval}
        if self.runtime_adapter is not None:
            options.update(adapter=self.runtime_adapter, runtime_adapter=True)
        return options

    def refresh_status(self) -> None:
        for bar in self.screen.query(StatusBar):
            bar.show(retrieval=self.retrieval, model=self.model, adapter=self.adapter_label)
        if (main := self.main_screen()) is not None and self.listing is not None:
            main.query_one(AdaptersPane).show(self.listing, self.runtime_adapter)

    def answer_finished(self, answer: Any) -> None:
        if getattr(answer, "model", None):
            self.model = str(answer.model)
        self.refresh_status()

    # Actions (each also in the command palette: see palette.py)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Before the vault is open, only quitting makes sense."""
        return action not in MAIN_ACTIONS or self.main_screen() is not None

    def main_screen(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def action_show_tab(self, pane: str) -> None:
        if (main := self.main_screen()) is not None and self.screen is main:
            main.show_tab(pane)

    def action_toggle_retrieval(self) -> None:
        self.retrieval = not self.retrieval
        self.refresh_status()
        self.notify(
            "Answers search your documents and cite them."
            if self.retrieval
            else "Retrieval off: answers come from the model alone, without sources."
        )

    def action_choose_model(self) -> None:
        if self.main_screen() is None:
            return
        current = self.runtime_adapter or self.active_ref or BASE
        self.push_screen(ModelPicker(self.model, self.choices, current), self.apply_choice)

    def apply_choice(self, choice: ModelChoice | None) -> None:
        """Answer with `choice` (from the model picker or the adapters view) from now on."""
        if choice is None:
            return
        if choice.runtime:  # nothing changes in the vault: each question applies it
            self.runtime_adapter = choice.ref
            self.refresh_status()
            self.notify(f"Answers now come from the base with {choice.ref} applied at run time.")
            return
        self.runtime_adapter = None
        assistant = self.assistant
        self.switch_model(lambda: assistant.use_adapter(choice.ref))

    def switch_model(self, change: Callable[[], str | None]) -> None:
        """Run `change` (use or roll back an adapter version) in a worker, then say what answers."""

        def work() -> None:
            active = change()
            self.call_from_thread(self.notify, f"Answers now come from {active or BASE}.")
            self.call_from_thread(self.load_status)

        self.background(work, name="switch-model")

    def action_rollback_model(self) -> None:
        if self.main_screen() is not None:
            self.runtime_adapter = None
            assistant = self.assistant
            self.switch_model(lambda: assistant.rollback_adapter())

    def adapter_removed(self, removed: list[str]) -> None:
        """After the adapters view deleted a version or an adapter (and its versions)."""
        if self.runtime_adapter in removed:
            self.runtime_adapter = None
        self.notify(f"Deleted {', '.join(removed)}.")
        self.load_status()

    async def action_new_conversation(self) -> None:
        if (main := self.main_screen()) is not None:
            main.show_tab("chat")
            await main.query_one(ChatPane).new_conversation()

    async def on_conversation_opened(self, message: ConversationOpened) -> None:
        if (main := self.main_screen()) is not None:
            main.show_tab("chat")
            await main.query_one(ChatPane).show_conversation(message.conversation_id, message.turns)

    def action_cancel_answer(self) -> None:
        if (main := self.main_screen()) is not None:
            main.query_one(ChatPane).action_cancel_answer()

    def action_add_files(self) -> None:
        if (main := self.main_screen()) is not None:
            main.show_tab("library")
            main.query_one(LibraryPane).action_add_files()

    def action_delete_document(self) -> None:
        if (main := self.main_screen()) is not None:
            main.show_tab("library")
            main.query_one(LibraryPane).action_delete_document()

    def action_focus_sources(self) -> None:
        if (main := self.main_screen()) is not None:
            main.show_tab("chat")
            main.query_one(ChatPane).action_focus_sources()

    def adapters_pane(self) -> AdaptersPane | None:
        """The adapters view, brought to the front (for its actions run from the palette)."""
        if (main := self.main_screen()) is None:
            return None
        main.show_tab("adapters")
        return main.query_one(AdaptersPane)

    def action_use_model(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_use_model()

    def action_import_adapter(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_import_adapter()

    def action_merge_adapter(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_merge_adapter()

    def action_delete_version(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_delete_version()

    def action_verify_version(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_verify_version()

    def action_cancel_merge(self) -> None:
        if (pane := self.adapters_pane()) is not None:
            pane.action_cancel_merge()

    # Evaluation: questions from the vault, then RAG against the adapter on them

    async def action_make_questions(self) -> None:
        if self.main_screen() is None:
            return
        screen = EvaluateScreen("Questions from your vault")
        await self.push_screen(screen)  # mounted before the worker reports to it
        screen.start("making questions", "sampling chunks")
        assistant = self.assistant

        def work() -> None:
            for event in assistant.make_qa(MAKE_QA_QUESTIONS):
                if screen.cancelled.is_set() or self.stopping.is_set():
                    return  # the set is stored only once it is whole
                status = f"{event.kept} kept of {event.tried} asked"
                self.call_from_thread(screen.step, event.kept, event.wanted, status)
                if event.stored is not None:
                    s = event.stored
                    self.call_from_thread(
                        screen.say,
                        f"Stored {s.name}: {s.counts()}. Compare on it from the palette.",
                    )

        self.background(work, name="make-qa", group="evaluate", exclusive=True)

    async def action_compare_models(self) -> None:
        if self.main_screen() is None:
            return
        screen = EvaluateScreen("RAG or the adapter, on your questions")
        await self.push_screen(screen)
        screen.start("comparing", "finding the latest question set")
        assistant = self.assistant

        def work() -> None:
            sets = assistant.qa_sets()
            if not sets:
                self.call_from_thread(
                    screen.say, "No question set yet: run “Make questions from the vault” first."
                )
                return
            for event in assistant.compare_set(sets[-1].name):
                if screen.cancelled.is_set() or self.stopping.is_set():
                    return  # the answers so far are kept: running it again resumes
                status = f"{event.config or 'starting'}: {event.done} of {event.total}"
                self.call_from_thread(screen.step, event.done, event.total, status)
                if event.result is not None:
                    self.call_from_thread(screen.show, event.result)

        self.background(work, name="compare", group="evaluate", exclusive=True)

    async def action_show_compare(self) -> None:
        if self.main_screen() is None:
            return
        screen = EvaluateScreen("The last compare")
        await self.push_screen(screen)
        assistant = self.assistant

        def work() -> None:
            result = assistant.last_compare()
            if result is None:
                self.call_from_thread(screen.say, "No compare has finished yet.")
            else:
                self.call_from_thread(screen.show, result)

        self.background(work, name="show-compare")

    # Voice notes: record until silence, then transcribe into the vault

    async def action_record_note(self) -> None:
        if self.main_screen() is None or self.recorder or isinstance(self.screen, RecordScreen):
            return
        assistant = self.assistant
        recorder = self.recorder = assistant.recorder()
        screen = RecordScreen(recorder.options, recorder.stop)
        await self.push_screen(screen)  # mounted before the worker reports to it

        def tell(show: Callable[..., None], *args: Any) -> None:
            # Once the app exits, its loop waits for this worker: calling into it would stall.
            if not self.stopping.is_set():
                self.call_from_thread(show, *args)

        def work() -> None:
            try:
                recording = recorder.run(partial(tell, screen.level))
            except LocalragError as exc:  # no microphone, nothing heard: said on the screen
                tell(screen.failed, exc.message)
                return
            finally:
                self.recorder = None
            say = partial(screen.transcribing, recording.recorded_s, recording.stopped_by)
            tell(say, 0.0)
            heard: list[str] = []
            try:
                # Stored even when the app is quitting: what was recorded is kept.
                for event in assistant.record_note(recording.audio):
                    tell(say, event.fraction)
                    if event.segment is not None:
                        heard.append(event.segment.text.strip())
                    if event.doc_id is not None:
                        tell(screen.added, event.path, " ".join(heard))
                        tell(self.note_added, event.path)
            except LocalragError as exc:
                tell(screen.failed, exc.message)
                raise

        self.background(work, name="record-note", group="record", exclusive=True)

    def note_added(self, name: str) -> None:
        self.notify(f"Voice note added: {name}")
        if (main := self.main_screen()) is not None:
            main.query_one(LibraryPane).reload()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.main_screen() is None:
            return
        for command in PALETTE:
            yield SystemCommand(
                command.title, command.help, partial(self.run_action, command.action)
            )

    def on_unmount(self) -> None:
        """Stop the workers at their next step, then close the vault (if the app opened it).

        Closing while a thread still runs llama.cpp or SQLite would pull the model or the
        connection from under it; a worker that does not stop in time leaves the vault to be
        closed by the process exit (every document is one transaction, so nothing is half-added).
        """
        self.stopping.set()
        if self.recorder is not None:
            self.recorder.stop()  # the note recorded so far is still stored
        if (main := self.main_screen()) is not None:
            main.query_one(ChatPane).action_cancel_answer()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.threads:
            log.warning("workers still running at exit; the vault closes with the process")
            return
        if self.owns_assistant and self.assistant is not None:
            try:
                self.assistant.close()
            except LocalragError as exc:
                log.warning("closing the vault: %s", exc.message)


def build_app(
    settings: Settings | None = None,
    *,
    vault: VaultAccess | None = None,
    assistant: Any | None = None,
) -> LocalragApp:
    """The app for `settings`' vault, or for the given vault access or open assistant.

    The app closes a vault it unlocked itself when it exits; an open assistant stays the
    caller's to close.
    """
    if vault is None and assistant is None:
        vault = ServiceVault(settings or Settings.load())
    return LocalragApp(vault=vault, assistant=assistant)


__all__ = ["LocalragApp", "build_app"]
