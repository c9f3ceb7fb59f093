"""`localrag bench tui`: does the terminal app slow answers down? The same answers, side by side.

One throwaway encrypted vault, one loaded model, one question with retrieval off (so only the
model and the streaming path are measured). Runs alternate between `Assistant.ask` iterated
in a plain thread and the same call made by the app's chat (headless, 80×24), which streams
every token through a thread worker, a message and the Markdown widget. Each side reports the
answer's own decode rate and first-token time; medians are reported. The machine should be
otherwise idle: on a busy one the runs vary more than the two sides differ.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from localrag.cli import common
from localrag.errors import LocalragError

QUESTION = "Write a short story about a lighthouse keeper and a storm."


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="tokens/s of answers shown by the terminal app vs ask alone")
    p.add_argument("--tokens", type=int, default=128, help="tokens per answer at most")
    p.add_argument("--runs", type=int, default=3, help="runs of each side (medians reported)")
    common.add_json(p)
    p.set_defaults(func=run)


def figures(answer: Any) -> dict[str, float]:
    return {
        "tokens": answer.tokens,
        "tokens_per_s": answer.tokens_per_s,
        "first_token_ms": answer.timings_ms.get("first_token", 0.0),
    }


def direct(assistant: Any) -> dict[str, float]:
    """One answer iterated in a plain thread, as the app's worker iterates it."""
    answers: list[Any] = []

    def ask() -> None:
        answer = assistant.ask(QUESTION, retrieval=False)
        for _ in answer:
            pass
        answers.append(answer)

    thread = threading.Thread(target=ask, name="bench-ask")
    thread.start()
    thread.join()
    if not answers:
        raise LocalragError("the answer failed; run `localrag ask` to see why")
    return figures(answers[0])


async def through_the_app(assistant: Any, runs: int) -> list[dict[str, float]]:
    """`runs` answers asked from the app's chat, one after the other, in a headless app."""
    from localrag.tui import build_app
    from localrag.tui.chat import ChatPane

    app = build_app(assistant=assistant)
    app.retrieval = False
    finished: list[Any] = []
    show = app.answer_finished
    done = asyncio.Event()

    def record(answer: Any) -> None:
        finished.append(answer)
        show(answer)
        done.set()

    app.answer_finished = record  # type: ignore[method-assign]
    # Waiting on an event, not polling with `pilot.pause`: each pause makes the app process
    # and redraw, work that a real terminal session does not do.
    async with app.run_test(size=(80, 24)):
        for _ in range(runs):
            chat = app.screen.query_one(ChatPane)
            await chat.new_conversation()
            done.clear()
            await chat.ask(QUESTION)
            await done.wait()
    return [figures(a) for a in finished]


def measure(assistant: Any, runs: int) -> dict[str, Any]:
    direct(assistant)  # loads the model
    mine: list[dict[str, float]] = []
    alone: list[dict[str, float]] = []
    for _ in range(runs):  # alternate, so a busy moment hurts both sides alike
        alone.append(direct(assistant))
        mine.extend(asyncio.run(through_the_app(assistant, 1)))

    def median(rows: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 1)

    app_rate, ask_rate = median(mine, "tokens_per_s"), median(alone, "tokens_per_s")
    return {
        "runs": runs,
        "ask": {k: median(alone, k) for k in ("tokens", "tokens_per_s", "first_token_ms")},
        "app": {k: median(mine, k) for k in ("tokens", "tokens_per_s", "first_token_ms")},
        "ratio": round(app_rate / ask_rate, 3) if ask_rate else None,
    }


def run(args: argparse.Namespace) -> int:
    from localrag.service import Assistant

    with tempfile.TemporaryDirectory(prefix="localrag-bench-") as tmp:
        settings = common.settings(args).with_changes(home=Path(tmp), max_answer_tokens=args.tokens)
        passphrase = bytearray(secrets.token_urlsafe(24).encode())
        with Assistant.create(settings, passphrase) as assistant:
            passphrase[:] = bytes(len(passphrase))
            result = measure(assistant, args.runs)
            result["model"] = assistant.status()["model"]
    if args.json:
        common.print_json(result)
        return 0
    print(f"model {result['model']}, {args.runs} runs, up to {args.tokens} tokens, no retrieval")
    for side in ("ask", "app"):
        r = result[side]
        print(
            f"  {side:<4} {r['tokens_per_s']:8.1f} tokens/s  first token {r['first_token_ms']} ms"
            f"  ({r['tokens']} tokens)"
        )
    print(f"  ratio {result['ratio']:.3f} (1.0: the app costs the model nothing)")
    return 0
