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


def test_a_preloading_embedder_stands_in_and_hands_over_its_error() -> None:
    from localrag.embed import Preloading

    ready = Preloading(lambda: HashingEmbedder(dim=32), "lathe oil")
    assert ready.dim == 32
    assert np.allclose(
        ready.embed_query("lathe oil"), HashingEmbedder(dim=32).embed_query("lathe oil")
    )
    assert ready.embed_query("tax form").shape == (32,)
    ready.close()

    def broken() -> HashingEmbedder:
        raise ModelError("embedder missing")

    failing = Preloading(broken, "anything")
    with pytest.raises(ModelError, match="embedder missing"):
        failing.embed_query("anything")
    failing.close()  # nothing to close, no error raised twice


@pytest.mark.models
def test_a_search_makes_one_onnx_session_and_a_batch_the_other(real_models: Settings) -> None:
    e = from_settings(real_models)
    query = e.embed_query("where did the cat sit?")
    assert e._query_session is not None and e._documents_session is None  # search: one session
    [same] = e.embed_documents(["where did the cat sit?"])
    assert e._documents_session is not None
    assert np.allclose(query, same, atol=1e-5)  # both sessions give the same vector
    one_shot = from_settings(real_models, one_shot=True)  # graph not optimized, same vector
    assert np.allclose(one_shot.embed_query("where did the cat sit?"), query, atol=1e-5)
