"""Each default model loads from the models folder, verified, and does its job."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from localrag.models import model_path

pytestmark = pytest.mark.models


def test_llm_generates_tokens(real_models):
    from llama_cpp import Llama

    llm = Llama(str(model_path(real_models, "llm")), n_ctx=256, verbose=False)
    out = llm.create_completion("Monday, Tuesday, Wednesday,", max_tokens=4, temperature=0)
    assert out["usage"]["completion_tokens"] > 0
    assert "Thursday" in out["choices"][0]["text"]


def _embed(folder: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    names = {i.name for i in session.get_inputs()}
    hidden = session.run(None, {k: v for k, v in feeds.items() if k in names})[0]
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_embedder_ranks_a_paraphrase_above_an_unrelated_sentence(real_models):
    vectors = _embed(
        model_path(real_models, "embedder"),
        [
            "The quarterly budget review is moved to Friday.",
            "We postponed the budget meeting for this quarter to Friday.",
            "Penguins live mostly in the southern hemisphere.",
        ],
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (.ci/run installs it)"
)
def test_whisper_transcribes_synthesized_speech(real_models, tmp_path):
    from faster_whisper import WhisperModel

    wav = tmp_path / "speech.wav"
    sentence = "Welcome to the quarterly budget meeting of the library."
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True)
    model = WhisperModel(str(model_path(real_models, "whisper")), device="cpu", compute_type="int8")
    segments, info = model.transcribe(str(wav), language="en")
    text = " ".join(s.text for s in segments).lower()
    assert info.duration > 1
    for word in ("budget", "meeting", "library"):
        assert word in text
