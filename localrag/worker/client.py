"""The service's side of a model worker: start it, load a model, stream answers, survive it.

`ModelWorker` is a `Generator`: the answer stage uses it like any other. Its process loads a
GGUF with llama.cpp (which parses it in C++); if that process crashes, is killed or runs out of
memory, the call in flight raises `WorkerCrashed`, a `ModelError` with a one-line message, and
the next question starts a new worker.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag import hardening
from localrag.errors import ModelError
from localrag.generate import Grounding, Message
from localrag.worker import protocol

log = logging.getLogger(__name__)


COMMAND = [sys.executable, "-m", "localrag.worker"]
"""How a worker starts; its two pipe descriptors follow."""
CANCEL_GRACE_S = 2.0
"""A worker that has not stopped this long after a cancel is killed (a new one starts later)."""
DOCTOR_HINT = "run `localrag doctor` to check the model and this machine"


class WorkerCrashed(ModelError):
    """The model worker died: a crash in llama.cpp, a kill, or out of memory."""

    title = "Model crashed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}; {DOCTOR_HINT}")
        self.reason = reason
        """What happened, without the advice."""


@dataclass(frozen=True)
class ModelInput:
    """A GGUF for a worker: a file it opens by path (a model file, or `/proc/self/fd/N` of an
    in-memory file, which it inherits), or bytes the service streams to it, held only in the
    worker's memory (platforms without `memfd_create`)."""

    path: Path | None = None
    size_bytes: int = 0
    chunks: Callable[[], Iterator[bytes]] | None = None
    """Yields the bytes when there is no path."""

    @property
    def inherited_fd(self) -> int | None:
        if self.path is not None and self.path.parent == Path("/proc/self/fd"):
            return int(self.path.name)
        return None


