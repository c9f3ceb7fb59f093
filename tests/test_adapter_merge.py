"""An adapter's whole life on the real default model: import, merge, verify, use, roll back, rm."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from localrag import models
from localrag.adapter import convert, peft
from localrag.adapter.sample import ALL_TARGETS, make_peft_adapter
from localrag.cli import main
from localrag.errors import UsageError
from localrag.generate import Generator
from localrag.service import Assistant
from localrag.settings import Settings

PASS = b"adapter merge passphrase"


def _complete(generator: Generator, prompt: str = "Name the three most important rules.") -> str:
    return "".join(generator.stream([{"role": "user", "content": prompt}], 12))


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

    with Assistant.create(real_models, bytearray(PASS), answer_model=False) as a:
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

        # The merged F16 follows llama.cpp's own runtime LoRA (measured: ~0.2 % of the range),
        # and the stored Q4_K_M follows the F16 merge (measured: mean 12 % of the range, top-1
        # 77 %; see verify.STORED_LIMITS).
        report = a.verify_adapter("tone@v1")
        assert report.ok
        assert report.f16_vs_runtime.max_rel_logit_diff < 0.005
        assert report.f16_vs_runtime.top1_agreement == 1.0
        assert report.stored_vs_f16.mean_rel_logit_diff < 0.15
        assert report.stored_vs_f16.top1_agreement >= 0.7

        assert a.use_adapter("tone") == "tone@v1"
        active = a.models.generator()
        assert active.adapter == "tone@v1"
        tuned = _complete(active)
        plain = _complete(a.models.generator("base"))
        assert tuned.strip() and tuned != plain  # the active merged model answers, differently

        # `ask` answers with the active version, or with the base plus the runtime LoRA. The
        # adapter changes the greedy answer (the base lists rules, the adapted model does not).
        answer = a.ask("Name three rules.", retrieval=False)
        assert answer.text().strip() and answer.adapter == "tone@v1"
        runtime = a.ask("Name three rules.", retrieval=False, adapter="tone", runtime_adapter=True)
        alone = a.ask("Name three rules.", retrieval=False, adapter="base")
        assert (runtime.adapter, alone.adapter) == ("tone", None)
        assert runtime.text().strip() and runtime.text() != alone.text()

        # Where there are no in-memory files (macOS), the service streams the model's bytes to
        # the worker, which holds the only copy: the same answers, and nothing on disk.
        monkeypatch.setenv("LOCALRAG_NO_MEMFD", "1")
        a.models.close()
        assert _complete(a.models.generator()) == tuned
        again = a.ask("Name three rules.", retrieval=False, adapter="tone", runtime_adapter=True)
        assert again.text() == runtime.text()
        monkeypatch.delenv("LOCALRAG_NO_MEMFD")

        assert a.rollback_adapter() is None
        assert a.models.generator().adapter is None
        assert a.remove_adapter("tone") == ["tone", "tone@v1"]
        assert a.store.blobs() == [] and a.adapters().adapters == []

    # Private data never left the vault: no plaintext adapter bytes in the home folder, no
    # temporary files.
    assert list(scratch.iterdir()) == []
    for file in real_models.home.iterdir():
        assert secret not in file.read_bytes(), file


@pytest.mark.models
@pytest.mark.slow
def test_cli_merge_verify_ask_use_rollback_rm(
    real_models: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS.decode())
    base = convert.read_base(models.model_path(real_models, "llm"))
    folder = make_peft_adapter(base, tmp_path / "tone", rank=8, alpha=16)
    assert main(["init"]) == 0
    # init made the shipped answer model active: remove it, to start from the base alone.
    assert main(["adapter", "rm", "answer"]) == 0
    assert main(["adapter", "import", str(folder), "--name", "tone"]) == 0
    assert main(["adapter", "merge", "tone", "--quant", "F16"]) == 0
    assert "tone@v1: F16" in capsys.readouterr().out

    assert main(["adapter", "verify", "tone@v1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["merge_ok"] and report["stored_ok"]
    assert report["stored_vs_f16"]["max_rel_logit_diff"] == 0.0  # the stored F16 is the merge

    def ask(*argv: str) -> dict[str, object]:
        assert main(["ask", "--no-retrieval", "--json", *argv, "Name three rules."]) == 0
        return dict(json.loads(capsys.readouterr().out))

    # Greedy decoding: the merged F16 and the base plus the runtime LoRA write the same answer,
    # and it is not the base's.
    merged, runtime, alone = (
        ask("--adapter", "tone@v1"),
        ask("--adapter", "tone", "--runtime"),
        ask(),
    )
    assert (merged["adapter"], runtime["adapter"], alone["adapter"]) == ("tone@v1", "tone", None)
    assert merged["answer"] == runtime["answer"] != alone["answer"]

    assert main(["adapter", "use", "tone"]) == 0
    assert capsys.readouterr().out == "active: tone@v1\n"
    assert ask()["answer"] == merged["answer"]
    runtime_alone = ["ask", "--runtime", "--no-retrieval", "Name three rules."]
    assert main(runtime_alone) == UsageError.exit_code  # not the active model in silence
    assert "--adapter NAME --runtime" in capsys.readouterr().err
    assert main(["adapter", "rollback"]) == 0
    assert capsys.readouterr().out == "active: base\n"

    # Swap the stored adapter for another one: the merge still matches the runtime LoRA (both
    # come from the swapped adapter), but the stored version no longer does.
    other = make_peft_adapter(base, tmp_path / "other", rank=8, alpha=16, seed=1)
    swapped = tmp_path / "other.gguf"
    convert.write_lora(convert.peft_to_lora(peft.load_peft(other), base), swapped)
    with Assistant.open(real_models, bytearray(PASS)) as a:
        a.store.put_blob_stream(a.adapters().adapters[0].blob, [swapped.read_bytes()])
    assert main(["adapter", "verify", "tone@v1"]) == 1
    out = capsys.readouterr().out
    assert "tone@v1: MISMATCH: the stored F16 model does not match" in out

    assert main(["adapter", "rm", "tone@v1"]) == 0
    assert capsys.readouterr().out == "removed tone@v1; active: base\n"
    assert main(["adapter", "rm", "tone"]) == 0
    capsys.readouterr()
    assert main(["adapter", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"active": None, "adapters": [], "versions": []}
