"""`localrag eval NAME`: quality on a labelled data set, in a throwaway encrypted vault.

Each evaluation lives in `localrag/evaluate/<name>.py` with a `register(sub)` adding its parser.
"""

from __future__ import annotations

import argparse

from localrag.cli.common import register_group

# In the order `localrag eval --help` lists them.
EVALS: list[str] = ["retrieval", "qa", "asr", "compare", "make_qa"]


def register(sub: argparse._SubParsersAction) -> None:
    help = "measure retrieval, answers and speech; compare RAG and adapters on your data"
    register_group(sub, "eval", help, "evaluate", EVALS)
