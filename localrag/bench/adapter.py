"""`localrag bench adapter`: tokens/s of a merged, quantized adapter model against the base with
the same adapter applied at run time by llama.cpp, and the base alone, in one run.

The adapter is a random PEFT LoRA shaped for the active base (every attention and MLP
projection of every layer), so the bench needs no vault and no private data. Each model runs in
its own model worker; the same prompt is decoded greedily on each; runs alternate and the
medians are reported. Merge and quantize times are reported too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from localrag import models
from localrag.adapter import convert, merge, peft
from localrag.adapter.memfile import memfile
from localrag.adapter.sample import make_peft_adapter
from localrag.bench.generate import _timed, decode_rate
from localrag.cli import common
from localrag.worker.client import ModelInput, ModelWorker

MESSAGES = [
    {
        "role": "user",
        "content": "Write a short note for the team about the offline release and what changes "
        "for them.",
    }
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adapter", help="tokens/s: merged+quantized vs base + runtime LoRA vs base alone"
    )
    p.add_argument("--quant", choices=merge.QUANTS, default="Q4_K_M", help="default: Q4_K_M")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank of the sample adapter")
    p.add_argument("--tokens", type=int, default=96, help="tokens to generate per run")
    p.add_argument("--runs", type=int, default=3, help="runs of each model (medians reported)")
    common.add_json(p)
    p.set_defaults(func=run)


def _load(model: Path, lora: Path | None = None) -> ModelWorker:
    return ModelWorker(
        ModelInput(path=model), lora=ModelInput(path=lora) if lora else None, n_ctx=512
    )


def _rate(worker: ModelWorker, max_tokens: int) -> float:
    tokens, first_s, last_s, _ = _timed(worker.stream(MESSAGES, max_tokens))
    return decode_rate(tokens, first_s, last_s)


def measure(settings: Any, quant: str, rank: int, max_tokens: int, runs: int) -> dict[str, Any]:
    base_path = models.model_path(settings, "llm")
    base = convert.read_base(base_path)
    with tempfile.TemporaryDirectory(prefix="localrag-bench-") as tmp:
        folder = make_peft_adapter(base, Path(tmp) / "sample", rank=rank, alpha=2.0 * rank)
        lora = convert.peft_to_lora(peft.load_peft(folder), base)
    with ExitStack() as stack:
        lora_file = stack.enter_context(memfile("bench-lora"))
        convert.write_lora(lora, lora_file)
        f16 = stack.enter_context(memfile("bench-f16"))
        started = time.perf_counter()
        for _ in merge.merge_f16(base_path, lora, f16):
            pass
        merge_s = time.perf_counter() - started
        merged = f16
        quantize_s = 0.0
        if quant != "F16":
            merged = stack.enter_context(memfile("bench-quant"))
            started = time.perf_counter()
            merge.quantize(f16, merged, quant)
            quantize_s = time.perf_counter() - started
        sides = {
            f"merged {quant}": _load(merged),
            "base + runtime LoRA": _load(base_path, lora_file),
            "base alone": _load(base_path),
        }
        rates: dict[str, list[float]] = {name: [] for name in sides}
        try:
            for worker in sides.values():
                _rate(worker, 8)  # warm up
            for _ in range(runs):
                for name, worker in sides.items():
                    worker.reset_cache()
                    rates[name].append(_rate(worker, max_tokens))
        finally:
            for worker in sides.values():
                worker.close()
    return {
        "base_model": models.active_name(settings, "llm"),
        "quant": quant,
        "rank": rank,
        "adapted_weights": len(lora.tensors),
        "tokens": max_tokens,
        "runs": runs,
        "merge_s": round(merge_s, 2),
        "quantize_s": round(quantize_s, 2),
        "tokens_per_s": {name: round(statistics.median(r), 1) for name, r in rates.items()},
    }


def run(args: argparse.Namespace) -> int:
    result = measure(common.settings(args), args.quant, args.rank, args.tokens, args.runs)
    if args.json:
        common.print_json(result)
        return 0
    print(
        f"{result['base_model']}, sample LoRA rank {result['rank']} on "
        f"{result['adapted_weights']} weights; merge {result['merge_s']} s, "
        f"quantize to {result['quant']} {result['quantize_s']} s"
    )
    for name, rate in result["tokens_per_s"].items():
        print(f"  {name:<22} {rate:>7.1f} tokens/s")
    return 0
