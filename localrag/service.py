"""The one object the CLI and the TUI use: `Assistant`.

It is synchronous (llama.cpp, ONNX Runtime and CTranslate2 all block) and is built from its
parts, so tests can hand it fakes; `Assistant.open()` builds the real ones from the settings.
Heavy parts (the LLM, the embedder, Whisper) load on first use, once per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag import models
from localrag.answer import Answer, citation_dict
from localrag.embedder_choice import VaultEmbedders
from localrag.errors import IngestError, LocalragError, UsageError
from localrag.gate import Gate, judge
from localrag.generate import Generator, Grounding
from localrag.model_choice import FixedModel, ModelChoice, WorkerModels
from localrag.prompt import (
    NOT_FOUND,
    STOPS,
    Source,
    build_messages,
    conversation_title,
    fit_sources,
    follows_up,
    search_query,
    source_budget,
)
from localrag.records import (
    Chunk,
    Conversation,
    Document,
    EmbedderInfo,
    EmbedderSwitch,
    Hit,
    IngestEvent,
    NewDocument,
    QaSet,
    ReembedProgress,
    Turn,
)
from localrag.retrieve import Retrieval
from localrag.settings import Settings

if TYPE_CHECKING:  # heavy modules, imported on first use
    from os import PathLike

    import numpy as np

    from localrag.adapter.merge import MergeProgress
    from localrag.adapter.registry import AdapterInfo, Listing
    from localrag.adapter.verify import VerifyReport
    from localrag.embed import Embedder
    from localrag.evaluate.compare import Progress as CompareProgress
    from localrag.evaluate.make_qa import MakeProgress
    from localrag.folders import Folder
    from localrag.record import BlockSource, Recorder, RecordOptions
    from localrag.records import Segment
    from localrag.speakers import SpeakerChoice, SpeakerFinder, SpeakerSummary
    from localrag.speakers.diarize import SpeakerEmbedder
    from localrag.transcribe import TranscribeEvent, Transcriber

log = logging.getLogger(__name__)


class _Lazy:
    """A part built on first use, so that opening the vault does not wait for every model."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None
        # The TUI's workers may reach for a part at once (ingest and ask): build it only once.
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None


def _real_part(settings: Settings, role: str) -> _Lazy:
    """The real embedder or transcriber of the settings, built on first use."""

    def build() -> Any:
        if role == "embedder":
            from localrag import embed

            return embed.from_settings(settings)
        if role == "speakers":
            from localrag import speakers

            return speakers.build_embedder(settings)
        from localrag import transcribe

        return transcribe.build_transcriber(settings)

    return _Lazy(build)


def _default_parts(settings: Settings, parts: dict[str, Any]) -> dict[str, Any]:
    """`parts` as given, with the real part for each role not overridden (the models that answer
    are chosen once the vault is open: see `Assistant.__init__`)."""
    unknown = set(parts) - {
        "embedder",
        "generator",
        "transcriber",
        "speakers",
        "models",
        "microphone",
    }
    if unknown:
        raise TypeError(f"unknown parts: {sorted(unknown)}")
    built = {
        role: parts[role] if role in parts else _real_part(settings, role)
        for role in ("embedder", "transcriber", "speakers")
    }
    return {**parts, **built}


