"""Network attempts by native code, seen with `strace -f` (Linux, where ptrace is allowed).

The Python probe (`probe/sitecustomize.py`) sees only calls made through Python's `socket`;
Tesseract, onnxruntime's C++ or a library's resolver go round it. strace sees every process
and every system call: an internet socket, a connect or send to an internet address, the
name-service daemon (a host lookup) or a netlink socket (how glibc's resolver lists interfaces).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

NETWORK_CALLS = "network"


@functools.cache
def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    result = subprocess.run(["strace", "-f", "-o", os.devnull, "true"], capture_output=True)
    return result.returncode == 0


def strace_prefix(output: Path, calls: str = NETWORK_CALLS) -> list[str]:
    """The command words that trace what follows them (every process) into `output`."""
    return ["strace", "-f", "-qq", "-e", f"trace={calls}", "-o", str(output), "--"]


def is_network_attempt(line: str) -> bool:
    """Whether one strace line (`PID call(...) = result`) is a network attempt."""
    call = line.split(None, 1)[1] if " " in line else line
    if call.startswith(("socket(AF_INET", "socket(AF_INET6")):
        return True
    if call.startswith(("connect(", "sendto(", "sendmsg(", "sendmmsg(")):
        return "AF_INET" in call or "nscd" in call or "AF_NETLINK" in call
    return False


def network_attempts(trace: Path) -> list[str]:
    """The network attempts in an strace output file (none if it was not written)."""
    if not trace.exists():
        return []
    lines = trace.read_text(errors="replace").splitlines()
    return [line for line in lines if is_network_attempt(line)]
