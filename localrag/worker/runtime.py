"""llama.cpp inside the model worker: load a GGUF (and a LoRA), template, tokenize, generate.

Only the worker process imports this module. It drives llama.cpp's C API through
llama-cpp-python's bindings directly: the answer loop is greedy, keeps the tokens that are in
the KV cache, and evaluates only what differs from the last prompt, so the fixed system message
is evaluated once per worker.

Message contents are tokenized with special tokens off: a document or question that contains a
control string such as `<|im_start|>` stays plain text and can never open a new turn.
"""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np

from localrag.generate import CHATML, Message
from localrag.grounding import SpanGuard
from localrag.worker.cores import CoreShare

# llama.cpp's log lines reach the worker's stderr through llama-cpp-python's logger: errors only
# (the service keeps the last ones to explain a failure).
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)

_SENTINEL = "\x00\x01localrag-content-{}\x01\x00"
_SENTINEL_RE = re.compile(re.escape(_SENTINEL).replace(r"\{\}", r"(\d+)"))

LOOP_MIN_TOKENS = 4
LOOP_MAX_TOKENS = 32
GROUNDED_CANDIDATES = 16
"""With a `SpanGuard`, how many of the likeliest tokens are tried in turn at each step."""
GROUNDED_MARGIN = 4.0
"""...and how far below the likeliest (in logits) a token may be: past that the model would
rather stop than copy on, so the answer ends there."""


class LoadError(Exception):
    """llama.cpp refused the model or the adapter (it returned no object)."""


@dataclass(frozen=True)
class ModelSource:
    """Where the worker reads a GGUF from: a path, or bytes it holds (no memfd here)."""

    path: str | None = None
    data: bytearray | None = None


def looping(tokens: Sequence[int]) -> bool:
    """The last tokens are one run of 4 to 32 tokens written three times over: a small model
    caught in a loop ("I am sorry, I am sorry, I am sorry, ..."), which would only end at the
    token limit."""
    for width in range(LOOP_MIN_TOKENS, LOOP_MAX_TOKENS + 1):
        if len(tokens) < 3 * width:
            break
        unit = tokens[-width:]
        if tokens[-2 * width : -width] == unit and tokens[-3 * width : -2 * width] == unit:
            return True
    return False


class _MemoryFile:
    """A C `FILE*` over bytes held in this process (`fmemopen`), for llama.cpp's loaders that
    read a GGUF from a `FILE*`: the platform's path to a model that must not touch the disk."""

    def __init__(self, data: bytearray) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.fmemopen.restype = ctypes.c_void_p
        libc.fmemopen.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        self._libc = libc
        self._buffer = (ctypes.c_char * len(data)).from_buffer(data)
        self.file = libc.fmemopen(self._buffer, len(data), b"rb")
        if not self.file:
            raise LoadError("could not open the model's bytes as a file (fmemopen)")

    def close(self) -> None:
        if self.file:
            self._libc.fclose(self.file)
            self.file = None
        del self._buffer


def _load_model(source: ModelSource, params: Any) -> Any:
    if source.path is not None:
        return llama_cpp.llama_model_load_from_file(source.path.encode(), params)
    assert source.data is not None
    params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE  # read into memory: no mapping of a FILE*
    memory = _MemoryFile(source.data)
    try:
        return llama_cpp.llama_model_load_from_file_ptr(memory.file, params)
    finally:
        memory.close()


def _load_lora(model: Any, source: ModelSource) -> Any:
    if source.path is not None:
        return llama_cpp.llama_adapter_lora_init(model, source.path.encode())
    assert source.data is not None
    memory = _MemoryFile(source.data)
    try:
        return llama_cpp.llama_adapter_lora_init_from_file_ptr(model, memory.file)
    finally:
        memory.close()


