"""The merge against an independent reference: transformers + peft on the same GGUF base.

`verify` cannot catch a wrong q/k layout, because both of its sides use the converted adapter.
Here transformers loads the base from the GGUF (undoing llama.cpp's rotary permutation itself)
and peft applies the PEFT adapter as trained; the merged F16 model in llama.cpp must agree.
Needs the `train` extra (torch, transformers, peft); skipped where it is not installed.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from localrag import models
from localrag.adapter import convert, merge, peft, verify
from localrag.adapter.memfile import memfile
from localrag.adapter.sample import make_peft_adapter
from localrag.settings import Settings

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft_library = pytest.importorskip("peft")


def _reference_logits(base_path: Path, adapter: Path, prompts: tuple[str, ...]) -> list[np.ndarray]:
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(base_path.parent), gguf_file=base_path.name, torch_dtype=torch.float32
    )
    model = peft_library.PeftModel.from_pretrained(model, str(adapter)).eval()
    out = []
    with torch.no_grad():
        for tokens in verify.tokenize(base_path, prompts):
            out.append(model(torch.tensor([tokens])).logits[0].numpy())
    return out


@pytest.mark.models
@pytest.mark.slow
def test_merge_matches_transformers_with_peft(real_models: Settings, tmp_path: Path) -> None:
    base_path = models.model_path(real_models, "llm")
    base = convert.read_base(base_path)
    folder = make_peft_adapter(base, tmp_path / "tone", rank=8, alpha=16)
    adapter = peft.load_peft(folder)
    prompts = verify.PROMPTS[:2]
    reference = _reference_logits(base_path, folder, prompts)

    reader = gguf.GGUFReader(base_path)  # read once: parsing the header takes seconds

    def merged_logits(permute: bool) -> list[np.ndarray]:
        lora = convert.peft_to_lora(adapter, base, permute=permute)
        with memfile("merged-f16") as path:
            for _ in merge.merge_f16(reader, lora, path):
                pass
            return verify.logits(path, prompts)

    right = verify.agreement(merged_logits(permute=True), reference)
    assert right.top1_agreement == 1.0
    assert right.max_rel_logit_diff < 0.01  # measured: about 0.2 % of the logit range
    # Without the rotary permutation of q/k the merge is silently wrong, and this test sees it.
    wrong = verify.agreement(merged_logits(permute=False), reference)
    assert wrong.max_rel_logit_diff > 10 * right.max_rel_logit_diff
