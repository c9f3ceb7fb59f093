"""The one object the CLI and the TUI use: `Assistant`.

It is synchronous (llama.cpp, ONNX Runtime and CTranslate2 all block) and is built from its
parts, so tests can hand it fakes; `Assistant.open()` builds the real ones from the settings.
Heavy parts (the LLM, the embedder, Whisper) load on first use, once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from localrag import models
from localrag.answer import Answer, citation_dict, confident
from localrag.errors import UsageError
from localrag.generate import build_generator
from localrag.prompt import (
    Source,
    build_messages,
    conversation_title,
    fit_sources,
    search_query,
    source_budget,
)
from localrag.records import Conversation, Turn
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


def _real_part(settings: Settings, role: str) -> _Lazy:
    """The real embedder, generator or transcriber of the settings, built on first use."""

    def build() -> Any:
        if role == "embedder":
            from localrag import embed

            return embed.from_settings(settings)
        if role == "generator":
            return build_generator(settings)
        from localrag import transcribe

        return transcribe.build_transcriber(settings)

    return _Lazy(build)


def _default_parts(settings: Settings, parts: dict[str, Any]) -> dict[str, Any]:
    """`parts` as given, with the real part for each role not overridden (vault engineer)."""
    unknown = set(parts) - {"embedder", "generator", "transcriber"}
    if unknown:
        raise TypeError(f"unknown parts: {sorted(unknown)}")
    return {
        role: parts[role] if role in parts else _real_part(settings, role)
        for role in ("embedder", "generator", "transcriber")
    }


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

    # --- Vault (vault engineer): create, open, vault_exists --------------------------------------

    @staticmethod
    def vault_exists(settings: Settings) -> bool:
        """Whether the home folder holds a vault (or the key file of one)."""
        from localrag import store

        return store.vault_exists(settings)

    @classmethod
    def create(cls, settings: Settings, passphrase: bytearray, **parts: Any) -> Assistant:
        """A new, empty vault under `passphrase` (refuses to overwrite one), opened.

        `parts` may override `embedder=`, `generator=`, `transcriber=` (tests hand in fakes);
        by default the real ones are built from the settings on first use. The caller owns
        `passphrase` and should wipe it afterwards.
        """
        from localrag import store

        built = _default_parts(settings, parts)
        return cls(settings, store.create_vault(settings, passphrase), **built)

    @classmethod
    def open(cls, settings: Settings, passphrase: bytearray, **parts: Any) -> Assistant:
        """Unlock and open the vault; `WrongPassphrase` (nothing touched) if it does not open."""
        from localrag import store

        built = _default_parts(settings, parts)
        return cls(settings, store.open_vault(settings, passphrase), **built)

    # --- end of vault -----------------------------------------------------------------------

    # --- Answers (answer engineer): ask, conversations, turns, status -------------------------

    retrieval_default = True
    """Whether questions use retrieval unless told otherwise (shown by `status()`)."""

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        retrieval: bool = True,
        conversation_id: int | None = None,
        adapter: str | None = None,
    ) -> Answer:
        """Answer from the user's documents with checked citations; the `Answer` streams.

        The question and the answer are stored as turns of a conversation (a new one unless
        `conversation_id` is given); a follow-up uses the conversation's last turns.
        """
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise UsageError("the question is empty")
        generator = self._generator_for(adapter)
        history = self.store.turns(conversation_id) if conversation_id is not None else []
        if conversation_id is None:
            conversation_id = self.store.new_conversation(conversation_title(question))
        sources: list[Source] = []
        abstain = False
        if retrieval:
            query = search_query(question, history)
            hits = self.search(query, k=k or self.settings.top_k)
            vector = self.embedder.embed_query(query)
            dense = self.store.knn(vector, 1)
            abstain = not confident(query, hits, dense[0][1] if dense else None)
            budget = source_budget(
                generator.n_ctx,
                self.settings.max_answer_tokens,
                question,
                history,
                generator.count_tokens,
            )
            sources = [] if abstain else fit_sources(hits, budget, generator.count_tokens)
            abstain = abstain or not sources
        retrieve_ms = (time.perf_counter() - started) * 1000
        messages = build_messages(question, sources, history, retrieval=retrieval)
        self.store.add_turn(conversation_id, "user", question, [])
        store = self.store

        def finish(answer: Answer) -> None:
            citations = [citation_dict(c) | {"text": ""} for c in answer.citations]
            store.add_turn(answer.conversation_id, "assistant", answer.text(), citations)

        return Answer(
            None if abstain else generator.stream(messages, self.settings.max_answer_tokens),
            sources=sources,
            model=generator.name,
            adapter=generator.adapter,
            conversation_id=conversation_id,
            started=started,
            retrieve_ms=retrieve_ms,
            abstain=abstain,
            on_finish=finish,
        )

    def _generator_for(self, adapter: str | None) -> Any:
        if adapter is None:
            return self.generator
        # The adapter registry's `runtime_lora(name)` is a context manager giving a GGUF LoRA
        # file that exists while llama.cpp reads it (it is read whole when the model loads).
        runtime_lora = getattr(self, "runtime_lora", None)
        if runtime_lora is None:
            raise UsageError(f"cannot apply adapter {adapter!r} at run time in this build")
        with runtime_lora(adapter) as lora_path:
            return build_generator(self.settings, lora_path=lora_path, adapter=adapter)

    def conversations(self) -> list[Conversation]:
        return list(self.store.conversations())

    def turns(self, conversation_id: int) -> list[Turn]:
        return list(self.store.turns(conversation_id))

    def status(self) -> dict[str, Any]:
        """What answers questions now: model, adapter, retrieval on or off."""
        loaded = self._generator.get() if self._generator.loaded else None
        model = loaded.name if loaded is not None else models.active_name(self.settings, "llm")
        model = model or "none"
        return {
            "model": model,
            "adapter": getattr(loaded, "adapter", None),
            "retrieval": self.retrieval_default,
            "top_k": self.settings.top_k,
            "context_tokens": self.settings.context_tokens,
            "max_answer_tokens": self.settings.max_answer_tokens,
        }

    # --- end of answers ---------------------------------------------------------------------

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
