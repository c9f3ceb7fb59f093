"""Which model answers a question, and the worker process that runs it.

The service hands questions to a `Generator`; a `ModelChoice` says which one: the active model
of the adapter registry (a merged version, or the base), a named merged version, or the base
with an adapter applied at run time. `WorkerModels` runs each in its own model worker, kept
while it is used; `FixedModel` answers every question with the one generator it was given (the
fakes of tests, or any in-process generator).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

from localrag import models
from localrag.adapter.registry import BASE
from localrag.errors import UsageError
from localrag.generate import Generator
from localrag.settings import Settings

log = logging.getLogger(__name__)

MAX_WORKERS = 2
"""Models kept loaded at once (the active one and one asked for by name); older ones close."""


class ModelChoice(Protocol):
    def generator(self, ref: str | None = None, *, runtime: bool = False) -> Generator:
        """The model for `ref`: None the active one, `base`, `NAME[@vN]` merged, or with
        `runtime` the base plus the adapter `NAME` applied at run time."""
        ...

    def loaded(self) -> Generator | None:
        """The generator that answered last, if any (for the status line)."""
        ...

    def close(self) -> None: ...


def _check_runtime(ref: str | None, runtime: bool) -> None:
    if runtime and ref is None:
        # Checked first: answering with the active model instead would hide the mistake.
        raise UsageError("a runtime adapter needs a name: --adapter NAME --runtime")


class FixedModel:
    """Every question goes to one generator, the base: adapters cannot be chosen."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator
        self._used = False

    def generator(self, ref: str | None = None, *, runtime: bool = False) -> Generator:
        _check_runtime(ref, runtime)
        if ref not in (None, BASE):
            raise UsageError(f"cannot apply adapter {ref!r}: no llama.cpp model here")
        self._used = True
        return self._generator

    def loaded(self) -> Generator | None:
        return self._generator if self._used else None

    def close(self) -> None:
        close = getattr(self._generator, "close", None)
        if close is not None:
            close()


class WorkerModels:
    """Each model choice in its own model worker, started on first use and again after a crash."""

    def __init__(self, settings: Settings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self._workers: OrderedDict[str, Any] = OrderedDict()
        self._last: Any = None
        self._lock = threading.Lock()

    def generator(self, ref: str | None = None, *, runtime: bool = False) -> Generator:
        from localrag.adapter import manage

        _check_runtime(ref, runtime)
        key = manage.model_key(self.store, self.settings, ref, runtime=runtime)
        with self._lock:
            worker = self._workers.get(key)
            if worker is not None and not worker.alive:
                log.info("the model worker for %s has exited; starting a new one", key)
                worker.close()
                worker = None
            if worker is None:
                worker = self._start(ref, runtime)
                self._workers[key] = worker
                while len(self._workers) > MAX_WORKERS:
                    self._workers.popitem(last=False)[1].close()
            self._workers.move_to_end(key)
            self._last = worker
            return worker

    def _start(self, ref: str | None, runtime: bool) -> Any:
        from localrag.adapter import manage
        from localrag.worker.client import ModelWorker

        # The in-memory files can close once the worker has loaded: it holds its own copy.
        with manage.model_files(self.store, self.settings, ref, runtime=runtime) as files:
            return ModelWorker(
                files.model,
                lora=files.lora,
                n_ctx=self.settings.context_tokens,
                name=models.active_name(self.settings, "llm") or "model",
                adapter=files.label,
            )

    def loaded(self) -> Generator | None:
        return self._last

    def close(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()
            self._last = None
