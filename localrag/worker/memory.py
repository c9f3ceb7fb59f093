"""The memory a model worker uses at its peak: its resident-set high-water mark.

Read from `/proc/PID/status` (`VmHWM`, Linux); writing 5 to `/proc/PID/clear_refs` sets the mark
back to the current resident size (Linux 4.0 and later; a process may do so for its own
children), so that each measured stretch starts from what is loaded, not from an earlier peak.
Elsewhere both say they cannot (None, False) rather than guess.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def peak_rss_bytes(pid: int | None) -> int | None:
    """The process's peak resident memory so far, in bytes; None where it cannot be read."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            with contextlib.suppress(IndexError, ValueError):
                return int(parts[1]) * 1024  # the kernel counts in kB
    return None


def reset_peak_rss(pid: int | None) -> bool:
    """Start the high-water mark again from the current resident size; whether it could."""
    if pid is None:
        return False
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True
