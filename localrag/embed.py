"""Text to vectors: the ONNX sentence embedder, and a hashing fake for fast tests.

An embedder has `name`, `fingerprint`, `dim`, `max_tokens`, `embed_documents(texts) -> (n, dim)
float32`, `embed_query(text) -> (dim,) float32` and `count_tokens(texts) -> list[int]`. Vectors
are L2-normalised, so a dot product is the cosine similarity. Documents and queries are separate
calls so that an embedder with query/passage prefixes can tell them apart. The `fingerprint`
says which vectors it makes (the hash of its files): the vault records it beside its vectors and
is searched only by the embedder that made them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from localrag.errors import ModelError
from localrag.records import EmbedderInfo
from localrag.settings import Settings

log = logging.getLogger(__name__)

WORD = re.compile(r"\w+", re.UNICODE)
PAD_RATIO = 0.9
"""A text joins a batch only if it is at least this share of the batch's longest text."""


class Embedder(Protocol):
    name: str
    max_tokens: int

    @property
    def fingerprint(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def identity(embedder: Embedder) -> EmbedderInfo:
    """What the vault records about the embedder that made its vectors."""
    return EmbedderInfo(embedder.name, embedder.fingerprint, int(embedder.dim))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxEmbedder:
    """A BERT-style sentence embedder in ONNX: mean pooling of `last_hidden_state`, L2-normalised.

    Texts are tokenized in one call, sorted by length and run in batches padded only to the
    longest text of the batch, so short texts do not pay for long ones.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_tokens: int = 256,
        batch_tokens: int = 8192,
        threads: int = 0,
        name: str | None = None,
        one_shot: bool = False,
        fingerprint: str | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
        for f in (model, tokenizer):
            if not f.is_file():
                raise ModelError(
                    f"{f}: missing; an ONNX embedder folder needs model.onnx and tokenizer.json"
                )
        self.name = name or folder.name
        self._folder = folder
        self._fingerprint = fingerprint
        self.max_tokens = max_tokens
        self.batch_tokens = batch_tokens
        self._tokenizer_file = tokenizer
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self._counter: Any = None
        self._model = model
        self._threads = threads
        self._one_shot = one_shot
        # Each session is made on first use: `search` needs the query one only, `add` the other.
        self._documents_session: Any = None
        self._query_session: Any = None
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """The hash of the folder's files (as `models add` records it), given by `from_settings`
        or computed on first use."""
        if self._fingerprint is None:
            from localrag.models import sha256_model

            self._fingerprint = sha256_model(self._folder)
        return self._fingerprint

    @property
    def session(self) -> Any:
        """The session for batches of documents (its threads spin between runs)."""
        return self._made("_documents_session", spinning=True)

    @property
    def query_session(self) -> Any:
        """The session for one query at a time (its threads sleep once done)."""
        return self._made("_query_session", spinning=False)

    def _made(self, attribute: str, spinning: bool) -> Any:
        if getattr(self, attribute) is None:
            with self._lock:  # the app's workers may ask at once: make it only once
                if getattr(self, attribute) is None:
                    setattr(self, attribute, self._session(spinning))
        return getattr(self, attribute)

    @property
    def dim(self) -> int:
        session = self._query_session or self.session
        return int(session.get_outputs()[0].shape[-1])

    def _session(self, spinning: bool) -> Any:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # off already by ORT_DISABLE_TELEMETRY (localrag.hardening)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self._threads:
            options.intra_op_num_threads = self._threads
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if self._one_shot:
                # The model keeps its weights as int8 and widens them as it runs; ONNX Runtime's
                # graph optimizer folds them into float32 once, which pays back only over many
                # runs. Measured here (5 rounds, median): session + first query 398 ms without
                # it against 568 ms with it, peak RSS 184 MB against 267 MB; each later query
                # costs about 5x more, so only a process that embeds one query skips it.
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(
                str(self._model), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad file
            raise ModelError(f"{self._model}: not a loadable ONNX model ({exc})") from exc
        self._inputs = {i.name for i in session.get_inputs()}
        return session

    @property
    def _tokens_counter(self) -> Any:
        """A second tokenizer, without truncation, to count and place tokens (made on first use)."""
        if self._counter is None:
            from tokenizers import Tokenizer

            counter = Tokenizer.from_file(str(self._tokenizer_file))
            counter.no_padding()
            counter.no_truncation()
            self._counter = counter
        return self._counter

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in tokens, without special tokens or truncation."""
        encodings = self._tokens_counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each token of `text` (no special tokens, no truncation)."""
        return list(self._tokens_counter.encode(text, add_special_tokens=False).offsets)

    def _run(self, ids: np.ndarray, mask: np.ndarray, session: Any = None) -> np.ndarray:
        session = session or self.session
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(pooled)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            size = max(1, self.batch_tokens // max(longest, 1))
            # Only texts nearly as long as the first share its batch: padding is wasted work.
            end = start + 1
            while (
                end < min(start + size, len(order)) and lengths[order[end]] >= PAD_RATIO * longest
            ):
                end += 1
            batch = order[start:end]
            ids = np.zeros((len(batch), longest), dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for row, i in enumerate(batch):
                e = encodings[i]
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            out[batch] = self._run(ids, mask)
            start = end
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """One short text, in a session whose threads do not spin once done.

        A query is embedded while the keyword search runs, and ONNX Runtime's threads spin
        for a while after each run by default, taking the cores from it (here, embedding a
        query alone: p50 12.6 ms, p95 23.9 with spinning; 8.6 and 12.2 without). Batches of
        documents keep spinning, which makes them about 5 % faster.
        """
        session = self.query_session
        ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
        return self._run(ids, np.ones_like(ids), session)[0]

    def close(self) -> None:
        pass


class HashingEmbedder:
    """A fast, deterministic fake for tests: words and word pairs hashed into a vector.

    Texts sharing words get similar vectors, which is enough to test retrieval end to end.
    Another `seed` hashes the same words elsewhere: another embedder, as far as a vault can tell.
    """

    def __init__(self, dim: int = 384, max_tokens: int = 256, seed: int = 0) -> None:
        self.name = f"hashing-{dim}" + (f"-{seed}" if seed else "")
        self.fingerprint = f"hashing:{dim}:{seed}"
        self.dim = dim
        self.max_tokens = max_tokens
        self._key = seed.to_bytes(8, "little") if seed else b""

    @staticmethod
    def words(text: str) -> list[str]:
        return WORD.findall(text.lower())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.words(t)) for t in texts]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in WORD.finditer(text)]

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = self.words(text)[: self.max_tokens]
        for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
            h = hashlib.blake2b(feature.encode(), digest_size=8, key=self._key).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack([self._vector(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        pass


def from_settings(
    settings: Settings, *, name: str | None = None, one_shot: bool = False
) -> OnnxEmbedder:
    """The embedder `name` (default: the one that serves the role `embedder`), checked by
    SHA-256 before it is loaded.

    `one_shot`: for a process that embeds a single query (see `OnnxEmbedder._session`).
    """
    from localrag.models import resolve

    model = resolve(settings, "embedder", name)
    folder = model.path if model.path.is_dir() else model.path.parent
    log.info("loading embedder %s from %s", model.name, folder)
    return OnnxEmbedder(folder, name=model.name, one_shot=one_shot, fingerprint=model.sha256)


class Preloading:
    """An embedder being built in a background thread, which also embeds the first query.

    A fresh `localrag search` knows its query before it has unlocked the vault: the thread
    checks the model's hash, loads the tokenizer, makes the ONNX session and embeds the query
    while the main thread derives the key (Argon2id) and opens the vault. Hashing, Argon2id and
    ONNX Runtime all release the GIL, so on two cores the two overlap. A failure (a missing or
    altered model) is raised where the embedder is first used.
    """

    def __init__(self, build: Callable[[], Any], first_query: str | None = None) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._first = first_query
        self._first_vector: np.ndarray | None = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self._value = build()
                if first_query is not None:
                    self._first_vector = self._value.embed_query(first_query)
            except BaseException as exc:  # handed to the caller at first use
                self._error = exc
            finally:
                self._done.set()

        threading.Thread(target=work, name="embedder-preload", daemon=True).start()

    def get(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def embed_query(self, text: str) -> np.ndarray:
        embedder = self.get()
        if text == self._first and self._first_vector is not None:
            vector, self._first_vector = self._first_vector, None
            return vector
        return embedder.embed_query(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def close(self) -> None:
        self._done.wait()
        if self._value is not None:
            self._value.close()


def preload_for_query(settings: Settings, query: str) -> Preloading:
    """The settings' embedder for a process that searches once, made in the background and
    embedding `query` at once (see `Preloading`)."""
    return Preloading(lambda: from_settings(settings, one_shot=True), query)
