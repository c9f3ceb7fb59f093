"""The model worker's side: `python -m localrag.worker REQUEST_FD REPLY_FD`.

It loads one model with llama.cpp and answers the service's requests over two pipes (see
`protocol`). A reader thread takes every request as it arrives, so that a `cancel` reaches the
answer being written at once; the main thread does the work, one request at a time.

A crash here (a malformed GGUF, a CPU fault, the out-of-memory killer) ends this process only:
the service sees its pipe close and reports it.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
import threading
from typing import Any

from localrag import hardening
from localrag.worker import protocol

PR_SET_PDEATHSIG = 1


def _isolate() -> None:
    """No core dump (it would hold decrypted text), telemetry off, Ctrl-C is the service's to
    handle, and the worker dies with the service."""
    hardening.harden_process()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Server:
    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self.request_fd = request_fd
        self.reply_fd = reply_fd
        self.requests: queue.Queue[dict[str, Any]] = queue.Queue()
        self.runtime: Any = None
        self._lock = threading.Lock()
        self._current: int | None = None
        self._cancelled: set[int] = set()

    # The reader thread

    def read_requests(self) -> None:
        try:
            while True:
                message = protocol.receive(self.request_fd)
                sizes = message.get("payloads", [])
                message["data"] = [protocol.read_into(self.request_fd, int(n)) for n in sizes]
                if message.get("op") == "cancel":
                    self._cancel(int(message["id"]))
                else:
                    self.requests.put(message)
        except (protocol.Closed, OSError, ValueError):
            # The service is gone (or wrote garbage): nothing is left to answer.
            os._exit(0)

    def _cancel(self, request_id: int) -> None:
        with self._lock:
            self._cancelled.add(request_id)
            if self._current == request_id and self.runtime is not None:
                self.runtime.cancel.set()

    def _start(self, request_id: int) -> None:
        with self._lock:
            self._current = request_id
            self.runtime.cancel.clear()
            if request_id in self._cancelled:
                self.runtime.cancel.set()

    # The main thread

    def reply(self, message: dict[str, Any], payload: bytes = b"") -> None:
        protocol.send(self.reply_fd, message, [payload] if payload else ())

    def serve(self) -> None:
        threading.Thread(target=self.read_requests, name="requests", daemon=True).start()
        while True:
            request = self.requests.get()
            op = request.get("op")
            if op == "close":
                return
            handler = getattr(self, f"do_{op}", None)
            if handler is None:
                self.reply({"error": f"unknown request {op!r}"})
                continue
            if op != "load" and self.runtime is None:
                self.reply({"error": "no model is loaded"})
                continue
            handler(request)

    def do_load(self, request: dict[str, Any]) -> None:
        from localrag.worker.runtime import LoadError, ModelSource, Runtime, system_info

        # A file is named by its path, or sent as the next payload (no memfd on this platform).
        payloads = iter(request["data"])

        def source(path: str | None) -> ModelSource:
            return ModelSource(path=path) if path else ModelSource(data=next(payloads))

        try:
            model = source(request["model"])
            lora = source(request["lora"]) if "lora" in request else None
            self.runtime = Runtime(
                model,
                lora=lora,
                n_ctx=int(request["n_ctx"]),
                n_threads=int(request["n_threads"]),
            )
        except LoadError as exc:
            self.reply({"error": str(exc)})
            return
        self.reply({"ok": True, "n_ctx": self.runtime.n_ctx, "system": system_info()})

    def do_count(self, request: dict[str, Any]) -> None:
        self.reply({"n": len(self.runtime.tokenize(request["text"]))})

    def do_tokenize(self, request: dict[str, Any]) -> None:
        text, bos, special = request["text"], bool(request["bos"]), bool(request["special"])
        self.reply({"tokens": self.runtime.tokenize(text, bos=bos, special=special)})

    def do_prompt(self, request: dict[str, Any]) -> None:
        self.reply({"tokens": self.runtime.prompt_tokens(request["messages"])})

    def do_reset(self, request: dict[str, Any]) -> None:
        self.runtime.reset()
        self.reply({"ok": True})

    def do_generate(self, request: dict[str, Any]) -> None:
        from localrag.worker.runtime import Cancelled, ContextFull

        request_id = int(request["id"])
        self._start(request_id)
        counts = {"prompt_tokens": 0, "reused_tokens": 0, "tokens": 0}

        def prompt_done(total: int, reused: int) -> None:
            counts.update(prompt_tokens=total, reused_tokens=reused)
            self.reply({"prompt": total, "reused": reused})

        guard = None
        refusal, margin = "", 0.0
        if "ground" in request:
            from localrag.grounding import SpanGuard

            ground = request["ground"]
            refusal, margin = ground["refusal"], float(ground.get("abstain_margin", 0.0))
            if ground.get("copy_spans", True):
                guard = SpanGuard(ground["sources"], refusal)
        end = "done"
        try:
            for piece in self.runtime.generate(
                request["messages"],
                int(request["max_tokens"]),
                prompt_done,
                guard,
                refusal=refusal,
                abstain_margin=margin,
            ):
                counts["tokens"] += 1
                self.reply({"t": piece})
        except Cancelled:
            end = "cancelled"
        except ContextFull as exc:
            self.reply({"error": str(exc), "kind": "context"})
            return
        finally:
            with self._lock:
                self._current = None
                self._cancelled.discard(request_id)
        self.reply({"end": end, **counts})

    def do_score(self, request: dict[str, Any]) -> None:
        rows = self.runtime.score(request["text"])
        self.reply({"shape": list(rows.shape), "payloads": [rows.nbytes]}, rows.tobytes())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _isolate()
    server = Server(int(args[0]), int(args[1]))
    server.serve()
    if server.runtime is not None:
        server.runtime.close()
    return 0
