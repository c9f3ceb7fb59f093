"""The one object the CLI and the TUI use: `Assistant`.

It is synchronous (llama.cpp, ONNX Runtime and CTranslate2 all block) and is built from its
parts, so tests can hand it fakes; `Assistant.open()` builds the real ones from the settings.
Heavy parts (the LLM, the embedder, Whisper) load on first use, once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localrag.settings import Settings


class _Lazy:
    """A part built on first use, so that opening the vault does not wait for every model."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None

    def get(self) -> Any:
        if self._value is None:
            self._value = self._build()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None


class Assistant:
    """Adds documents and recordings, searches them and answers questions from them."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        embedder: Any = None,
        generator: Any = None,
        transcriber: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder if isinstance(embedder, _Lazy) else _Lazy(lambda: embedder)
        self._generator = generator if isinstance(generator, _Lazy) else _Lazy(lambda: generator)
        self._transcriber = (
            transcriber if isinstance(transcriber, _Lazy) else _Lazy(lambda: transcriber)
        )

    @property
    def embedder(self) -> Any:
        return self._embedder.get()

    @property
    def generator(self) -> Any:
        return self._generator.get()

    @property
    def transcriber(self) -> Any:
        return self._transcriber.get()

    def close(self) -> None:
        for part in (self._generator, self._embedder, self._transcriber):
            if part.loaded and hasattr(part.get(), "close"):
                part.get().close()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
