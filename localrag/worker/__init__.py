"""The model worker: llama.cpp in a child process, one per loaded model.

GGUF files come from users (`models add`) and from adapters, and llama.cpp parses them in C++;
malformed ones have crashed its loader many times. So neither the service, the CLI nor the app
loads llama.cpp into its own process: `client.ModelWorker` starts `python -m localrag.worker`,
which loads the model (`runtime`) and answers requests over two pipes (`protocol`, `server`).
A crash, a CPU fault or an out-of-memory kill there costs one clear error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localrag.settings import Settings
    from localrag.worker.client import ModelWorker


def base_worker(settings: Settings) -> ModelWorker:
    """A worker with the settings' own LLM file loaded (verified by SHA-256 first), no adapter."""
    from localrag import models
    from localrag.worker.client import ModelInput, ModelWorker

    path = models.model_path(settings, "llm")
    name = models.active_name(settings, "llm") or path.stem
    return ModelWorker(ModelInput(path=path), n_ctx=settings.context_tokens, name=name)
