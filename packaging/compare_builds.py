"""Tokens/s of two llama-cpp-python builds on this machine, side by side in one run.

    python packaging/compare_builds.py MODEL.gguf PORTABLE_PYTHON NATIVE_PYTHON [--runs N]

Each Python is an environment with one build installed (say .venv with the portable build of
`build_llama.py`, and a venv with `CMAKE_ARGS=-DGGML_NATIVE=ON pip install llama-cpp-python`).
Each run starts a fresh process of each build in turn (alternating which goes first), loads the
model with the same threads, decodes the same prompt greedily and reports prompt and decode
tokens/s; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess

PROBE = """
import json, os, sys, time
import llama_cpp
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=1024, n_threads=int(sys.argv[2]), verbose=False)
prompt = "Write a long story about a lighthouse keeper and a storm. " * 12
tokens = llm.tokenize(prompt.encode())
# generate() reads the prompt, then yields each token: the first yield ends the prompt's time.
start = time.perf_counter()
times = []
for _ in llm.generate(tokens, temp=0.0):
    times.append(time.perf_counter())
    if len(times) == 129:
        break
prompt_s = times[0] - start
decode = (len(times) - 1) / (times[-1] - times[0])
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prompt_tps": len(tokens) / prompt_s, "decode_tps": decode, "build": info}))
"""


def run_once(python: str, model: str, threads: int) -> dict[str, float | str]:
    done = subprocess.run(
        [python, "-c", PROBE, model, str(threads)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("portable")
    parser.add_argument("native")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    results: dict[str, list[dict[str, float | str]]] = {"portable": [], "native": []}
    sides = [("portable", args.portable), ("native", args.native)]
    for i in range(args.runs):
        for name, python in sides if i % 2 == 0 else reversed(sides):
            results[name].append(run_once(python, args.model, threads))
    summary = {}
    for name, rows in results.items():
        summary[name] = {
            key: round(statistics.median(float(r[key]) for r in rows), 1)
            for key in ("prompt_tps", "decode_tps")
        }
        summary[name]["build"] = str(rows[0]["build"])
    for key in ("prompt_tps", "decode_tps"):
        summary[f"{key}_ratio"] = round(summary["portable"][key] / summary["native"][key], 3)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
