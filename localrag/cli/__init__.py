"""The `localrag` command: one module per group of subcommands, each with a `register()`.

The CLI only parses arguments, calls the core and prints; it turns a `LocalragError` into its
one-line message and exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from localrag import __version__, hardening
from localrag.display import visible
from localrag.errors import LocalragError

# In the order `localrag --help` lists them.
COMMAND_MODULES = [
    "tui",
    "vault",
    "library",
    "folders",
    "audio",
    "speakers",
    "ask",
    "adapter",
    "models",
    "reembed",
    "doctor",
    "eval",
    "bench",
]


ALONE = {"search": "library"}
"""Commands whose module alone is imported to parse them: a fresh `localrag search` is what a
user waits for, and the other commands' imports (gguf, rich, ...) are no part of it."""


def _alone(argv: list[str]) -> list[str] | None:
    """The one command module to register for `argv`, if its command is in `ALONE`."""
    rest = iter(argv)
    for arg in rest:
        if arg == "--home":
            next(rest, None)
        elif not arg.startswith("-"):
            return [ALONE[arg]] if arg in ALONE else None
    return None


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="localrag",
        description="A private assistant over your own documents and recordings: "
        "offline, encrypted, cited.",
    )
    parser.add_argument("--version", action="version", version=f"localrag {__version__}")
    parser.add_argument(
        "--home", help="home folder (default: $LOCALRAG_HOME, else the user data folder)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what happens on stderr (under the app: to `textual console`)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in modules or COMMAND_MODULES:
        importlib.import_module(f"localrag.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Before anything else: telemetry off, hubs offline, no core dumps, and the passphrase
    # variables out of the environment (so out of /proc/PID/environ and every child).
    hardening.harden_process()
    parser = build_parser(_alone(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        if args.command is None and "tui" in COMMAND_MODULES:
            args = parser.parse_args([*(argv or sys.argv[1:]), "tui"])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except LocalragError as exc:
        print(f"localrag: {visible(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("localrag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`localrag docs | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