class Assistant:
    """Adds documents and recordings, searches them and answers questions from them."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        embedder: Embedder | _Lazy | None = None,
        generator: Generator | None = None,
        transcriber: Transcriber | _Lazy | None = None,
        models: ModelChoice | None = None,
        microphone: BlockSource | None = None,
        speakers: SpeakerEmbedder | _Lazy | None = None,
    ) -> None:
        """`generator` answers every question (a fake, in tests); else `models` chooses the
        model for each question, by default each in its own model worker. `embedder` is the
        one the settings want; the vault's own serves while a switch is under way. Voice notes
        are recorded from `microphone` (by default `record.default_microphone()`)."""
        self.settings = settings
        self.store = store
        self._embedder = embedder if isinstance(embedder, _Lazy) else _Lazy(lambda: embedder)
        self._embedders = VaultEmbedders(settings, store, self._embedder.get)
        self._transcriber = (
            transcriber if isinstance(transcriber, _Lazy) else _Lazy(lambda: transcriber)
        )
        self._speakers = speakers if isinstance(speakers, _Lazy) else _Lazy(lambda: speakers)
        if models is None and generator is not None:
            models = FixedModel(generator)
        self.models: ModelChoice = models or WorkerModels(settings, store)
        self._microphone = microphone

    @property
    def embedder(self) -> Embedder:
        """The embedder of the vault's vectors: it embeds queries and new documents."""
        return self._embedders.for_vault()

    @property
    def generator(self) -> Generator:
        """The active model."""
        return self.models.generator()

    @property
    def transcriber(self) -> Transcriber:
        return self._transcriber.get()

    def speaker_finder(self, choice: SpeakerChoice | None = None) -> SpeakerFinder | None:
        """What tells a recording's speakers apart, as `choice` (else the settings) asks; None
        when that is off. The voice model loads only when a recording needs it."""
        from localrag.speakers import SpeakerFinder

        if not (choice.enabled if choice is not None else self.settings.speakers):
            return None
        return SpeakerFinder(self._speakers.get, choice.count if choice else None)

    # -- vault -------------------------------------------------------------------------------------

    @staticmethod
    def vault_exists(settings: Settings) -> bool:
        """Whether the home folder holds a vault (or the key file of one)."""
        from localrag import store

        return store.vault_exists(settings)

    @classmethod
    def create(
        cls, settings: Settings, passphrase: bytearray, *, answer_model: bool = True, **parts: Any
    ) -> Assistant:
        """A new, empty vault under `passphrase` (refuses to overwrite one), opened; with the
        real models, the default answer model (`adapter.builtin`) is one of its versions
        (`answer_model=False`: none, for tests of the registry from empty).

        `parts` may override `embedder=`, `generator=`, `transcriber=` (tests hand in fakes);
        by default the real ones are built from the settings on first use. The caller owns
        `passphrase` and should wipe it afterwards.
        """
        from localrag import store

        built = _default_parts(settings, parts)
        vault = store.create_vault(settings, passphrase)
        if answer_model and "generator" not in parts and "models" not in parts:
            from localrag.adapter import builtin

            # Where `models pull` built it, the locally merged answer model is the one that answers.
            builtin.install(vault, settings)
        return cls(settings, vault, **built)

    @classmethod
    def open(cls, settings: Settings, passphrase: bytearray, **parts: Any) -> Assistant:
        """Unlock and open the vault; `WrongPassphrase` (nothing touched) if it does not open."""
        from localrag import store

        built = _default_parts(settings, parts)
        return cls(settings, store.open_vault(settings, passphrase), **built)

    # -- answers -----------------------------------------------------------------------------------

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
        runtime_adapter: bool = False,
    ) -> Answer:
        """Answer from the user's documents with checked citations; the `Answer` streams.

        The question and the answer are stored as turns of a conversation (a new one unless
        `conversation_id` is given); a follow-up uses the conversation's last turns. `adapter`
        names a merged version to answer with (`NAME` or `NAME@vN`), or with `runtime_adapter`
        an adapter applied to the base at run time.
        """
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise UsageError("the question is empty")
        generator = self.models.generator(adapter, runtime=runtime_adapter)
        history = self.store.turns(conversation_id) if conversation_id is not None else []
        if conversation_id is not None and not history:
            raise UsageError(f"no conversation {conversation_id}; see `localrag history`")
        if not follows_up(question, history):
            history = []
        if conversation_id is None:
            conversation_id = self.store.new_conversation(conversation_title(question))
        sources: list[Source] = []
        hits: list[Hit] = []
        verdict = Gate.ANSWER
        retrieve_started = time.perf_counter()
        if retrieval:
            query = search_query(question, history)
            found = self.retrieve(query, k=k or self.settings.top_k)
            hits = found.hits
            verdict = judge(query, hits, found.top_similarity)
            budget = source_budget(
                generator.n_ctx,
                self.settings.max_answer_tokens,
                question,
                history,
                generator.count_tokens,
            )
            if verdict is not Gate.ABSTAIN:
                sources = fit_sources(
                    hits, budget, generator.count_tokens, query, self.settings.source_words
                )
            if not sources:
                verdict = Gate.ABSTAIN
        abstain = verdict is Gate.ABSTAIN
        retrieve_ms = (time.perf_counter() - retrieve_started) * 1000
        messages = build_messages(question, sources, history, retrieval=retrieval)
        self.store.add_turn(conversation_id, "user", question, [])
        store = self.store

        def finish(answer: Answer) -> None:
            citations = [citation_dict(c) for c in answer.citations]
            for c in citations:
                del c["text"]  # the chunk holds it; the turn keeps where it is
            store.add_turn(answer.conversation_id, "assistant", answer.text(), citations)

        grounding = None
        s = self.settings
        if sources and (s.grounded_answers or s.abstain_margin > 0):
            texts = tuple(source.text for source in sources)
            grounding = Grounding(texts, NOT_FOUND, s.grounded_answers, s.abstain_margin)
        return Answer(
            None
            if abstain
            else generator.stream(messages, self.settings.max_answer_tokens, grounding),
            sources=sources,
            retrieved=hits,
            model=generator.name,
            adapter=generator.adapter,
            conversation_id=conversation_id,
            started=started,
            retrieve_ms=retrieve_ms,
            abstain=abstain,
            checked=verdict is Gate.CHECK,
            stops=STOPS,
            question=question,
            on_finish=finish,
        )

    def conversations(self) -> list[Conversation]:
        return list(self.store.conversations())

    def turns(self, conversation_id: int) -> list[Turn]:
        return list(self.store.turns(conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a stored conversation and all its turns (freed pages are overwritten)."""
        if all(c.id != conversation_id for c in self.store.conversations()):
            raise UsageError(f"no conversation {conversation_id}; see `localrag history`")
        self.store.delete_conversation(conversation_id)

    def status(self) -> dict[str, Any]:
        """What answers questions now: model, adapter, retrieval on or off."""
        loaded = self.models.loaded()
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

    # -- library -----------------------------------------------------------------------------------

    def add(
        self, paths: Iterable[Path], speakers: SpeakerChoice | None = None
    ) -> Iterator[IngestEvent]:
        """Add files and folders (recursively); a stream of events, each file ending final.
        `speakers` says how to tell a recording's speakers apart (default: the settings)."""
        from localrag.ingest.pipeline import add_paths

        return add_paths(
            self.store,
            self.embedder,
            paths,
            transcriber=lambda: self.transcriber,
            speakers=lambda: self.speaker_finder(speakers),
            partials=lambda: self.store.partials,
        )

    def documents(self) -> list[Document]:
        return list(self.store.documents())

    def folders(self) -> list[Folder]:
        from localrag import folders

        return folders.registered(self.store)

    def watch_folder(self, path: Path, ignore: list[str] | None = None) -> Folder:
        """Register a folder to keep in sync (`sync`, `watch`); its documents come with `sync`."""
        from localrag import folders

        return folders.register(self.store, path, ignore or [], self.settings.home)

    def unwatch_folder(self, path: Path | str, forget: bool = False) -> tuple[Folder, int]:
        """Stop watching a folder; `forget` also deletes its documents (how many is returned)."""
        from localrag import folders

        return folders.unregister(self.store, path, forget)

    def sync(self) -> Iterator[IngestEvent]:
        """Bring the vault in line with the watched folders: new, changed and moved files
        indexed, the documents of deleted or ignored files removed completely."""
        from localrag import folders

        return folders.sync(self.store, self.add, self.settings.home)

    def watch(
        self, stop: threading.Event, interval: float = 2.0, quiet: float = 1.0
    ) -> Iterator[IngestEvent]:
        """Sync, then sync again whenever the watched folders change, until `stop` is set."""
        from localrag import folders

        return folders.watch(self.store, self.sync, self.settings.home, stop, interval, quiet)

    def remove(self, id_or_path: str, history: str = "scrub") -> Document:
        """Delete a document completely (chunks, vectors, keyword index, transcript), and
        scrub (or, with `history="delete"`, delete) the conversation turns that quote or cite it."""
        doc = self.store.document(id_or_path)
        if doc is None and not str(id_or_path).isdigit():
            doc = self.store.document(str(Path(id_or_path).expanduser().resolve()))
        if doc is None:
            path = str(Path(id_or_path).expanduser().resolve())
            if waiting := self.store.partials.drop_path(path):
                raise UsageError(
                    f"{id_or_path}: not in the vault (its transcription never finished); the "
                    f"{waiting} windows it had transcribed were deleted"
                )
            raise UsageError(f"{id_or_path}: no such document in the vault; see `localrag docs`")
        self.store.delete_document(doc.id, history)
        return doc

    def retrieve(self, query: str, k: int = 10, mode: str = "hybrid") -> Retrieval:
        """The hits with the signals the abstain gate judges them by (`gate.judge`)."""
        from localrag.retrieve import retrieve
        from localrag.store.store import VectorsChanged

        def embedder() -> Embedder | None:
            return None if mode == "keyword" else self.embedder  # keywords need no embedder

        try:
            return retrieve(self.store, embedder(), query, k, mode)
        except VectorsChanged:
            # A switch finished (another process, or a thread) between choosing the embedder
            # and searching: choose again, once.
            return retrieve(self.store, embedder(), query, k, mode)

    def keep_search_warm(self) -> None:
        """For a long-lived process (the app): keep every vector's code in memory so that each
        search finds its vector candidates there (`store/warm.py`). Built in the background;
        searches use the vault's `vec0` until then and after any change until it is rebuilt."""
        self.store.keep_vectors_warm(wait=False)

    def prepare_answers(self) -> None:
        """Start the embedder and the active model's worker now (for the app, on opening), so
        that the first question does not wait for them; a model that cannot start says so when
        it is asked."""
        try:
            self.embedder.embed_query("warm up")  # the session's first run is its slowest
            self.models.generator()
        except LocalragError as e:
            log.info("the model worker did not start ahead of the first question: %s", e)

    # -- the embedder ------------------------------------------------------------------------------

    def embedder_info(self) -> EmbedderInfo | None:
        """The embedder that made the vault's vectors (None before the first one)."""
        return self.store.embedder_info()

    def embedder_switch(self) -> EmbedderSwitch | None:
        """The switch of embedder under way, with its progress; None if there is none."""
        return self.store.embedder_switch()

    def reembed(
        self, to: Embedder | None = None, batch_chunks: int | None = None
    ) -> Iterator[ReembedProgress]:
        """Switch the vault to `to` (default: the embedder the settings want), or resume the
        switch: every chunk re-embedded in batches, each stored as it is done, the new vectors
        swapped in at the end; search uses the old ones until then. See `localrag.reembed`.

        With the embedder the vectors already come from, a switch under way is cancelled."""
        from localrag import reembed

        self._embedders.adopt()  # an older vault records its embedder before it switches
        target = to if to is not None else self._embedders.wanted()
        if to is not None:
            self._embedders.remember(to)
        batch = batch_chunks or reembed.BATCH_CHUNKS
        return reembed.reembed(self.store, target, batch)

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        return self.retrieve(query, k, mode).hits

    def chunk_context(self, chunk_id: int, before: int = 1, after: int = 1) -> list[Chunk]:
        """The chunk with its neighbours in the same document, in order."""
        return list(self.store.neighbours(chunk_id, before, after))

    # -- audio -------------------------------------------------------------------------------------

    def transcribe(
        self, path: str | Path, index: bool = True, speakers: SpeakerChoice | None = None
    ) -> Iterator[TranscribeEvent]:
        """Transcribe a recording: `TranscribeEvent`s with each segment, the share of the audio
        done and the real-time factor; unless `index` is False the transcript is then chunked,
        embedded and stored like `add()` does (the document replaces one of the same path), and a
        last `indexed` event carries its id. The audio is decoded from the file a window at a
        time (`localrag.recording`), never written; with `index`, an interrupted run resumes.
        Unless `speakers` (or the settings) turn it off, a `speakers` event after `done` carries
        the segments with their speakers.
        """
        from localrag.models import sha256_file
        from localrag.recording import transcribe_file
        from localrag.transcribe import check_extension

        transcriber = self.transcriber  # loaded first: the real-time factor is of the work alone
        started = time.perf_counter()
        source = Path(path).expanduser().resolve()
        check_extension(source)
        try:
            sha, size = sha256_file(source), source.stat().st_size
        except OSError as exc:
            raise IngestError(f"{source}: cannot read it ({exc.strerror})") from exc
        doc = NewDocument(str(source), sha, "audio", size, source.name)
        # Only the vault path resumes: `--no-index` keeps nothing, not even finished windows.
        events = transcribe_file(
            source,
            transcriber,
            finder=self.speaker_finder(speakers),
            saved=self.store.partials if index else None,
            sha256=sha,
            started=started,
        )
        yield from self._indexed(events, doc, index, started)

    @property
    def microphone(self) -> BlockSource:
        if self._microphone is None:
            from localrag.record import default_microphone

            self._microphone = default_microphone()
        return self._microphone

    def recorder(self, options: RecordOptions | None = None) -> Recorder:
        """A voice-note recorder on the microphone, stopping as `options` say (by default as
        the settings say); `Recorder.run()` records, then `record_note()` stores the note."""
        from localrag.record import Recorder, RecordOptions

        return Recorder(self.microphone, options or RecordOptions.from_settings(self.settings))

    def record_note(
        self, audio: np.ndarray, name: str | None = None, index: bool = True
    ) -> Iterator[TranscribeEvent]:
        """Transcribe a voice note held in memory (16 kHz mono float32) and store its transcript
        under `name` (default: "voice note <date time>"); events as for `transcribe()`."""
        from localrag.ingest.audio import voice_note_document, voice_note_name
        from localrag.transcribe import SAMPLE_RATE, transcribe_events

        doc = voice_note_document(audio, name or voice_note_name(), len(audio) / SAMPLE_RATE)
        transcriber = self.transcriber  # loaded first: the real-time factor is of the work alone
        started = time.perf_counter()
        events = transcribe_events(transcriber, audio, doc.path, started)
        yield from self._indexed(events, doc, index, started)

    def _indexed(
        self, events: Iterable[TranscribeEvent], doc: NewDocument, index: bool, started: float
    ) -> Iterator[TranscribeEvent]:
        """The events of a transcription, then (unless `index` is False) the transcript stored
        with `doc` and an `indexed` event."""
        import dataclasses

        from localrag.ingest.audio import index_transcript, transcript_extracted

        segments: list[Segment] = []
        last = None
        for last in events:
            if last.segment is not None:
                segments.append(last.segment)
            if last.segments:
                segments = list(last.segments)
            yield last
        if index and last is not None:
            extracted = transcript_extracted(Path(doc.path), segments, last.duration_s)
            doc_id = index_transcript(self.store, self.embedder, doc, extracted)
            elapsed_s = time.perf_counter() - started
            yield dataclasses.replace(last, status="indexed", doc_id=doc_id, elapsed_s=elapsed_s)

    def speakers(self, doc_id: int | str) -> list[SpeakerSummary]:
        """Who speaks in a recording: each speaker's name, talk time and number of turns."""
        from localrag.speakers import summarize

        return summarize(self.transcript(doc_id))

    def rename_speaker(self, doc_id: int | str, speaker: str, name: str) -> int:
        """Call `speaker` ("Speaker 2", or the name given before) of a recording `name`: its
        citations, transcript and search use the new name. Returns how many chunks changed."""
        from localrag.chunk import text_under_heading
        from localrag.speakers import check_new_name

        doc = self._recording(doc_id)
        label = self._speaker_label(doc, speaker)
        shown = self.store.speaker_names(doc.id).get(label, label)
        name = check_new_name(name, {s.name for s in self.speakers(doc.id)} - {shown})
        chunks = [c for c in self.store.document_chunks(doc.id) if c.span.speaker == shown]
        vectors = self.embedder.embed_documents([text_under_heading(c.text, name) for c in chunks])
        self.store.rename_speaker(doc.id, label, name, [c.id for c in chunks], vectors)
        return len(chunks)

    def _speaker_label(self, doc: Document, speaker: str) -> str:
        """The stored label ("Speaker 2") of the speaker shown as `speaker` in a recording."""
        names = self.store.speaker_names(doc.id)
        labels = {name: label for label, name in names.items()}
        known = {s.speaker for s in self.store.transcript(doc.id) if s.speaker}
        if speaker in labels:
            return labels[speaker]
        if speaker in known or speaker in names:
            return speaker
        listed = ", ".join(sorted(known)) or "none (one voice, or added without speakers)"
        raise UsageError(f"{doc.path}: no speaker {speaker!r}; its speakers are {listed}")

    def _recording(self, doc_id: int | str) -> Document:
        doc = self.store.document(doc_id)
        if doc is None:
            raise UsageError(f"{doc_id}: no such document in the vault; see `localrag docs`")
        if doc.kind != "audio":
            raise UsageError(f"{doc.path}: not a recording, it has no speakers")
        return doc

    def transcript(self, doc_id: int | str) -> list[Segment]:
        """The stored transcript of a recording, by document id or path."""
        doc = self.store.document(doc_id)
        if doc is None:
            raise UsageError(f"{doc_id}: no such document in the vault; see `localrag docs`")
        if doc.kind != "audio":
            raise UsageError(f"{doc.path}: not a recording, it has no transcript")
        return list(self.store.transcript(doc.id))

    # -- evaluation --------------------------------------------------------------------------------

    def qa_sets(self) -> list[QaSet]:
        """The question sets made from the vault (`make_qa`)."""
        return self.store.evaluations.sets()

    def delete_qa_set(self, name: str) -> None:
        if not self.store.evaluations.delete_set(name):
            raise UsageError(f"no question set named {name!r}; see `localrag eval sets`")
        self.store.checkpoint()

    def make_qa(
        self, n: int = 20, name: str | None = None, *, seed: int = 0
    ) -> Iterator[MakeProgress]:
        """Make a question set from the vault's chunks with the base model (see
        `evaluate.make_qa`); the last event names the stored set."""
        from localrag.evaluate import make_qa

        return make_qa.make_set(self, n, name, seed=seed)

    def compare_set(
        self,
        name: str,
        *,
        adapter: str | None = None,
        limit: int | None = None,
        held_out: bool = False,
        k: int | None = None,
    ) -> Iterator[CompareProgress]:
        """Ask a question set under each configuration (base, base + retrieval, and the adapter
        alone and with retrieval when one is named or active); the last event has the result.
        Answers are kept in the vault as they come: the same call after an interruption
        resumes."""
        from localrag.evaluate import compare
        from localrag.evaluate.qa import spread

        version = compare.resolve_adapter(self.store, adapter)
        items = spread(compare.set_items(self.store, name, held_out), limit)
        info = self.store.evaluations.set_info(name)
        meta = {
            "source": f"set:{name}" + (" (held out)" if held_out else ""),
            "asked_back": info.asked_back if info is not None else 0,
            "model": models.active_name(self.settings, "llm"),
            "adapter": version,
            "grounded": self.settings.grounded_answers,
        }
        return compare.compare(
            self,
            items,
            compare.configurations(version),
            self.store.evaluations,
            k=k or self.settings.top_k,
            meta=meta,
            forget_turns=True,
        )

    def last_compare(self) -> dict[str, Any] | None:
        """The result of the compare that finished last (kept in the vault), if any."""
        return self.store.evaluations.last_result()

    # -- adapters ----------------------------------------------------------------------------------

    def adapters(self) -> Listing:
        """The imported adapters, their merged versions and the active one."""
        from localrag.adapter.registry import Registry

        return Registry(self.store).listing()

    def import_adapter(self, path: str | PathLike[str], name: str) -> AdapterInfo:
        """Check a PEFT folder or GGUF LoRA against the base model and store it in the vault."""
        from localrag.adapter import manage

        return manage.import_adapter(self.store, self.settings, Path(path), name)

    def merge_adapter(self, name: str, quant: str = "Q4_K_M") -> Iterator[MergeProgress]:
        """Merge into the base and quantize: progress events, the last (`done`) names `NAME@vN`."""
        from localrag.adapter import manage

        return manage.merge_adapter(self.store, self.settings, name, quant)

    def use_adapter(self, ref: str) -> str | None:
        """Answer with `NAME[@vN]` (merged) or `base` from now on; the new active ref."""
        from localrag.adapter.registry import Registry

        return Registry(self.store).use(ref)

    def rollback_adapter(self) -> str | None:
        """Go back to the model active before the last `use_adapter`; the new active ref."""
        from localrag.adapter.registry import Registry

        return Registry(self.store).rollback()

    def remove_adapter(self, ref: str) -> list[str]:
        """Delete `NAME` (and all its versions) or `NAME@vN` from the vault; what was removed."""
        from localrag.adapter import manage

        return manage.remove(self.store, ref)

    def verify_adapter(self, ref: str) -> VerifyReport:
        """Compare the merge of `NAME@vN` with the base plus llama.cpp's runtime LoRA."""
        from localrag.adapter import manage

        return manage.verify_version(self.store, self.settings, ref)

    def close(self) -> None:
        self.models.close()
        self._embedders.close()
        for part in (self._embedder, self._transcriber, self._speakers):
            if part.loaded and hasattr(part.get(), "close"):
                part.get().close()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
