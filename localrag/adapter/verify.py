"""Check a merge against llama.cpp's own runtime LoRA, on fixed prompts.

Both sides start from the same base weights: the base dequantized to F16 (as the merge does).
Comparing against the Q4_1 base itself would mostly measure llama.cpp's Q4_1 kernels (they
quantize activations to 8 bits), about 2-4 % of the logit range on SmolLM2 with no adapter at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROMPTS = (
    "The capital of France is Paris. The quick brown fox jumps over the lazy dog, and then",
    "Question: what does a LoRA adapter change in a language model?\nAnswer:",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Meeting notes, 3 March: the team agreed to ship the offline release after",
)
F16_MAX_REL_DIFF = 0.01
"""A merge whose F16 logits differ from base + runtime LoRA by more than this share of the
logit range is wrong (measured: about 0.2 % on SmolLM2)."""

STORED_LIMITS = {
    "F16": (F16_MAX_REL_DIFF, 1.0),
    "Q8_0": (0.05, 0.85),
    "Q5_K_M": (0.15, 0.7),
    "Q4_K_M": (0.15, 0.7),
}
"""Per quantization, how the stored version must agree with the F16 merge: (at most this mean
logit difference, as a share of the range; at least this top-1 agreement).

Measured on SmolLM2-135M (Q4_1 base) over these prompts' 71 positions, mean difference / top-1:
- the test adapter (`sample.make_peft_adapter`, rank 8, strength 0.25): F16 0 / 1.0 (the same
  file), Q8_0 0.031 / 0.87, Q5_K_M 0.108 / 0.83, Q4_K_M 0.117 / 0.77;
- no adapter at all: Q8_0 0.031 / 0.94, Q5_K_M 0.104 / 0.85, Q4_K_M 0.098 / 0.87. Quantizing
  an already 4-bit base and llama.cpp's 8-bit activations cost that much: top-1 0.9 is out of
  reach for the K-quants, so the mean difference is what tells a wrong model apart;
- a wrong stored model (the base alone, or another adapter's merge; strength 0.1 or 0.25):
  0.16-0.53 / 0.39-0.73.
"""


@dataclass(frozen=True)
class Agreement:
    """How closely one model's logits follow a reference's, over every prompt position."""

    max_rel_logit_diff: float
    """Largest |difference| of a logit, divided by that position's reference logit range."""
    mean_rel_logit_diff: float
    """The same, averaged over positions."""
    top1_agreement: float
    """Share of positions where both pick the same next token (0 to 1)."""
    positions: int


@dataclass(frozen=True)
class VerifyReport:
    """What `adapter verify` prints."""

    ref: str
    quant: str
    f16_vs_runtime: Agreement
    """The merged F16 model against base (F16) + the adapter applied by llama.cpp at run time."""
    stored_vs_f16: Agreement
    """The stored version (quantized, or F16) against the F16 merge made again now."""
    merge_ok: bool
    """The F16 merge agrees within `F16_MAX_REL_DIFF` and on every top-1 token."""
    stored_ok: bool
    """The stored version agrees with the F16 merge within `STORED_LIMITS` of its quantization."""

    @property
    def ok(self) -> bool:
        return self.merge_ok and self.stored_ok


def logits(model: Path, prompts: Sequence[str], lora: Path | None = None) -> list[np.ndarray]:
    """The logits at every position of each prompt, from llama.cpp in a model worker."""
    from localrag.worker.client import ModelInput, ModelWorker

    worker = ModelWorker(
        ModelInput(path=model), lora=ModelInput(path=lora) if lora else None, n_ctx=256
    )
    try:
        return [worker.score(prompt) for prompt in prompts]
    finally:
        worker.close()


def tokenize(model: Path, prompts: Sequence[str]) -> list[list[int]]:
    """The tokens of each prompt with BOS, as `logits` scores them."""
    from localrag.worker.client import ModelInput, ModelWorker

    worker = ModelWorker(ModelInput(path=model), n_ctx=256)
    try:
        return [worker.tokenize(prompt, bos=True) for prompt in prompts]
    finally:
        worker.close()


def report(ref: str, quant: str, f16: Agreement, stored: Agreement) -> VerifyReport:
    """The verdict on a version from its two comparisons."""
    mean_diff, min_top1 = STORED_LIMITS[quant]
    return VerifyReport(
        ref,
        quant,
        f16,
        stored,
        merge_ok=f16.max_rel_logit_diff <= F16_MAX_REL_DIFF and f16.top1_agreement == 1.0,
        stored_ok=stored.mean_rel_logit_diff <= mean_diff and stored.top1_agreement >= min_top1,
    )


def agreement(candidate: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> Agreement:
    cand, ref = np.concatenate(candidate), np.concatenate(reference)
    spread = ref.max(axis=1) - ref.min(axis=1)
    rel = np.abs(cand - ref).max(axis=1) / spread
    same = cand.argmax(axis=1) == ref.argmax(axis=1)
    return Agreement(float(rel.max()), float(rel.mean()), float(same.mean()), len(rel))
