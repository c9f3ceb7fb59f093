"""What every localrag process does before it reads a secret or loads a library that could talk.

Two steps, both idempotent and safe to call at import time:

- `quiet_libraries()` turns off telemetry and forces every model hub offline, in the environment,
  so it holds for this process and every child it starts. onnxruntime (1.32) starts Microsoft's
  telemetry client with the first session unless `ORT_DISABLE_TELEMETRY=1` is set before it is
  imported: it looked up `mobile.events.data.microsoft.com` and wrote a device id under
  `~/.cache/Microsoft`. faster-whisper asks the Hugging Face Hub for a missing `tokenizer.json`
  unless `HF_HUB_OFFLINE=1`. The values are forced, not defaulted: a user's `HF_HUB_OFFLINE=0`
  must not turn the network back on. `localrag/__init__.py` calls it, so importing any part of
  localrag is enough.
- `harden_process()` (the CLI's `main`, the app, the model worker, benches): no core dumps and a
  non-dumpable process (a dump would hold the passphrase, the data key and decrypted text), and
  the passphrase variables taken out of the environment (so out of `/proc/PID/environ` and out of
  every child) into memory this process owns, locked where the OS allows.

`take_secret(name)` hands out a copy of such a variable; `forget_secrets()` wipes what is held
(also at exit).
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

OFFLINE_ENVIRONMENT = {
    # onnxruntime's telemetry (a Microsoft collector, a device id under ~/.cache).
    "ORT_DISABLE_TELEMETRY": "1",
    # huggingface_hub (used by faster-whisper), transformers, datasets: never ask a hub.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
"""Forced into `os.environ` by `quiet_libraries()`."""

SECRET_VARIABLES = ("LOCALRAG_PASSPHRASE", "LOCALRAG_NEW_PASSPHRASE")
"""Environment variables that carry a secret: read once, then removed."""

_PR_SET_DUMPABLE = 4
_held: dict[str, bytearray] = {}


def quiet_libraries() -> None:
    """Telemetry off and hubs offline, for this process and its children (see the module doc)."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    # huggingface_hub reads its switches once, at import: one already imported is told directly.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        setattr(constants, "HF_HUB_OFFLINE", True)  # noqa: B010 (not a module mypy knows)
        setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)  # noqa: B010


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


def no_core_dumps() -> None:
    """RLIMIT_CORE 0 (inherited by children) and, on Linux, a non-dumpable process."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError) as exc:  # Windows has no resource module
        log.debug("could not set RLIMIT_CORE: %s", exc)
    if sys.platform.startswith("linux") and (libc := _libc()) is not None:
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())


def is_dumpable() -> bool | None:
    """Whether this process may dump core (None where the OS does not say)."""
    if not sys.platform.startswith("linux") or (libc := _libc()) is None:
        return None
    return bool(libc.prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE


def lock_memory(secret: bytearray) -> bool:
    """Keep a secret's pages out of swap (`mlock`) where the OS allows; False if it did not."""
    if not secret or sys.platform == "win32" or (libc := _libc()) is None:
        return False
    buffer = (ctypes.c_char * len(secret)).from_buffer(secret)
    address = ctypes.c_void_p(ctypes.addressof(buffer))
    return bool(libc.mlock(address, ctypes.c_size_t(len(secret))) == 0)


def locked(secret: bytearray) -> bytearray:
    """`secret`, its pages kept out of swap where the OS allows (see `lock_memory`)."""
    lock_memory(secret)
    return secret


def _scrub_environ(name: str) -> None:
    """Overwrite the variable's value in the C environment before it is unset.

    `unsetenv` only drops the pointer: the bytes the process started with stay in the memory that
    `/proc/PID/environ` shows, so they are zeroed in place first.
    """
    libc = _libc()
    if libc is None or sys.platform == "win32":
        return
    libc.getenv.restype = ctypes.c_void_p
    address = libc.getenv(name.encode())
    if address:
        ctypes.memset(address, 0, len(ctypes.string_at(address)))


def take_secrets_from_environment() -> None:
    """Move the passphrase variables from the environment into memory this process owns."""
    for name in SECRET_VARIABLES:
        if name not in os.environ:
            continue
        value = bytearray(os.environ[name].encode())
        _scrub_environ(name)
        del os.environ[name]
        old = _held.pop(name, None)
        if old is not None:
            _wipe(old)
        lock_memory(value)
        _held[name] = value


def take_secret(name: str) -> bytearray | None:
    """A copy of a secret variable (the caller wipes it), from the environment or as held."""
    take_secrets_from_environment()
    held = _held.get(name)
    return None if held is None else locked(bytearray(held))


def forget_secrets() -> None:
    """Wipe every secret taken from the environment."""
    for value in _held.values():
        _wipe(value)
    _held.clear()


def _wipe(secret: bytearray) -> None:
    secret[:] = bytes(len(secret))


def harden_process() -> None:
    """Everything above, for a process that may hold a secret (idempotent)."""
    quiet_libraries()
    no_core_dumps()
    take_secrets_from_environment()


atexit.register(forget_secrets)
