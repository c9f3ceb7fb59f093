"""Run a command with every Python process in it probed (`tests/probe/sitecustomize.py`) and,
where strace works, every process traced (`strace -f`): network attempts by native code too, and
every file opened for writing, created or renamed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import localrag.bench
from localrag.bench.tracing import is_network_attempt, strace_works

PROBE = Path(localrag.bench.__file__).parent / "probe"
_TRACED = "network,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,symlink"
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT")


@dataclass
class Probed:
    """What the processes of one command did."""

    processes: list[dict[str, Any]] = field(default_factory=list)
    """One record per Python process (see the probe's docstring)."""
    python_attempts: list[list[str]] = field(default_factory=list)
    """Network calls refused by the probe in Python code."""
    native_attempts: list[str] = field(default_factory=list)
    """strace lines: internet sockets, connects, sends, name-service lookups (any code)."""
    written: list[str] = field(default_factory=list)
    """Paths opened for writing, created, or renamed to (strace; absolute)."""


_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _written(line: str, cwd: Path) -> list[str]:
    try:
        _, call = line.split(None, 1)
    except ValueError:
        return []
    name = call.split("(", 1)[0]
    if not re.search(r"\) = \d+", call):  # failed calls change nothing
        return []
    paths = _PATH.findall(call)
    if not paths:
        return []
    if name in ("open", "openat"):
        if not any(flag in call for flag in _WRITE_FLAGS):
            return []
        chosen = [paths[0]]
    elif name in ("creat", "mkdir", "mkdirat"):
        chosen = [paths[0]]
    elif name.startswith("rename") or name in ("link", "symlink"):
        chosen = [paths[-1]]
    else:
        return []
    return [str(cwd / p) if not p.startswith("/") else p for p in chosen]


def run_probed(
    cmd: list[str],
    env: dict[str, str],
    folder: Path,
    *,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 600,
) -> tuple[subprocess.CompletedProcess[str], Probed]:
    """Run `cmd` probed; `folder` receives the records (and is excluded from `written`)."""
    records = folder / "records"
    records.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), env.get("PYTHONPATH")]))
    env["LOCALRAG_PROBE_DIR"] = str(records)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # Python's own caches are not localrag's writes
    trace = folder / f"strace-{len(list(folder.glob('strace-*')))}.txt"
    full = cmd
    if strace_works():
        full = ["strace", "-f", "-qq", "-e", f"trace={_TRACED}", "-o", str(trace), "--", *cmd]
    result = subprocess.run(
        full, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout
    )
    probed = Probed()
    for path in sorted(records.glob("*.json")):
        record = json.loads(path.read_text())
        probed.processes.append(record)
        probed.python_attempts += record["attempts"]
        path.unlink()
    if trace.exists():
        for line in trace.read_text(errors="replace").splitlines():
            if is_network_attempt(line):
                probed.native_attempts.append(line)
            probed.written += _written(line, cwd)
    return result, probed
