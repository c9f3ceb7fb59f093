"""`localrag bench generate`: answer speed of `ask` against raw llama-cpp-python, in one run.

Both sides run the same model file with the same threads, the same prompt (`ask --no-retrieval`
asking for a story, so that the answers are long) and greedy decoding, each streaming token by
token. Ours is the code path of `Assistant.ask` after retrieval: the model worker (llama.cpp in
a child process, tokens over a pipe) under an `Answer` (display filter, citation checks). Raw is
llama-cpp-python in this process: `Llama.create_completion(stream=True)`. Which side goes first
alternates between runs, the KV caches are cleared before each, and the medians are reported.
Decode speed is (tokens - 1) / (time from first to last token).

Time to first token is measured twice on a prompt with three numbered sources, on both sides:
with the cache cleared (the whole prompt is evaluated), and after a different question on the
same sources, when llama.cpp reuses the cached prefix (system message and sources) and evaluates
only the new question.

Cancelling is timed from `Answer.cancel()` to the end of the stream (the worker has stopped and
answered), in the two states a user can press Esc in: while the model writes, and while it still
reads a long prompt (llama.cpp's abort callback, checked between batches).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from localrag.answer import Answer
from localrag.cli import common
from localrag.generate import Message
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


def ours(worker: Any, messages: list[Message], max_tokens: int) -> dict[str, float]:
    stream = worker.stream(messages, max_tokens)
    answer = Answer(stream, sources=[], model=worker.name)
    _, first_s, last_s, _ = _timed(iter(answer))
    # Tokens as the model produced them (an Answer may merge pieces held back for display).
    return {
        "tokens": answer.tokens,
        "first_token_ms": first_s * 1000,
        "tokens_per_s": decode_rate(answer.tokens, first_s, last_s),
        "prompt_tokens": stream.prompt_tokens,
        "reused_tokens": stream.reused_tokens,
    }


class Raw:
    """llama-cpp-python in this process, as a user of the library would run it."""

    def __init__(self, path: str, n_ctx: int) -> None:
        import os

        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = Llama(path, n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
        model = self.llm._model
        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            bos_token=model.token_get_text(self.llm.token_bos()),
            eos_token=model.token_get_text(self.llm.token_eos()),
        )

    def render(self, messages: list[Message]) -> str:
        return str(self.formatter(messages=messages).prompt)  # type: ignore[arg-type]

    def reset_cache(self) -> None:
        self.llm.reset()

    def close(self) -> None:
        self.llm.close()


def raw(side: Raw, messages: list[Message], max_tokens: int) -> dict[str, float]:
    stream: Any = side.llm.create_completion(
        side.render(messages),
        max_tokens=max_tokens,
        temperature=0.0,
        repeat_penalty=1.0,
        stream=True,
    )
    # The last chunk only carries the finish reason: it is not a token.
    pieces = (c for c in stream if c["choices"][0]["finish_reason"] is None)
    tokens, first_s, last_s, _ = _timed(pieces)
    return {
        "tokens": tokens,
        "first_token_ms": first_s * 1000,
        "tokens_per_s": decode_rate(tokens, first_s, last_s),
    }


CANCEL_AFTER_S = 0.05
"""When a cancel arrives in the reading-the-prompt case: well before a long prompt is read."""


def cancel_ms(worker: Any, messages: list[Message], max_tokens: int, writing: bool) -> float:
    """Milliseconds from cancel() to the end of the stream, while writing or reading the prompt."""
    worker.reset_cache()
    answer = Answer(worker.stream(messages, max_tokens), sources=[], model=worker.name)
    pieces = iter(answer)
    asked: list[float] = []

    def cancel() -> None:
        asked.append(time.perf_counter())
        answer.cancel()

    if writing:
        for count, _ in enumerate(pieces, start=1):
            if count == 5:
                cancel()
                break
    else:
        threading.Timer(CANCEL_AFTER_S, cancel).start()
    for _ in pieces:
        pass
    if not asked:  # the prompt was read and the answer written before the cancel came
        return 0.0
    return (time.perf_counter() - asked[0]) * 1000


def long_prompt() -> list[Message]:
    """Sources filling most of the context: a prompt that takes a while to read."""
    hits = [
        Hit(Chunk(i, 1, "/bench/bridge.txt", i, PASSAGES[i % 3], Span(line_start=i)), 1.0)
        for i in range(45)
    ]
    return build_messages(QUESTIONS[0], fit_sources(hits, 100_000, len), retrieval=True)


def measure(worker: Any, side: Raw, max_tokens: int, runs: int) -> dict[str, Any]:
    long = build_messages(LONG_QUESTION, [], retrieval=False)
    messages = sample_messages(QUESTIONS[0])
    other = sample_messages(QUESTIONS[1])
    rows: dict[str, list[dict[str, float]]] = {
        k: [] for k in ("ask", "raw", "ask_cold", "ask_warm", "raw_cold", "raw_warm")
    }

    def one(name: str, run: Any, model: Any) -> None:
        model.reset_cache()
        rows[name].append(run(model, long, max_tokens))
        model.reset_cache()
        rows[f"{name}_cold"].append(run(model, messages, max_tokens))
        # The cache now holds this prompt; another question shares its prefix.
        rows[f"{name}_warm"].append(run(model, other, max_tokens))

    for i in range(runs):
        sides = [("ask", ours, worker), ("raw", raw, side)]
        for name, fn, model in sides if i % 2 == 0 else reversed(sides):
            one(name, fn, model)

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in rows[name]), 1)

    cancels: dict[str, list[float]] = {"writing": [], "reading_prompt": []}
    for _ in range(runs):
        cancels["writing"].append(cancel_ms(worker, long, max_tokens, writing=True))
        cancels["reading_prompt"].append(
            cancel_ms(worker, long_prompt(), max_tokens, writing=False)
        )

    ours_rate, raw_rate = median("ask", "tokens_per_s"), median("raw", "tokens_per_s")
    cold, warm = rows["ask_cold"][-1], rows["ask_warm"][-1]
    return {
        "model": worker.name,
        "runs": runs,
        "max_tokens": max_tokens,
        "prompt_tokens": cold["prompt_tokens"],
        "cached_prefix_tokens": warm["reused_tokens"],
        "ask": {"tokens": median("ask", "tokens"), "tokens_per_s": ours_rate},
        "raw": {"tokens": median("raw", "tokens"), "tokens_per_s": raw_rate},
        "ratio": round(ours_rate / raw_rate, 3) if raw_rate else None,
        "first_token_ms": {
            "cold": median("ask_cold", "first_token_ms"),
            "prefix_cached": median("ask_warm", "first_token_ms"),
            "raw_cold": median("raw_cold", "first_token_ms"),
            "raw_prefix_cached": median("raw_warm", "first_token_ms"),
        },
        "cancel_ms": {
            state: {"median": round(statistics.median(ms), 1), "max": round(max(ms), 1)}
            for state, ms in cancels.items()
        },
    }


def run(args: argparse.Namespace) -> int:
    from localrag import models
    from localrag.worker import base_worker

    settings = common.settings(args)
    worker = base_worker(settings)
    side = Raw(str(models.model_path(settings, "llm")), worker.n_ctx)
    try:
        result = measure(worker, side, args.tokens, args.runs)
    finally:
        side.close()
        worker.close()
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
        f"  first token, {result['prompt_tokens']}-token prompt with sources: ask {ft['cold']} ms"
        f" (raw {ft['raw_cold']}) with the cache cleared, ask {ft['prefix_cached']} ms"
        f" (raw {ft['raw_prefix_cached']}) reusing the cached prefix"
        f" ({result['cached_prefix_tokens']} tokens)"
    )
    for state, ms in result["cancel_ms"].items():
        print(
            f"  cancel while {state.replace('_', ' ')}: stopped in {ms['median']} ms"
            f" (max {ms['max']}; goal <= 200)"
        )
    return 0
