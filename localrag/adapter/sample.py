"""A random PEFT LoRA adapter shaped for a base GGUF: for tests, benchmarks and demos.

Real adapters come from training elsewhere; this one only has the right names, shapes and a size
of update that visibly changes the model's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from localrag.adapter.convert import HF_TO_GGUF, BaseShape
from localrag.adapter.peft import CONFIG, WEIGHTS, write_safetensors

ALL_TARGETS = tuple(name.split(".")[-1] for name in HF_TO_GGUF)


def make_peft_adapter(
    base: BaseShape,
    folder: Path,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    targets: tuple[str, ...] = ALL_TARGETS,
    layers: range | None = None,
    seed: int = 0,
    strength: float = 0.25,
) -> Path:
    """Write `adapter_config.json` + `adapter_model.safetensors` into `folder` and return it.

    `strength` sets the spread of (alpha/r)·B·A's entries in units of 0.1 (about half the spread
    of SmolLM2's weights).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    by_short = {hf.split(".")[-1]: (hf, name) for hf, name in HF_TO_GGUF.items()}
    tensors = {}
    for layer in layers if layers is not None else range(base.block_count):
        for short in targets:
            hf, name = by_short[short]
            out_dim, in_dim = base.shapes[f"blk.{layer}.{name}.weight"]
            a = rng.standard_normal((rank, in_dim)).astype(np.float32) / np.sqrt(in_dim)
            b = rng.standard_normal((out_dim, rank)).astype(np.float32) / np.sqrt(rank)
            b *= strength * 0.1 * np.sqrt(in_dim) / (alpha / rank)
            prefix = f"base_model.model.model.layers.{layer}.{hf}"
            tensors[f"{prefix}.lora_A.weight"] = a
            tensors[f"{prefix}.lora_B.weight"] = b
    write_safetensors(folder / WEIGHTS, tensors)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": list(targets),
        "bias": "none",
        "fan_in_fan_out": False,
        "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder
