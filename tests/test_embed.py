"""Embedders: unit vectors where related texts are closer; batching never changes a vector."""

from __future__ import annotations

import numpy as np
import pytest

from localrag.embed import HashingEmbedder, OnnxEmbedder, from_settings
from localrag.errors import ModelError
from localrag.settings import Settings


def test_hashing_embedder_is_deterministic_and_topical() -> None:
    e = HashingEmbedder(dim=64)
    a, b, c = e.embed_documents(["the lathe needs oil", "oil for the lathe", "tax form due"])
    assert np.allclose(e.embed_query("the lathe needs oil"), a)
    assert np.isclose(np.linalg.norm(a), 1.0)
    assert a @ b > a @ c
    assert e.count_tokens(["two words", ""]) == [2, 0]


def test_missing_embedder_files_are_named(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"model\.onnx"):
        OnnxEmbedder(tmp_path)


@pytest.mark.models
def test_onnx_embedder_meaning_and_batching(real_models: Settings) -> None:
    e = from_settings(real_models)
    assert e.dim == 384
    texts = [
        "The cat sat on the mat.",
        "A feline was resting on a rug.",
        "Quarterly tax filings are due in April. " * 30,  # long: truncated to 256 tokens
        "Stock markets fell sharply today.",
    ]
    batch = e.embed_documents(texts)
    assert batch.shape == (4, 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.stack([e.embed_documents([t])[0] for t in texts])
    assert np.allclose(batch, alone, atol=1e-4)  # padding in a batch changes nothing
    assert batch[0] @ batch[1] > batch[0] @ batch[3] + 0.2
    query = e.embed_query("where did the cat sit?")
    assert int(np.argmax(batch @ query)) == 0
    assert e.count_tokens(["hello world", "tokenization", ""]) == [2, 2, 0]
