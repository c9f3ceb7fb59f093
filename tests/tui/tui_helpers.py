"""Helpers for Pilot tests: wait for what a user would see, instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

TIMEOUT_S = 60.0
"""A guard so a broken app fails the test instead of hanging it; not a timing assertion."""


async def wait_until(
    pilot: Pilot, predicate: Callable[[], object], what: str = "", timeout_s: float = TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what or predicate}")
        await pilot.pause(0.02)


def notifications(pilot: Pilot) -> list[str]:
    return [n.message for n in pilot.app._notifications]
