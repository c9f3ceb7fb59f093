"""A stand-in model worker that speaks the worker protocol with no model, for crash tests.

`python tests/fake_worker.py REQUEST_FD REPLY_FD`: it loads anything, counts words as tokens,
and answers "All good [1]." — except that a question containing CRASH gets one token and then
the worker dies by SIGSEGV, as llama.cpp does on a CPU fault; with `LOAD_CRASH` in the
environment it dies while loading.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localrag.worker import protocol


def main() -> None:
    request_fd, reply_fd = int(sys.argv[1]), int(sys.argv[2])
    while True:
        message = protocol.receive(request_fd)
        for size in message.get("payloads", []):
            protocol.read_into(request_fd, int(size))
        op = message["op"]
        if op == "close":
            return
        if op == "load":
            if os.environ.get("LOAD_CRASH"):
                os.kill(os.getpid(), signal.SIGSEGV)
            protocol.send(reply_fd, {"ok": True, "n_ctx": int(message["n_ctx"]), "system": "fake"})
        elif op == "count":
            protocol.send(reply_fd, {"n": len(message["text"].split())})
        elif op == "generate":
            protocol.send(reply_fd, {"prompt": 10, "reused": 0})
            if "CRASH" in message["messages"][-1]["content"]:
                protocol.send(reply_fd, {"t": "Partial"})
                os.kill(os.getpid(), signal.SIGSEGV)
            for piece in ("All", " good", " [1]."):
                protocol.send(reply_fd, {"t": piece})
            protocol.send(reply_fd, {"end": "done", "tokens": 3})
        elif op == "cancel":
            pass
        else:
            protocol.send(reply_fd, {"ok": True})


if __name__ == "__main__":
    main()
