"""`localrag bench generate`: answer speed of `ask` against raw llama-cpp-python, in one run.

Both sides use the same loaded model, the same rendered prompt (`ask --no-retrieval` asking for
a story, so that the answers are long) and greedy decoding. Ours is the code path of
`Assistant.ask` after retrieval: `LlamaGenerator.stream` under an `Answer` (display filter,
citation checks). Raw is `Llama.create_completion(stream=True)`. Runs alternate, the KV cache is
cleared before each, and the medians are reported. Decode speed is (tokens - 1) / (time from
first to last token).

Time to first token is measured twice on a prompt with three numbered sources: with the cache
cleared (the whole prompt is evaluated), and after a different question on the same sources,
when llama.cpp reuses the cached prefix (system message and sources) and evaluates only the new
question.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from typing import Any

from localrag.answer import Answer
from localrag.cli import common
from localrag.generate import LlamaGenerator, Message, build_generator
from localrag.prompt import build_messages, fit_sources
from localrag.records import Chunk, Hit, Span

PASSAGES = [
    "The Lindqvist Bridge crosses the Aura river in three spans. Construction began in 1896 "
    "and the bridge opened to traffic in 1902, after a flood in 1899 delayed the works.",
    "The bridge is 212 metres long. Its central span of 96 metres was the longest in the "
    "country until 1931. The deck carries two tram tracks and two footpaths.",
    "Maintenance is done every summer. In 1988 the original wooden deck was replaced by "
    "concrete, and in 2015 the tram tracks were renewed and lighting was added.",
]
QUESTIONS = ["When did the Lindqvist Bridge open?", "How long is the Lindqvist Bridge?"]
LONG_QUESTION = "Write a short story about a bridge keeper and a flood."
"""Asked with retrieval off (`ask --no-retrieval`) for the speed runs: a long answer, so that
tokens/s is measured over many tokens (an answer from sources is a short phrase)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="tokens/s of ask vs raw llama-cpp-python; first token")
    p.add_argument("--tokens", type=int, default=128, help="tokens to generate per run")
    p.add_argument("--runs", type=int, default=3, help="runs of each side (medians reported)")
    common.add_json(p)
    p.set_defaults(func=run)


def sample_messages(question: str) -> list[Message]:
    hits = [
        Hit(Chunk(i, 1, "/bench/bridge.txt", i, text, Span(line_start=i * 3 + 1)), 1.0)
        for i, text in enumerate(PASSAGES)
    ]
    return build_messages(question, fit_sources(hits, 10_000, len), retrieval=True)


def _timed(pieces: Iterator[Any]) -> tuple[int, float, float, float]:
    """(tokens, seconds to first token, seconds to last token, start time) of a stream."""
    start = time.perf_counter()
    first = last = start
    count = 0
    for _ in pieces:
        count += 1
        last = time.perf_counter()
        if count == 1:
            first = last
    return count, first - start, last - start, start


def decode_rate(tokens: int, first_s: float, last_s: float) -> float:
    return (tokens - 1) / (last_s - first_s) if tokens > 1 and last_s > first_s else 0.0


def ours(gen: LlamaGenerator, messages: list[Message], max_tokens: int) -> dict[str, float]:
    answer = Answer(gen.stream(messages, max_tokens), sources=[], model=gen.name)
    _, first_s, last_s, _ = _timed(iter(answer))
    # Tokens as the model produced them (an Answer may merge pieces held back for display).
    return {
        "tokens": answer.tokens,
        "first_token_ms": first_s * 1000,
        "tokens_per_s": decode_rate(answer.tokens, first_s, last_s),
    }


def raw(gen: LlamaGenerator, prompt: str, max_tokens: int) -> dict[str, float]:
    stream: Any = gen.llm.create_completion(
        prompt, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0, stream=True
    )
    # The last chunk only carries the finish reason: it is not a token.
    pieces = (c for c in stream if c["choices"][0]["finish_reason"] is None)
    tokens, first_s, last_s, _ = _timed(pieces)
    return {
        "tokens": tokens,
        "first_token_ms": first_s * 1000,
        "tokens_per_s": decode_rate(tokens, first_s, last_s),
    }


def measure(gen: LlamaGenerator, max_tokens: int, runs: int) -> dict[str, Any]:
    long = build_messages(LONG_QUESTION, [], retrieval=False)
    messages = sample_messages(QUESTIONS[0])
    other = sample_messages(QUESTIONS[1])
    mine: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    for _ in range(runs):
        gen.reset_cache()
        theirs.append(raw(gen, gen.render(long), max_tokens))
        gen.reset_cache()
        mine.append(ours(gen, long, max_tokens))
        gen.reset_cache()
        cold.append(ours(gen, messages, max_tokens))
        # The cache now holds this prompt; another question shares its prefix.
        warm.append(ours(gen, other, max_tokens))

    def median(rows: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 1)

    ours_rate, raw_rate = median(mine, "tokens_per_s"), median(theirs, "tokens_per_s")
    prompt_tokens = len(gen.prompt_tokens(messages))
    shared = 0
    for a, b in zip(gen.prompt_tokens(messages), gen.prompt_tokens(other), strict=False):
        if a != b:
            break
        shared += 1
    return {
        "model": gen.name,
        "runs": runs,
        "max_tokens": max_tokens,
        "prompt_tokens": prompt_tokens,
        "cached_prefix_tokens": shared,
        "ask": {"tokens": median(mine, "tokens"), "tokens_per_s": ours_rate},
        "raw": {"tokens": median(theirs, "tokens"), "tokens_per_s": raw_rate},
        "ratio": round(ours_rate / raw_rate, 3) if raw_rate else None,
        "first_token_ms": {
            "cold": median(cold, "first_token_ms"),
            "prefix_cached": median(warm, "first_token_ms"),
        },
    }


def run(args: argparse.Namespace) -> int:
    gen = build_generator(common.settings(args))
    result = measure(gen, args.tokens, args.runs)
    if args.json:
        common.print_json(result)
        return 0
    print(f"model {result['model']}, {args.runs} runs, up to {args.tokens} tokens")
    print(
        f"  ask   {result['ask']['tokens_per_s']:8.1f} tokens/s  ({result['ask']['tokens']} tokens)"
    )
    print(
        f"  raw   {result['raw']['tokens_per_s']:8.1f} tokens/s  ({result['raw']['tokens']} tokens)"
    )
    print(f"  ratio {result['ratio']:.3f} (goal >= 0.95)")
    ft = result["first_token_ms"]
    print(
        f"  first token, {result['prompt_tokens']}-token prompt with sources: {ft['cold']} ms"
        f" with the cache cleared, {ft['prefix_cached']} ms reusing the cached prefix"
        f" ({result['cached_prefix_tokens']} tokens)"
    )
    return 0
