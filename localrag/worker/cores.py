"""How many threads the model should decode with now: the cores other processes leave free.

llama.cpp's threads meet at a barrier after every operation of the graph, hundreds of times per
token. When another process takes a core, a thread waiting there for a descheduled one spins, so
every token waits for a time slice: on 2 cores beside one busy process, decoding with 2 threads
ran at 24 tokens/s and with 1 thread at 46 (quiet: 76 and 48; SmolLM2-135M Q4_1). So before each
answer the worker looks at how busy the machine was since the last one, less its own use, and
decodes with the cores left free. Reading the prompt (large batches, few barriers per token)
keeps every thread: 2 threads still beat 1 there when another process is busy (60 and 53).
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC_STAT = Path("/proc/stat")
_SELF_STAT = Path("/proc/self/stat")


def _sample() -> tuple[int, int, int] | None:
    """(all CPU time, busy CPU time, this process's CPU time) in clock ticks; None off Linux."""
    try:
        fields = [int(v) for v in _PROC_STAT.read_text().split("\n", 1)[0].split()[1:]]
        own = _SELF_STAT.read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    idle = fields[3] + fields[4]
    return total, total - idle, int(own[11]) + int(own[12])  # utime, stime


class CoreShare:
    """Decides the decoding threads, up to `wanted`, from the machine's load since last asked."""

    def __init__(self, wanted: int, cpus: int | None = None) -> None:
        self.wanted = max(1, wanted)
        self.cpus = cpus or os.cpu_count() or 1
        self._mark = _sample()

    def threads(self) -> int:
        now = _sample()
        before, self._mark = self._mark, now
        if now is None or before is None:
            return self.wanted
        elapsed = now[0] - before[0]
        if elapsed <= 0:
            return self.wanted
        others = max(0, (now[1] - before[1]) - (now[2] - before[2])) / elapsed * self.cpus
        return free_threads(self.wanted, self.cpus, others)


def free_threads(wanted: int, cpus: int, others: float) -> int:
    """Threads to use when other processes kept `others` cores busy (never fewer than one)."""
    return max(1, min(wanted, cpus - int(others + 0.5)))
