"""`localrag` run as a child process, as a user runs it: for the reliability bench, which kills
it, feeds it hostile files and watches what it leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import localrag
from localrag.worker.memory import peak_rss_bytes

SOURCE_ROOT = Path(localrag.__file__).resolve().parent.parent
"""So the child imports this very localrag (a checkout or a worktree), not another one."""


@dataclass(frozen=True)
class Finished:
    """How one child run ended."""

    returncode: int
    """Negative: killed by that signal."""
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_bytes: int
    """The child's own peak resident memory: its VmHWM, read while it runs (Linux), else the
    rusage figure from wait4, which on Linux starts at this process's high-water mark (a child
    forked from the bench inherits it through exec: over 1 GB once the bench holds vectors)."""

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def child_env(
    home: Path, passphrase: str, models_dir: Path, extra: Mapping[str, str] = {}
) -> dict[str, str]:
    """The environment of a child: its home, passphrase and models, and this localrag first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRAG_")}
    path = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    return env | {
        "LOCALRAG_HOME": str(home),
        "LOCALRAG_PASSPHRASE": passphrase,
        "LOCALRAG_MODELS": str(models_dir),
        "PYTHONPATH": path,
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def run(
    args: list[str],
    env: Mapping[str, str],
    *,
    kill_after_s: float | None = None,
    timeout_s: float = 600.0,
    cwd: Path | None = None,
    wrapper: Sequence[str] = (),
) -> Finished:
    """`python -m localrag ARGS`, SIGKILLed after `kill_after_s` if still running; a child that
    outlives `timeout_s` is killed too and reported as a hang (returncode -SIGKILL, wall_s large).
    `wrapper` goes before the command (`strace ... --`: its peak memory is then the tracer's).
    """
    started = time.monotonic()
    # Pipes, not files: a file would land in a folder whose every byte the bench scans.
    child = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "localrag", *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    outputs = [_Drain(child.stdout), _Drain(child.stderr)]
    deadline = started + (kill_after_s if kill_after_s is not None else timeout_s)
    peak: list[int | None] = [None]
    status, usage = _wait(child.pid, deadline, peak)
    if status is None:
        os.kill(child.pid, signal.SIGKILL)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # so that Popen never reaps it again
    wall_s = time.monotonic() - started
    stdout, stderr = (drain.text() for drain in outputs)
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    peak_bytes = peak[0] if peak[0] is not None else usage.ru_maxrss * scale
    return Finished(child.returncode, stdout, stderr, wall_s, peak_bytes)


class _Drain:
    """Reads a pipe to its end in a thread, so a chatty child never blocks on a full pipe."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe = pipe
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.data = self.pipe.read()

    def text(self) -> str:
        self.thread.join()
        self.pipe.close()
        return self.data.decode(errors="replace")


def _wait(pid: int, deadline: float, peak: list[int | None]) -> tuple[int | None, Any]:
    """Waits for the child, keeping in `peak[0]` its last VmHWM: the high-water mark of its own
    memory since its exec (monotonic, so the last reading before it exits is its peak)."""
    while True:
        peak[0] = peak_rss_bytes(pid) or peak[0]  # a zombie has no VmHWM line: keep the last
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        time.sleep(min(0.005, left))


def one_line_error(finished: Finished) -> str | None:
    """The child's error if it is one clear line (no traceback), else None."""
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    if len(lines) != 1 or "Traceback" in finished.stderr:
        return None
    return lines[0]
