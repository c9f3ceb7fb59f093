"""How the TUI writes sources, sizes, times and answers: pure functions, easy to test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markdown_it import MarkdownIt


def short_time(iso: str) -> str:
    """ "2026-11-25 09:33" from an ISO 8601 time: to the minute, as lists show it."""
    return iso[:16].replace("T", " ")


def _timing(timings_ms: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        for key in (name, f"{name}_ms"):
            if isinstance(timings_ms.get(key), int | float):
                return float(timings_ms[key])
    return None


def timings_line(timings_ms: Mapping[str, Any] | None, tokens_per_s: float | None) -> str:
    """ "retrieval 12 ms · first token 85 ms · 96 tok/s", leaving out what is unknown."""
    timings_ms = timings_ms or {}
    parts = []
    if (ms := _timing(timings_ms, "retrieval", "retrieve", "search")) is not None:
        parts.append(f"retrieval {ms:.0f} ms")
    if (ms := _timing(timings_ms, "first_token", "ttft")) is not None:
        parts.append(f"first token {ms:.0f} ms")
    if tokens_per_s:
        parts.append(f"{tokens_per_s:.0f} tok/s")
    return " · ".join(parts)


def offline_markdown() -> MarkdownIt:
    """A Markdown parser for model output that makes no link or image at all.

    Model output is untrusted (it may echo text planted in a document): links and images are
    shown as their literal text, so nothing is fetched, opened or made clickable.
    """
    return MarkdownIt("gfm-like").disable(
        ["link", "image", "autolink", "linkify"], ignoreInvalid=True
    )
