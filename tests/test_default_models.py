"""Each default model loads from the models folder, verified, and does its job."""

from __future__ import annotations

import numpy as np
import pytest
from audio_synth import speak

from localrag import embed
from localrag.models import model_path

pytestmark = pytest.mark.models


def test_llm_generates_tokens(real_models):
    from localrag.worker import base_worker

    worker = base_worker(real_models)
    try:
        ask = [
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ]
        assert "Paris" in "".join(worker.stream(ask, 20))
    finally:
        worker.close()


def test_embedder_ranks_a_paraphrase_above_an_unrelated_sentence(real_models):
    embedder = embed.from_settings(real_models)
    vectors = embedder.embed_documents(
        [
            "The quarterly budget review is moved to Friday.",
            "We postponed the budget meeting for this quarter to Friday.",
            "Penguins live mostly in the southern hemisphere.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_whisper_transcribes_synthesized_speech(real_models):
    from faster_whisper import WhisperModel

    speech = speak("Welcome to the quarterly budget meeting of the library.")
    model = WhisperModel(str(model_path(real_models, "whisper")), device="cpu", compute_type="int8")
    segments, info = model.transcribe(speech, language="en")
    text = " ".join(s.text for s in segments).lower()
    assert info.duration > 1
    for word in ("budget", "meeting", "library"):
        assert word in text
