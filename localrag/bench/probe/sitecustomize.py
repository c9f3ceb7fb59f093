"""Loaded into every Python process started with `localrag/bench/probe` on PYTHONPATH (and so into
their children): records what each process tried and what it held, in `$LOCALRAG_PROBE_DIR`.

Per process, `<pid>.json`: its argv, `/proc/self/environ` at start and at exit, whether it was
dumpable and its core size limit at exit, and every network attempt (`connect`, `connect_ex`,
`sendto`, `sendmsg` on an internet socket; `getaddrinfo`, `gethostbyname`, `create_connection`),
each refused. Native code (onnxruntime's C++) goes round this: `strace -f` catches that.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import json
import os
import socket
import sys

_FOLDER = os.environ.get("LOCALRAG_PROBE_DIR")


def _environ() -> str:
    try:
        with open("/proc/self/environ", "rb") as f:
            return f.read().decode("latin-1")
    except OSError:
        return ""


def _core_limit() -> list[int] | None:
    try:
        import resource
    except ImportError:
        return None
    return list(resource.getrlimit(resource.RLIMIT_CORE))


_record: dict[str, object] = {
    "pid": os.getpid(),
    "argv": list(sys.argv) or [sys.executable],
    "environ_at_start": _environ(),
    "core_limit_at_start": _core_limit(),
    "attempts": [],
}


def _save() -> None:
    if not _FOLDER:
        return
    path = os.path.join(_FOLDER, f"{os.getpid()}.json")
    # Written whole, then renamed: a reader never sees half a record (a model worker may still
    # be exiting when the command that started it has returned).
    fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(_record, f)
    os.replace(path + ".part", path)


def _refuse(what: str, detail: object) -> OSError:
    attempts = _record["attempts"]
    assert isinstance(attempts, list)
    attempts.append([what, repr(detail)[:300]])
    _save()
    return OSError(errno.ENETUNREACH, f"network blocked by the test probe: {what} {detail!r}")


def _guard_method(name: str) -> None:
    real = getattr(socket.socket, name)

    def guarded(self: socket.socket, *args: object, **kwargs: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise _refuse(name, args)
        return real(self, *args, **kwargs)

    setattr(socket.socket, name, guarded)


def _guard_function(name: str) -> None:
    def guarded(*args: object, **kwargs: object) -> object:
        raise _refuse(name, args)

    setattr(socket, name, guarded)


def _at_exit() -> None:
    _record["argv"] = list(sys.argv)
    _record["environ_at_exit"] = _environ()
    _record["core_limit_at_exit"] = _core_limit()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        _record["dumpable_at_exit"] = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    _save()


if _FOLDER:
    for _method in ("connect", "connect_ex", "sendto", "sendmsg"):
        _guard_method(_method)
    for _function in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
        _guard_function(_function)
    _save()
    atexit.register(_at_exit)
