"""`localrag tui` (and a bare `localrag`): the terminal app."""

from __future__ import annotations

import argparse

from localrag.cli.common import settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="open the terminal app (the default when no command is given)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from localrag import hardening
    from localrag.tui import build_app

    hardening.forget_secrets()  # the app asks for the passphrase itself
    build_app(settings(args)).run()
    return 0
