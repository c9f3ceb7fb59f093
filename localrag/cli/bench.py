"""`localrag bench NAME`: speed measured side by side in one run (ours against the raw library).

Each benchmark lives in `localrag/bench/<name>.py` with a `register(sub)` adding its parser.
"""

from __future__ import annotations

import argparse

from localrag.cli.common import register_group

# In the order `localrag bench --help` lists them.
BENCHES: list[str] = [
    "retrieval",
    "ingest",
    "generate",
    "audio",
    "speakers",
    "longrec",
    "ocr",
    "vault",
    "adapter",
    "tui",
    "reliability",
]


def register(sub: argparse._SubParsersAction) -> None:
    help = "measure speed against the raw libraries, side by side"
    register_group(sub, "bench", help, "bench", BENCHES)
