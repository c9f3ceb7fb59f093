"""The app's commands in the command palette (Ctrl+P): a title, a line of help, the app action.

Kept as data so that a test can hold it against the app's bindings and action methods: an
action with no line here is an action a keyboard user cannot find.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaletteCommand:
    title: str
    help: str
    action: str
    """An app action as a binding names it: `toggle_retrieval`, `show_tab('chat')`."""


PALETTE: tuple[PaletteCommand, ...] = (
    PaletteCommand("Chat", "Ask questions of your documents", "show_tab('chat')"),
    PaletteCommand("Library", "Documents in the vault", "show_tab('library')"),
    PaletteCommand("History", "Past conversations", "show_tab('history')"),
    PaletteCommand(
        "Adapters",
        "Imported adapters, their merged versions and provenance",
        "show_tab('adapters')",
    ),
    PaletteCommand(
        "Toggle retrieval",
        "Answer from your documents, or from the model alone",
        "toggle_retrieval",
    ),
    PaletteCommand("Choose model or adapter", "Which model answers", "choose_model"),
    PaletteCommand(
        "Roll back the model",
        "Go back to the model that answered before the last switch",
        "rollback_model",
    ),
    PaletteCommand("New conversation", "Start a fresh chat", "new_conversation"),
    PaletteCommand("Cancel the answer", "Stop the model writing", "cancel_answer"),
    PaletteCommand(
        "Record a voice note",
        "From the microphone until you stop talking; transcribed into the vault",
        "record_note",
    ),
    PaletteCommand("Add files or a folder", "Index documents and recordings", "add_files"),
    PaletteCommand("Delete the selected document", "Erase it from the vault", "delete_document"),
    PaletteCommand("Sources", "Go to the sources of the latest answer", "focus_sources"),
    PaletteCommand(
        "Use the selected model", "The adapters view's version, adapter or base", "use_model"
    ),
    PaletteCommand(
        "Import an adapter",
        "A PEFT folder or GGUF LoRA file, checked against the base model",
        "import_adapter",
    ),
    PaletteCommand(
        "Merge an adapter", "Into the base model, as a new quantized version", "merge_adapter"
    ),
    PaletteCommand(
        "Cancel the merge", "Stop it at the next step; nothing is stored", "cancel_merge"
    ),
    PaletteCommand(
        "Delete the selected version", "Erase a merged version or an adapter", "delete_version"
    ),
    PaletteCommand(
        "Verify the selected version",
        "Compare the merge with the base and its runtime LoRA",
        "verify_version",
    ),
    PaletteCommand(
        "Make questions from the vault",
        "A question set from your documents, checked and kept in the vault",
        "make_questions",
    ),
    PaletteCommand(
        "Compare RAG and the adapter",
        "The latest question set: base and adapter, with and without retrieval",
        "compare_models",
    ),
    PaletteCommand("Show the last compare", "Its table and recommendation", "show_compare"),
)
