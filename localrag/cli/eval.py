"""`localrag eval NAME`: quality on a labelled data set, in a throwaway encrypted vault.

Each evaluation lives in `localrag/evaluate/<name>.py` with a `register(sub)` adding its parser.
"""

from __future__ import annotations

import argparse

from localrag.cli.common import register_group

# In the order `localrag eval --help` lists them.
EVALS: list[str] = ["retrieval", "qa", "asr"]


def register(sub: argparse._SubParsersAction) -> None:
    help = "measure retrieval, answer and speech quality on labelled data"
    register_group(sub, "eval", help, "evaluate", EVALS)
