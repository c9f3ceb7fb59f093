"""Helpers shared by the CLI's command modules: settings, JSON output, passphrases, progress."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag import hardening
from localrag.display import safe_json
from localrag.errors import UsageError
from localrag.settings import Settings

if TYPE_CHECKING:
    from localrag.service import Assistant


def settings(args: argparse.Namespace) -> Settings:
    return Settings.load(args.home)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON on stdout for scripts")


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(value: Any) -> None:
    sys.stdout.write(safe_json(value, default=_default, indent=2) + "\n")


def add_passphrase_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the passphrase from this file (else $LOCALRAG_PASSPHRASE, else ask)",
    )


def read_passphrase(
    args: argparse.Namespace, *, confirm: bool = False, prompt: str = "Passphrase"
) -> bytearray:
    """The passphrase from --passphrase-file, else LOCALRAG_PASSPHRASE, else asked (hidden).

    Returned as a bytearray so the caller can overwrite it once the key is derived, its pages
    kept out of swap where the OS allows.
    """
    path = getattr(args, "passphrase_file", None)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the passphrase file ({exc.strerror})") from exc
        return hardening.locked(bytearray(text.encode()))
    if (held := hardening.take_secret("LOCALRAG_PASSPHRASE")) is not None:
        return held
    if not sys.stdin.isatty():
        raise UsageError("no passphrase: set LOCALRAG_PASSPHRASE or use --passphrase-file")
    first = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} (again): ") != first:
        raise UsageError("the two passphrases differ; nothing was changed")
    return hardening.locked(bytearray(first.encode()))


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def register_group(
    sub: argparse._SubParsersAction, name: str, help: str, package: str, members: list[str]
) -> None:
    """A command whose actions each live in `localrag/<package>/<member>.py` with a `register()`."""
    import importlib

    parser = sub.add_parser(name, help=help)
    group = parser.add_subparsers(dest=f"{name}_action", metavar="NAME", required=True)
    for member in members:
        importlib.import_module(f"localrag.{package}.{member}").register(group)


def open_assistant(args: argparse.Namespace, **parts: Any) -> Assistant:
    """Unlock the vault the standard way (`read_passphrase`) and open the `Assistant`.

    `WrongPassphrase` (exit code 3) leaves the vault untouched. The passphrase is wiped after use.
    """
    from localrag.service import Assistant
    from localrag.store.keys import wiped

    config = settings(args)
    if not Assistant.vault_exists(config):
        raise UsageError(f"{config.home}: no vault here yet; create one with `localrag init`")
    with wiped(read_passphrase(args)) as passphrase:
        return Assistant.open(config, passphrase, **parts)