class Runtime:
    """One model (and optionally one LoRA) loaded in llama.cpp, with its KV cache."""

    def __init__(
        self,
        model: ModelSource,
        *,
        lora: ModelSource | None = None,
        n_ctx: int = 4096,
        n_threads: int = 1,
    ) -> None:
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        self.model = _load_model(model, params)
        if not self.model:
            raise LoadError("llama.cpp could not load the model")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.lora = None
        if lora is not None:
            self.lora = _load_lora(self.model, lora)
            if not self.lora:
                self.close()
                raise LoadError("llama.cpp could not load the adapter")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = min(512, n_ctx)
        cparams.n_ubatch = min(512, n_ctx)
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        self.n_threads = n_threads
        self.cores = CoreShare(n_threads)
        self.decode_threads = n_threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            self.close()
            raise LoadError("llama.cpp could not create a context for the model")
        if self.lora:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.lora)
            scales = (ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales)
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)
        self.n_batch = cparams.n_batch
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.cached: list[int] = []
        """The tokens whose keys and values are in the cache, in order."""
        self.cancel = threading.Event()
        """Set from another thread to stop the prompt evaluation or the answer being written."""
        self._abort = llama_cpp.ggml_abort_callback(lambda _data: self.cancel.is_set())
        self._template = self._load_template()

    # Template and tokens

    def _load_template(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        raw = llama_cpp.llama_model_chat_template(self.model, None)
        template = raw.decode("utf-8", "replace") if raw else CHATML
        bos = llama_cpp.llama_vocab_bos(self.vocab)
        eos = llama_cpp.llama_vocab_eos(self.vocab)
        return Jinja2ChatFormatter(
            template=template,
            bos_token=self.token_text(bos) if bos != -1 else "",
            eos_token=self.token_text(eos) if eos != -1 else "",
        )

    def token_text(self, token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", "replace") if raw else ""

    def render(self, messages: Sequence[Message]) -> str:
        return str(self._template(messages=list(messages)).prompt)

    def tokenize(self, text: str, *, special: bool = False, bos: bool = False) -> list[int]:
        if not text and not bos:
            return []
        data = text.encode("utf-8")
        room = len(data) + 8
        buffer = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, room, bos, special)
        if n < 0:
            buffer = (llama_cpp.llama_token * -n)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, -n, bos, special)
        return list(buffer[:n])

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The templated prompt's tokens, with message contents as plain text only.

        Each content is swapped for a sentinel, the template is rendered, and the template's
        own text is tokenized with special tokens allowed while the contents are not.
        """
        swapped = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        rendered = self.render(swapped)
        tokens: list[int] = []
        pos, first = 0, True
        for m in _SENTINEL_RE.finditer(rendered):
            tokens += self.tokenize(rendered[pos : m.start()], special=True, bos=first)
            tokens += self.tokenize(messages[int(m.group(1))]["content"])
            pos, first = m.end(), False
        return tokens + self.tokenize(rendered[pos:], special=True, bos=first)

    def piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, 64, 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, -n, 0, False)
        return buffer.raw[:n]

    # Evaluation

    def _decode(self, tokens: Sequence[int]) -> None:
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        status = llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(array, len(tokens)))
        if status == 2:
            raise Cancelled
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status})")
        self.cached += tokens

    def evaluate(self, tokens: Sequence[int]) -> int:
        """Bring the cache to `tokens`, evaluating only what differs from what it holds; the
        number of tokens reused. The last token is always evaluated, for its logits."""
        keep = 0
        for a, b in zip(self.cached, tokens[:-1], strict=False):
            if a != b:
                break
            keep += 1
        llama_cpp.llama_memory_seq_rm(self.memory, 0, keep, -1)
        self.cached = self.cached[:keep]
        # The abort check runs between graph nodes: only worth its cost on a long evaluation.
        llama_cpp.llama_set_abort_callback(self.ctx, self._abort, None)
        try:
            for start in range(keep, len(tokens), self.n_batch):
                self._decode(tokens[start : start + self.n_batch])
        except Cancelled:
            self.reset()  # the cache holds part of a batch: start afresh next time
            raise
        finally:
            llama_cpp.llama_set_abort_callback(self.ctx, llama_cpp.ggml_abort_callback(0), None)
        return keep

    def logits(self) -> np.ndarray:
        pointer = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def reset(self) -> None:
        llama_cpp.llama_memory_clear(self.memory, True)
        self.cached = []

    def _choose(self, guard: SpanGuard | None, text: str, markers: bool = True) -> int | None:
        """The next token: the likeliest, or with a guard the likeliest that keeps the answer
        grounded (None: no likely token does, the answer ends). Without `markers`, an answer
        does not begin with a list marker."""
        logits = self.logits()
        best = int(np.argmax(logits))
        if guard is None:
            return best
        pieces = ((t, self._text(t)) for t in _likely(logits, logits[best] - GROUNDED_MARGIN))
        candidates = (
            (t, piece, llama_cpp.llama_vocab_is_eog(self.vocab, t))
            for t, piece in pieces
            if markers or text or not guard.bare_marker(piece)
        )
        return guard.first_allowed(text, candidates)

    def _text(self, token: int) -> str:
        return self.piece(token).decode("utf-8", "ignore")

    def _answer_rather_than(
        self, token: int, refusal: str, margin: float, guard: SpanGuard | None
    ) -> int:
        """`token`, unless it begins the refusal and an answer's first token (grounded, with a
        guard) is within `margin` logits of it: then that one. A 135M model refuses on text it
        reads badly even when the answer is there; SQuAD 2.0 systems likewise answer unless the
        "no answer" score beats the best span's by a tuned margin."""
        said = refusal.lower()

        def refuses(t: int) -> bool:
            piece = self._text(t).strip().lower()
            return not piece or said.startswith(piece)

        if not refuses(token):
            return token
        logits = self.logits()
        for t in _likely(logits, logits[token] - margin):
            if refuses(t) or llama_cpp.llama_vocab_is_eog(self.vocab, t):
                continue
            piece = self._text(t)
            if guard is None or (guard.allows(piece) and not guard.bare_marker(piece)):
                return t  # a list marker alone begins no answer
        return token

    def generate(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        on_prompt: Callable[[int, int], None] | None = None,
        guard: SpanGuard | None = None,
        refusal: str = "",
        abstain_margin: float = 0.0,
    ) -> Iterator[str]:
        """The greedy answer, one text piece per token ("" while a character is incomplete).

        Greedy, so answers are reproducible; no repeat penalty, which would push the model away
        from copying a date or a name exactly as the source has it. With a `guard`, only tokens
        that keep the answer grounded in the sources are chosen. With an `abstain_margin`, the
        first token begins the `refusal` only if it beats the likeliest other beginning by more
        than that many logits. Stops at an end-of-generation
        token, at `max_tokens`, at the end of the context, in a loop, when no grounded token is
        likely, or when `cancel` is set (raising `Cancelled`).
        """
        tokens = self.prompt_tokens(messages)
        room = self.n_ctx - len(tokens)
        if room <= 0:
            raise ContextFull(len(tokens), self.n_ctx)
        threads = self.cores.threads()
        if threads != self.decode_threads:
            llama_cpp.llama_set_n_threads(self.ctx, threads, self.n_threads)
            self.decode_threads = threads
        reused = self.evaluate(tokens)
        if on_prompt is not None:
            on_prompt(len(tokens), reused)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        written: list[int] = []
        text = held = ""
        markers = True
        while True:
            token = self._choose(guard, text, markers)
            if not written and abstain_margin > 0 and token is not None:
                token = self._answer_rather_than(token, refusal, abstain_margin, guard)
            if token is None or llama_cpp.llama_vocab_is_eog(self.vocab, token):
                if held and markers:
                    # Only a list marker was written and no grounded span follows it: begin
                    # again from the prompt, without a marker.
                    markers, written, text, held = False, [], "", ""
                    decoder.reset()
                    self.evaluate(tokens)
                    continue
                break
            written.append(token)
            piece = decoder.decode(self.piece(token))
            text += piece
            if guard is not None and guard.bare_marker(text):
                held += piece  # a list marker no span follows is never shown
            else:
                yield held + piece
                held = ""
            if len(written) >= min(max_tokens, room) or looping(written):
                break
            if self.cancel.is_set():
                raise Cancelled
            self._decode([token])
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def score(self, text: str) -> np.ndarray:
        """The logits after every token of `text` (with BOS), one row per position, from one
        batch (as a prompt is evaluated)."""
        tokens = self.tokenize(text, special=False, bos=True)[: self.n_batch]
        self.reset()
        batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
        try:
            batch.n_tokens = len(tokens)
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            if llama_cpp.llama_decode(self.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed while scoring")
            rows = [
                np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, i), (self.n_vocab,))
                for i in range(len(tokens))
            ]
            return np.stack(rows).astype(np.float32)
        finally:
            llama_cpp.llama_batch_free(batch)
            self.reset()

    def close(self) -> None:
        if getattr(self, "ctx", None):
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "lora", None):
            llama_cpp.llama_adapter_lora_free(self.lora)
            self.lora = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None


def _likely(logits: np.ndarray, floor: float) -> list[int]:
    """The likeliest `GROUNDED_CANDIDATES` tokens whose logit is at least `floor`, likeliest
    first."""
    top = np.argpartition(-logits, GROUNDED_CANDIDATES)[:GROUNDED_CANDIDATES]
    return [t for t in sorted(top.tolist(), key=lambda t: -logits[t]) if logits[t] >= floor]


class Cancelled(Exception):
    """The service asked the worker to stop."""


class ContextFull(Exception):
    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(f"the prompt ({prompt_tokens} tokens) does not fit the context of {n_ctx}")
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


def system_info() -> str:
    """What llama.cpp was built with (`AVX2 = 1 | AMX_INT8 = 0 | ...`)."""
    return str(llama_cpp.llama_print_system_info().decode())
