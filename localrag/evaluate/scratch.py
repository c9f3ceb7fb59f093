"""The throwaway encrypted vault that an evaluation indexes its data set into.

A random data key that is never written down, in a new temporary folder that is removed
afterwards, with the key wiped: nothing of the data set outlives the evaluation.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localrag.store import Store


@contextmanager
def scratch_vault(prefix: str) -> Iterator[tuple[Store, Path]]:
    """An empty vault and its folder, both gone when the block ends."""
    from localrag.store.keys import new_data_key, wipe

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    key = new_data_key()
    try:
        store = Store.open(folder / "eval.db", key, create=True)
        try:
            yield store, folder
        finally:
            store.close()
    finally:
        wipe(key)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def squad_vault(
    paragraphs: dict[str, tuple[str, str]], embedder: Any, prefix: str
) -> Iterator[tuple[Store, Path]]:
    """A scratch vault holding SQuAD paragraphs (id to (title, text)), indexed with a progress
    bar; each is a document whose path is `retrieval.PREFIX` and its id."""
    from localrag.chunk import ChunkSettings
    from localrag.evaluate.progress import progress_bar
    from localrag.evaluate.retrieval import BeirSet, build

    with scratch_vault(prefix) as (store, folder):
        with progress_bar("indexing", len(paragraphs)) as update:
            for done in build(store, embedder, BeirSet(paragraphs, {}, {}), ChunkSettings()):
                update(done)
        yield store, folder
