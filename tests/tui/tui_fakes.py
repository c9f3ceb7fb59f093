"""A stand-in for `Assistant` with the service contract's methods, for fast TUI tests.

Answers are real `localrag.answer.Answer` objects, so the app is driven exactly as by the core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from localrag.adapter import manage
from localrag.adapter.convert import BaseShape
from localrag.adapter.merge import MergeProgress
from localrag.adapter.registry import AdapterInfo, Listing, Version, check_name
from localrag.answer import Answer, citation_dict
from localrag.errors import AdapterError, LocalragError, UsageError, WrongPassphrase
from localrag.folders import Folder
from localrag.prompt import Source
from localrag.record import BlockSource, Playback, Recorder, RecordOptions
from localrag.records import Chunk, Conversation, Document, Hit, IngestEvent, Segment, Span, Turn
from localrag.transcribe import SAMPLE_RATE, TranscribeEvent

PASSPHRASE = "correct horse battery"
VOICE_NOTE = "voice note 2026-11-25 09:00:00"
DATE = "2026-11-25T09:00:00+00:00"
BASE_SHA = "1a2b3c4d5e6f" + "0" * 52
ADAPTER_SHA = "9f8e7d6c5b4a" + "0" * 52
TINY_BASE = BaseShape(
    "llama", 1, 4, 2, {"blk.0.attn_q.weight": (16, 16), "blk.0.attn_v.weight": (8, 16)}
)
"""The base the fake fits imported adapters to: one llama layer, 4 query heads, 2 key/value."""


def chunk(doc: Document, ordinal: int) -> Chunk:
    if doc.kind == "audio":
        span = Span(start_s=10.0 * ordinal, end_s=10.0 * ordinal + 10)
    else:
        span = Span(page=1, line_start=10 * ordinal + 1, line_end=10 * ordinal + 9)
    text = f"Passage {ordinal + 1} of {Path(doc.path).name}: the launch code is blue-{ordinal}."
    return Chunk(doc.id * 100 + ordinal, doc.id, doc.path, ordinal, text, span, doc.kind)


class SteadyAnswer(Answer):
    """An `Answer` whose timings are fixed, so snapshots do not change from run to run."""

    def _timings(self, first_at: float, end: float) -> None:
        self.timings_ms.update(first_token=85.0, total=400.0)
        self.tokens_per_s = 96.0


class FakeAssistant:
    def __init__(self, documents: list[Document] | None = None) -> None:
        self.docs: list[Document] = list(documents or [])
        self.convs: dict[int, list[Turn]] = {}
        self.asked: list[dict[str, Any]] = []
        self.slow = False
        """Stream an endless answer, slowly, until cancelled (or `slow` is set back)."""
        self.fail_ask: LocalragError | None = None
        self.reply: str | None = None
        self.release_ingest = threading.Event()
        self.release_ingest.set()
        self.closed = False
        self.search_warm = False
        self.answers_prepared = False
        self.active: str | None = None
        self.previous: list[str | None] = []
        self.adapter_list = [adapter_info("legal")]
        self.versions = [version("legal", 1, "Q4_K_M")]
        self.merges: list[tuple[str, str]] = []
        self.verified: list[str] = []
        self.release_merge = threading.Event()
        self.release_merge.set()
        self.microphone: BlockSource = Playback(beep_then_quiet(), "Fake microphone")
        """What Ctrl+T records: a second of tone, then a quiet room (stops by the silence)."""

    # Library

    def documents(self) -> list[Document]:
        return list(self.docs)

    def add(self, paths: list[Path]) -> Iterator[IngestEvent]:
        for path in paths:
            p = str(path)
            if path.suffix in (".gz", ".conf"):  # as the pipeline reports them: no start
                yield IngestEvent(p, "skipped", detail=f"{p}: unsupported format {path.suffix}")
                continue
            yield IngestEvent(p, "started")
            if path.suffix == ".bad":
                yield IngestEvent(p, "failed", detail="not a document this version can read")
                continue
            if path.suffix == ".flac":  # transcribed first, as the pipeline reports it
                yield IngestEvent(p, "progress", fraction=0.42, rtf=0.06)
                self.release_ingest.wait(10)
                yield IngestEvent(p, "progress", chunks_done=1, chunks_total=3)
            else:
                yield IngestEvent(p, "progress", chunks_done=1, chunks_total=3, fraction=0.4)
                self.release_ingest.wait(10)
            doc = Document(
                id=len(self.docs) + 1,
                path=p,
                sha256="0" * 64,
                kind="audio" if path.suffix == ".flac" else "txt",
                size_bytes=path.stat().st_size,
                title=path.name,
                chunk_count=3,
                added_at=DATE,
            )
            self.docs.append(doc)
            yield IngestEvent(
                p, "added", doc_id=doc.id, chunks_done=3, chunks_total=3, fraction=1.0
            )

    def folders(self) -> list[Folder]:
        return []

    def remove(self, id_or_path: str) -> Document:
        doc = next(d for d in self.docs if str(d.id) == id_or_path or d.path == id_or_path)
        self.docs.remove(doc)
        return doc

    def chunk_context(self, chunk_id: int, before: int = 1, after: int = 1) -> list[Chunk]:
        doc = next((d for d in self.docs if d.id == chunk_id // 100), None)
        if doc is None:
            raise UsageError(f"chunk {chunk_id}: no such chunk in the vault")
        ordinal = chunk_id % 100
        return [
            chunk(doc, i)
            for i in range(max(0, ordinal - before), min(doc.chunk_count, ordinal + after + 1))
        ]

    def transcript(self, doc_id: int) -> list[Segment]:
        return [Segment(5.0 * i, 5.0 * i + 5, f"segment {i} said this") for i in range(40)]

    # Voice notes

    def recorder(self, options: RecordOptions | None = None) -> Recorder:
        return Recorder(self.microphone, options or RecordOptions())

    def record_note(self, audio: np.ndarray, name: str | None = None) -> Iterator[TranscribeEvent]:
        path, duration_s = name or VOICE_NOTE, len(audio) / SAMPLE_RATE
        heard = Segment(0.5, 1.5, "Buy more coffee filters.")
        yield TranscribeEvent(path, "segment", duration_s, duration_s, segment=heard)
        doc = Document(len(self.docs) + 1, path, "0" * 64, "audio", audio.nbytes, path, 1, DATE)
        self.docs.append(doc)
        yield TranscribeEvent(path, "indexed", duration_s, duration_s, doc_id=doc.id)

    # Answers

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
        self.asked.append(
            {
                "question": question,
                "retrieval": retrieval,
                "conversation_id": conversation_id,
                "adapter": adapter,
                "runtime_adapter": runtime_adapter,
            }
        )
        if self.fail_ask is not None:
            raise self.fail_ask
        if conversation_id is None:
            conversation_id = len(self.convs) + 1
            self.convs[conversation_id] = []
        turns = self.convs[conversation_id]
        turns.append(Turn(len(turns) + 1, conversation_id, "user", question, DATE))
        sources = (
            [Source(i + 1, Hit(chunk(d, 0), 0.9 - i / 10)) for i, d in enumerate(self.docs[:2])]
            if retrieval
            else []
        )
        reply = self.reply or (
            "The launch code is **blue-0** [1]." if sources else f"You asked: {question}"
        )

        def tokens() -> Iterator[str]:
            # Ends once `slow` is False again, so a failing test does not leave it running.
            while self.slow:
                time.sleep(0.02)
                yield "more "
            for word in reply.split(" "):
                yield word + " "

        def finish(answer: Answer) -> None:
            turns.append(
                Turn(
                    len(turns) + 1,
                    conversation_id,
                    "assistant",
                    answer.text(),
                    DATE,
                    [citation_dict(c) for c in answer.citations],
                )
            )

        return SteadyAnswer(
            tokens(),
            sources=sources,
            model="fake-model",
            adapter=adapter,
            conversation_id=conversation_id,
            retrieve_ms=12.0,
            question=question,
            on_finish=finish,
        )

    def conversations(self) -> list[Conversation]:
        return [
            Conversation(cid, turns[0].text[:40] if turns else "", DATE, DATE, len(turns))
            for cid, turns in self.convs.items()
        ]

    def turns(self, conversation_id: int) -> list[Turn]:
        return list(self.convs[conversation_id])

    def status(self) -> dict[str, Any]:
        return {"model": "fake-model", "adapter": None, "retrieval": True}

    def keep_search_warm(self) -> None:
        self.search_warm = True

    def prepare_answers(self) -> None:
        self.answers_prepared = True

    # Adapters

    def adapters(self) -> Listing:
        return Listing(list(self.adapter_list), list(self.versions), self.active)

    def import_adapter(self, path: str | Path, name: str) -> AdapterInfo:
        """The core's own reading and refusals (pickle, shapes, truncation), against `TINY_BASE`."""
        check_name(name)
        if any(a.name == name for a in self.adapter_list):
            raise UsageError(f"an adapter named {name!r} exists; choose another name")
        lora, source_format, sha = manage.read_adapter(Path(path), TINY_BASE)
        info = AdapterInfo(
            name=name,
            source=str(Path(path).resolve()),
            source_format=source_format,
            sha256=sha,
            rank=lora.rank,
            alpha=lora.alpha,
            targets=sorted({n.split(".")[2] for n in lora.tensors}),
            tensor_count=len(lora.tensors),
            base_sha256=BASE_SHA,
            imported_at=DATE,
        )
        self.adapter_list.append(info)
        return info

    def _adapter(self, name: str) -> AdapterInfo:
        found = next((a for a in self.adapter_list if a.name == name), None)
        if found is None:
            raise AdapterError(f"no adapter named {name!r}")
        return found

    def _version_ref(self, ref: str) -> str | None:
        if ref == "base":
            return None
        name, _, n = ref.partition("@v")
        self._adapter(name)
        refs = [v.ref for v in self.versions if v.name == name and (not n or v.n == int(n))]
        if not refs:
            raise AdapterError(f"{name} has no merged version yet; merge it first")
        return refs[-1]

    def use_adapter(self, ref: str) -> str | None:
        target = self._version_ref(ref)
        self.previous.append(self.active)
        self.active = target
        return self.active

    def rollback_adapter(self) -> str | None:
        if not self.previous:
            raise AdapterError("nothing to roll back to: the active model was never changed")
        self.active = self.previous.pop()
        return self.active

    def merge_adapter(self, name: str, quant: str = "Q4_K_M") -> Iterator[MergeProgress]:
        """Four weights; waits after the second for `release_merge`, so a test sees it run."""
        self._adapter(name)
        self.merges.append((name, quant))
        for i in range(4):
            yield MergeProgress("merge", i + 1, 4, f"blk.{i}.attn_q.weight")
            if i == 1:
                self.release_merge.wait(10)
        yield MergeProgress("quantize", detail=quant)
        n = max((v.n for v in self.versions if v.name == name), default=0) + 1
        yield MergeProgress("store", detail=f"adapter/{name}@v{n}/model.gguf")
        self.versions.append(version(name, n, quant))
        yield MergeProgress("done", detail=f"{name}@v{n}")

    def remove_adapter(self, ref: str) -> list[str]:
        name, _, n = ref.partition("@v")
        self._adapter(name)
        if n:
            gone = [self._version_ref(ref)]
        else:
            gone = [name, *(v.ref for v in self.versions if v.name == name)]
            self.adapter_list = [a for a in self.adapter_list if a.name != name]
        self.versions = [v for v in self.versions if v.ref not in gone]
        self.previous = [p for p in self.previous if p not in gone]
        if self.active in gone:
            self.active = None
        return [g for g in gone if g is not None]

    def verify_adapter(self, ref: str) -> SimpleNamespace:
        """Shaped like `localrag.adapter.verify.VerifyReport`, as far as the app reads it."""
        self.verified.append(ref)
        agreement = SimpleNamespace(max_rel_logit_diff=0.002, top1_agreement=1.0)
        return SimpleNamespace(ref=self._version_ref(ref), ok=True, f16_vs_runtime=agreement)

    def close(self) -> None:
        self.closed = True


