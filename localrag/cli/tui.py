"""`localrag tui` (and a bare `localrag`): the terminal app."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from localrag.cli.common import settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="open the terminal app (the default when no command is given)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag import hardening
    from localrag.tui import build_app

    hardening.forget_secrets()  # the app asks for the passphrase itself
    app = build_app(settings(args))
    with logs_off_the_terminal():
        app.run()
    return 0


@contextmanager
def logs_off_the_terminal() -> Iterator[None]:
    """While the app draws the whole terminal, log records go to Textual's log (`textual
    console`) instead of stderr: a line written there would tear the screen. The app shows what
    the user must see (errors) as notifications."""
    from textual.logging import TextualHandler

    root = logging.getLogger()
    streams = [h for h in root.handlers if type(h) is logging.StreamHandler]
    for handler in streams:
        root.removeHandler(handler)
    textual = TextualHandler()
    root.addHandler(textual)
    try:
        yield
    finally:
        root.removeHandler(textual)
        for handler in streams:
            root.addHandler(handler)
