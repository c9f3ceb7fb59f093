"""Two hashing embedders that stand for two registered ONNX embedders, by name, so that the CLI
can switch between them without a model: `install()` puts them behind `embed.from_settings`.

A child process runs the CLI with them (`python tests/fake_embedders.py ARGS...`); with
`BLOCK_AT=N` in its environment, the N-th batch of hash-b blocks after saying `BLOCKED` on
stdout, so that a test can kill it at a known point: N-1 batches stored, one in flight; with
`INTERRUPT_AT=N` the N-th batch is interrupted as by Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from localrag.embed import HashingEmbedder
from localrag.settings import Settings

FAKES = {"hash-a": (256, 1), "hash-b": (384, 2)}
"""name: (dimensions, seed)."""


class Named(HashingEmbedder):
    """A hashing embedder under a registered model's name."""

    calls = 0

    def __init__(self, name: str) -> None:
        dim, seed = FAKES[name]
        super().__init__(dim, seed=seed)
        self.name = name

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.name == "hash-b":
            Named.calls += 1
            if Named.calls == int(os.environ.get("BLOCK_AT", "0")):
                print("BLOCKED", flush=True)
                time.sleep(600)
            if Named.calls == int(os.environ.get("INTERRUPT_AT", "0")):
                raise KeyboardInterrupt  # as Ctrl-C does, in the middle of a batch
        return super().embed_documents(texts)


def from_settings(settings: Settings, *, name: str | None = None, **_: Any) -> Named:
    from localrag import models

    name = name or models.active_name(settings, "embedder")
    assert name in FAKES, f"no fake embedder named {name}"
    return Named(name)


def install() -> None:
    from localrag import embed

    embed.from_settings = from_settings  # type: ignore[assignment]


def model_folder(root: Path, name: str) -> Path:
    """A folder that `models add --role embedder` accepts (the fakes never read it)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(name.encode())
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    return folder


if __name__ == "__main__":
    install()
    from localrag.cli import main

    sys.exit(main(sys.argv[1:]))