def describe_exit(returncode: int | None) -> str:
    """`crashed (SIGSEGV)`, `was killed (SIGKILL)`, `exited with code 3`."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        verb = "was killed" if name in ("SIGKILL", "SIGTERM") else "crashed"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"{verb} ({name}){hint}"
    return f"exited with code {returncode}"


def worker_env() -> dict[str, str]:
    """The worker's environment: the service's, less its secrets, offline."""
    env = {k: v for k, v in os.environ.items() if k not in hardening.SECRET_VARIABLES}
    return {**env, **hardening.OFFLINE_ENVIRONMENT}


class ModelWorker:
    """One model (and optionally a runtime LoRA) loaded in a child process."""

    def __init__(
        self,
        model: ModelInput,
        *,
        lora: ModelInput | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        name: str = "",
        adapter: str | None = None,
    ) -> None:
        self.name = name or (model.path.stem if model.path else "model")
        self.adapter = adapter
        self.system_info = ""
        """What llama.cpp in the worker was built with (`AVX2 = 1 | ...`)."""
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        inputs = [model] if lora is None else [model, lora]
        self._start([fd for i in inputs if (fd := i.inherited_fd) is not None])
        what = f"{self.name}" + (f" with adapter {adapter}" if adapter else "")
        try:
            request: dict[str, Any] = {
                "op": "load",
                "model": str(model.path) if model.path else None,
                "n_ctx": n_ctx,
                "n_threads": n_threads or os.cpu_count() or 1,
                "payloads": [i.size_bytes for i in inputs if i.path is None],
            }
            if lora is not None:
                request["lora"] = str(lora.path) if lora.path else None
            payload = itertools.chain.from_iterable(
                i.chunks() for i in inputs if i.path is None and i.chunks is not None
            )
            self._send(request, payload)
            reply = self._receive(f"loading {what}")
        except BaseException:
            self.close()
            raise
        if "error" in reply:
            self.close()
            raise ModelError(f"{what}: {reply['error']}{self._detail()}")
        self.n_ctx = int(reply["n_ctx"])
        self.system_info = str(reply.get("system", ""))

    def _start(self, inherited: list[int]) -> None:
        request_r, self._request_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        cmd = [*COMMAND, str(request_r), str(reply_w)]
        try:
            self.process = subprocess.Popen(
                cmd,
                pass_fds=(request_r, reply_w, *inherited),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=worker_env(),
            )
        finally:
            os.close(request_r)
            os.close(reply_w)
        threading.Thread(target=self._read_stderr, name="worker-stderr", daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                log.debug("worker: %s", line)

    def _detail(self) -> str:
        lines = [line for line in self._stderr if "error" in line.lower()]
        return f" ({lines[-1][:200]})" if lines else ""

    # Messages

    def _send(self, message: dict[str, Any], payload: Iterator[bytes] | None = None) -> None:
        try:
            with self._send_lock:
                protocol.send(self._request_w, message, payload or ())
        except OSError as exc:  # a closed pipe: the worker is gone
            raise self._crashed("receiving a request") from exc

    def _receive(self, doing: str) -> dict[str, Any]:
        try:
            return protocol.receive(self._reply_r)
        except (protocol.Closed, OSError) as exc:
            raise self._crashed(doing) from exc

    def _crashed(self, doing: str) -> WorkerCrashed:
        try:
            returncode = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            returncode = None
        return WorkerCrashed(
            f"the model process {describe_exit(returncode)} while {doing}{self._detail()}"
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker's process id (for its memory: `localrag.worker.memory`); None once closed."""
        return self.process.pid if self.process is not None else None

    # The Generator protocol

    def count_tokens(self, text: str) -> int:
        self._send({"op": "count", "text": text})
        return int(self._receive("counting tokens")["n"])

    def tokenize(self, text: str, *, bos: bool = False, special: bool = False) -> list[int]:
        """The tokens of `text`; control strings are parsed as such only with `special`."""
        self._send({"op": "tokenize", "text": text, "bos": bos, "special": special})
        return [int(t) for t in self._receive("tokenizing")["tokens"]]

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The tokens of the prompt that `stream` would evaluate for `messages`."""
        self._send({"op": "prompt", "messages": list(messages)})
        return [int(t) for t in self._receive("tokenizing")["tokens"]]

    def stream(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        grounding: Grounding | None = None,
    ) -> TokenStream:
        """The answer as it is written; with `grounding`, only what keeps it grounded in those
        sources (see `localrag.grounding`)."""
        request_id = next(self._ids)
        request: dict[str, Any] = {
            "op": "generate",
            "id": request_id,
            "messages": list(messages),
            "max_tokens": max_tokens,
        }
        if grounding is not None:
            request["ground"] = {
                "sources": list(grounding.sources),
                "refusal": grounding.refusal,
                "copy_spans": grounding.copy_spans,
                "abstain_margin": grounding.abstain_margin,
            }
        self._send(request)
        return TokenStream(self, request_id)

    def reset_cache(self) -> None:
        """Forget the cached prompt, so that the next question evaluates it whole."""
        self._send({"op": "reset"})
        self._receive("clearing its cache")

    def score(self, text: str) -> np.ndarray:
        """The logits after each token of `text` (with BOS): one row per position."""
        self._send({"op": "score", "text": text})
        reply = self._receive("scoring a text")
        data = protocol.read_into(self._reply_r, int(reply["payloads"][0]))
        return np.frombuffer(data, dtype=np.float32).reshape(reply["shape"])

    def close(self) -> None:
        if getattr(self, "process", None) is None:
            return
        if self.process.poll() is None:
            try:
                with self._send_lock:
                    protocol.send(self._request_w, {"op": "close"})
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for fd in (self._request_w, self._reply_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None  # type: ignore[assignment]

    def kill(self) -> None:
        """End the worker at once (a cancel it did not heed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class TokenStream:
    """The answer being written by a worker: iterate for text pieces; `cancel()` from any thread.

    After it ends, `prompt_tokens`, `reused_tokens` (taken from the cached prefix) and `tokens`
    say what the worker did.
    """

    def __init__(self, worker: ModelWorker, request_id: int) -> None:
        self.worker = worker
        self.request_id = request_id
        self.ended = False
        self.cancelled = False
        self.prompt_tokens = 0
        self.reused_tokens = 0
        self.tokens = 0
        self._cancel_sent = False

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> str:
        while not self.ended:
            message = self.worker._receive("writing an answer")
            if "t" in message:
                return str(message["t"])
            if "prompt" in message:
                self.prompt_tokens = int(message["prompt"])
                self.reused_tokens = int(message["reused"])
                continue
            self.ended = True
            if "error" in message:
                raise ModelError(str(message["error"]))
            self.cancelled = message.get("end") == "cancelled"
            self.tokens = int(message.get("tokens", 0))
        raise StopIteration

    def cancel(self) -> None:
        """Ask the worker to stop; it stops within a token, or is killed after a grace time."""
        if self.ended or self._cancel_sent:
            return
        self._cancel_sent = True
        try:
            self.worker._send({"op": "cancel", "id": self.request_id})
        except ModelError:
            return  # the worker is gone: nothing is left to stop
        timer = threading.Timer(CANCEL_GRACE_S, self._enforce)
        timer.daemon = True
        timer.start()

    def _enforce(self) -> None:
        if not self.ended:
            log.warning("the model worker did not stop when asked; ending it")
            self.worker.kill()

    def close(self) -> None:
        """Stop early: cancel and read to the end, so the worker is ready for the next request."""
        if self.ended:
            return
        self.cancel()
        try:
            for _ in self:
                pass
        except ModelError:
            self.ended = True  # it died on the way: the next request starts a new worker
