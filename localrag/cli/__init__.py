"""The `localrag` command: one module per group of subcommands, each with a `register()`.

The CLI only parses arguments, calls the core and prints; it turns a `LocalragError` into its
one-line message and exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from localrag import __version__, hardening
from localrag.display import visible
from localrag.errors import LocalragError

COMMANDS = {
    "tui": "tui",
    "init": "vault",
    "passwd": "vault",
    "rekey": "vault",
    "vault": "vault",
    "add": "library",
    "docs": "library",
    "rm": "library",
    "search": "library",
    "folders": "folders",
    "sync": "folders",
    "watch": "folders",
    "transcribe": "audio",
    "record": "audio",
    "speakers": "speakers",
    "ask": "ask",
    "chat": "ask",
    "history": "ask",
    "adapter": "adapter",
    "models": "models",
    "reembed": "reembed",
    "doctor": "doctor",
    "eval": "eval",
    "bench": "bench",
}
"""Each command and the module under `localrag/cli/` that registers it, in the order `localrag
--help` lists them. A command imports only its own module to parse its arguments: importing all
of them (gguf, rich, textual, ...) cost every fresh process about half a second."""

COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def modules_for(argv: list[str]) -> list[str]:
    """The command modules to register for `argv`: the command's own, the app's when there is
    none, and all of them for `--help` or a name that is not a command (so argparse lists them)."""
    rest = iter(argv)
    for arg in rest:
        if arg == "--home":
            next(rest, None)
        elif arg in ("-h", "--help"):
            return COMMAND_MODULES
        elif not arg.startswith("-"):
            return [COMMANDS[arg]] if arg in COMMANDS else COMMAND_MODULES
    return ["tui"]


def build_parser(modules: list[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
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
    for name in modules:
        importlib.import_module(f"localrag.cli.{name}").register(sub)
    return parser


def _stop(signum: int, frame: object) -> None:
    """`kill PID` stops a command the way Ctrl-C does: what it holds (a vault transaction, a
    recording's finished windows, a temporary folder) is closed or removed on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Before anything else: telemetry off, hubs offline, no core dumps, and the passphrase
    # variables out of the environment (so out of /proc/PID/environ and every child).
    hardening.harden_process()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    parser = build_parser(modules_for(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        if args.command is None:  # no command: the app
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
