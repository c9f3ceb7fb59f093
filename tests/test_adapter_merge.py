"""An adapter's whole life on the real default model: import, merge, verify, use, roll back, rm."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from localrag import models
from localrag.adapter import convert, peft
from localrag.adapter.sample import ALL_TARGETS, make_peft_adapter
from localrag.service import Assistant
from localrag.settings import Settings

PASS = b"adapter merge passphrase"


def _complete(path: Path, prompt: str = "The three most important rules are") -> str:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=128, n_threads=2, verbose=False)
    try:
        out = llm.create_completion(prompt, max_tokens=12, temperature=0.0)
        return str(out["choices"][0]["text"])  # type: ignore[index]
    finally:
        llm.close()


@pytest.mark.models
@pytest.mark.slow
def test_adapter_life_cycle(
    real_models: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[object],
) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    base_path = models.model_path(real_models, "llm")
    base = convert.read_base(base_path)
    folder = make_peft_adapter(base, tmp_path / "tone", rank=8, alpha=16, targets=ALL_TARGETS)
    secret = (folder / peft.WEIGHTS).read_bytes()[-4096:]  # raw bytes of the last lora_B

    with Assistant.create(real_models, bytearray(PASS)) as a:
        info = a.import_adapter(folder, "tone")
        assert info.tensor_count == 7 * base.block_count
        assert info.targets == sorted(
            ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        )

        events = list(a.merge_adapter("tone", "Q4_K_M"))
        merged = [e for e in events if e.step == "merge"]
        assert merged[-1].tensors_done == merged[-1].tensors_total == len(base.shapes) + 61
        assert [e.step for e in events[len(merged) :]] == ["quantize", "store", "done"]
        assert events[-1].detail == "tone@v1"

        [version] = a.adapters().versions
        assert version.ref == "tone@v1" and version.quant == "Q4_K_M"
        assert version.base_sha256 == models.sha256_file(base_path)
        assert version.adapter_sha256 == info.sha256
        assert (version.alpha, version.rank) == (16.0, 8)
        assert {"gguf", "llama_cpp_python", "numpy", "localrag"} <= set(version.libraries)

        # The merged F16 follows llama.cpp's own runtime LoRA (measured: ~0.2 % of the range).
        report = a.verify_adapter("tone@v1")
        assert report.ok
        assert report.f16_vs_runtime.max_rel_logit_diff < 0.005
        assert report.f16_vs_runtime.top1_agreement == 1.0
        assert report.quantized_vs_f16 is not None

        assert a.use_adapter("tone") == "tone@v1"
        files = a.model_files()
        assert files.label == "tone@v1" and files.lora_path is None
        tuned = _complete(files.model_path)
        plain = _complete(base_path)
        assert tuned.strip() and tuned != plain  # the active merged model answers, differently

        # `ask` answers with the active version, or with the base plus the runtime LoRA.
        answer = a.ask("Name three rules.", retrieval=False)
        assert answer.text().strip() and answer.adapter == "tone@v1"
        runtime = a.ask("Name three rules.", retrieval=False, adapter="tone", runtime_adapter=True)
        assert runtime.text().strip() and runtime.adapter and "tone" in runtime.adapter

        assert a.rollback_adapter() is None
        assert a.model_files().label is None
        assert a.remove_adapter("tone") == ["tone", "tone@v1"]
        assert a.store.blobs() == [] and a.adapters().adapters == []

    # Private data never left the vault: no plaintext adapter bytes in the home folder, no
    # temporary files.
    assert list(scratch.iterdir()) == []
    for file in real_models.home.iterdir():
        assert secret not in file.read_bytes(), file