class FakeVault:
    """A vault access whose passphrase is `PASSPHRASE`."""

    def __init__(self, exists: bool, assistant: FakeAssistant | None = None) -> None:
        self._exists = exists
        self.assistant = assistant or FakeAssistant()
        self.created_with: bytes | None = None
        self.seen: list[bytearray] = []

    def exists(self) -> bool:
        return self._exists

    def create(self, passphrase: bytearray) -> FakeAssistant:
        self.seen.append(passphrase)
        self.created_with = bytes(passphrase)
        self._exists = True
        return self.assistant

    def open(self, passphrase: bytearray) -> FakeAssistant:
        self.seen.append(passphrase)
        if bytes(passphrase) != PASSPHRASE.encode():
            raise WrongPassphrase()
        return self.assistant


def beep_then_quiet() -> np.ndarray:
    """Half a second of quiet, a second of a 440 Hz tone at -23 dBFS: a stand-in for a voice."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.concatenate([np.zeros(SAMPLE_RATE // 2, dtype=np.float32), tone])


def document(doc_id: int, name: str, kind: str = "txt", size_bytes: int = 12_345) -> Document:
    return Document(doc_id, f"/docs/{name}", "0" * 64, kind, size_bytes, name, 3, DATE)


def adapter_info(name: str) -> AdapterInfo:
    return AdapterInfo(
        name=name,
        source=f"/adapters/{name}",
        source_format="peft",
        sha256=ADAPTER_SHA,
        rank=8,
        alpha=16.0,
        targets=["attn_q", "attn_v"],
        tensor_count=60,
        base_sha256=BASE_SHA,
        imported_at=DATE,
    )


def version(name: str, n: int, quant: str) -> Version:
    return Version(
        name=name,
        n=n,
        quant=quant,
        base_model="SmolLM2-135M-Instruct",
        base_sha256=BASE_SHA,
        adapter_sha256=ADAPTER_SHA,
        alpha=16.0,
        rank=8,
        size_bytes=98_100_000,
        sha256=f"{n:x}" * 64,
        created_at=f"2026-11-25T1{n}:00:00+00:00",
        merge_s=12.5,
    )
