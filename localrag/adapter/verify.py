"""Check a merge against llama.cpp's own runtime LoRA, on fixed prompts.

Both sides start from the same base weights: the base dequantized to F16 (as the merge does).
Comparing against the Q4_1 base itself would mostly measure llama.cpp's Q4_1 kernels (they
quantize activations to 8 bits), about 2-4 % of the logit range on SmolLM2 with no adapter at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    quantized_vs_f16: Agreement | None
    """The stored, quantized version against the merged F16 (None when it is F16)."""
    ok: bool
    """The F16 merge agrees within `F16_MAX_REL_DIFF` and on every top-1 token."""


def logits(model: Path, prompts: Sequence[str], lora: Path | None = None) -> list[np.ndarray]:
    """The logits at every position of each prompt, from llama.cpp."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model),
        lora_path=str(lora) if lora else None,
        logits_all=True,
        n_ctx=256,
        n_threads=2,
        verbose=False,
    )
    try:
        out = []
        for prompt in prompts:
            tokens = llm.tokenize(prompt.encode())
            llm.reset()
            llm.eval(tokens)
            out.append(np.array(llm.scores[: len(tokens)], dtype=np.float32))
        return out
    finally:
        llm.close()


def tokenize(model: Path, prompts: Sequence[str]) -> list[list[int]]:
    from llama_cpp import Llama

    llm: Any = Llama(model_path=str(model), vocab_only=True, verbose=False)
    try:
        return [llm.tokenize(p.encode()) for p in prompts]
    finally:
        llm.close()


def agreement(candidate: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> Agreement:
    cand, ref = np.concatenate(candidate), np.concatenate(reference)
    spread = ref.max(axis=1) - ref.min(axis=1)
    rel = np.abs(cand - ref).max(axis=1) / spread
    same = cand.argmax(axis=1) == ref.argmax(axis=1)
    return Agreement(float(rel.max()), float(rel.mean()), float(same.mean()), len(rel))
