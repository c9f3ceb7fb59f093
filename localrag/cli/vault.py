"""`localrag init`, `passwd`, `rekey` and `vault info`: the encrypted vault's own commands."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from localrag import hardening, models, store
from localrag.cli.common import (
    add_json,
    add_passphrase_file,
    human_size,
    print_json,
    read_passphrase,
    settings,
)
from localrag.display import one_line
from localrag.errors import UsageError
from localrag.records import EmbedderInfo, EmbedderSwitch
from localrag.settings import Settings
from localrag.store.keys import wiped


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the encrypted vault (asks for a passphrase twice)")
    add_passphrase_file(p)
    p.set_defaults(func=run_init)

    p = sub.add_parser("passwd", help="change the vault's passphrase (the data is not rewritten)")
    add_passphrase_file(p)
    p.add_argument(
        "--new-passphrase-file",
        type=Path,
        help="read the new passphrase from this file (else $LOCALRAG_NEW_PASSPHRASE, else ask)",
    )
    p.set_defaults(func=run_passwd)

    p = sub.add_parser("rekey", help="re-encrypt the whole vault under a new random data key")
    add_passphrase_file(p)
    p.set_defaults(func=run_rekey)

    p = sub.add_parser("vault", help="about the encrypted vault")
    group = p.add_subparsers(dest="vault_action", metavar="ACTION", required=True)
    info = group.add_parser("info", help="cipher, key derivation, file sizes and counts")
    add_passphrase_file(info)
    add_json(info)
    info.set_defaults(func=run_info)


def _not_empty(passphrase: bytearray) -> bytearray:
    if not passphrase:
        raise UsageError("the passphrase is empty; choose one")
    return passphrase


def new_passphrase(args: argparse.Namespace) -> bytearray:
    """The new passphrase: --new-passphrase-file, else LOCALRAG_NEW_PASSPHRASE, else asked twice."""
    path = getattr(args, "new_passphrase_file", None)
    if path is not None:
        return _not_empty(read_passphrase(argparse.Namespace(passphrase_file=path)))
    if (held := hardening.take_secret("LOCALRAG_NEW_PASSPHRASE")) is not None:
        return _not_empty(held)
    if not sys.stdin.isatty():
        raise UsageError(
            "no new passphrase: set LOCALRAG_NEW_PASSPHRASE or use --new-passphrase-file"
        )
    first = getpass.getpass("New passphrase: ")
    if getpass.getpass("New passphrase (again): ") != first:
        raise UsageError("the two passphrases differ; nothing was changed")
    return _not_empty(hardening.locked(bytearray(first.encode())))


def run_init(args: argparse.Namespace) -> int:
    from localrag.service import Assistant

    config = settings(args)
    if store.vault_exists(config):
        raise UsageError(f"{config.home}: a vault already exists here; nothing was changed")
    with wiped(_not_empty(read_passphrase(args, confirm=True))) as passphrase:
        Assistant.create(config, passphrase).close()
    print(f"created the encrypted vault {config.vault_path}")
    print(f"key file {config.key_path}: back up both; without the passphrase nothing opens them")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    config = settings(args)
    with wiped(read_passphrase(args, prompt="Current passphrase")) as old:
        store.open_vault(config, old).close()  # check the old one before asking for a new one
        with wiped(new_passphrase(args)) as new:
            store.change_passphrase(config, old, new)
    print("passphrase changed")
    return 0


def run_rekey(args: argparse.Namespace) -> int:
    config = settings(args)
    with wiped(read_passphrase(args)) as passphrase:
        store.rotate_key(config, passphrase)
    print("data key rotated: every page of the vault is re-encrypted under a new key")
    return 0


def run_info(args: argparse.Namespace) -> int:
    config = settings(args)
    with wiped(read_passphrase(args)) as passphrase, store.open_vault(config, passphrase) as vault:
        info = store.vault_info(config, vault)
    if args.json:
        print_json(info)
        return 0
    kdf = info.get("kdf", {})
    print(f"vault      {info['vault']}")
    print(f"cipher     {info['cipher']} (sqlite3mc, authenticated); data key wrapped with")
    print(
        f"           {info.get('key_wrap')} under argon2id "
        f"({kdf.get('memory_kib', 0) // 1024} MiB, {kdf.get('iterations')} passes, "
        f"{kdf.get('lanes')} lane)"
    )
    dims = f"vectors of {info['vector_dim']} dims" if info["vector_dim"] else "no vectors yet"
    print(f"schema     version {info['schema_version']}, {dims}")
    for line in embedder_lines(config, info["embedder"], info["embedder_switch"]):
        print(line)
    for name, size in info["files_bytes"].items():
        print(f"file       {name:<14} {human_size(size)}")
    for name, count in info["counts"].items():
        print(f"count      {name:<14} {count}")
    return 0


def embedder_lines(
    config: Settings, made_by: EmbedderInfo | None, pending: EmbedderSwitch | None
) -> list[str]:
    """Which embedder made the vectors, the switch under way, and one the settings want."""
    lines = []
    if made_by is not None:
        sha = made_by.fingerprint[:12]
        lines.append(f"embedder   {one_line(made_by.name)} ({made_by.dim} dims, {sha})")
    if pending is not None:
        share = pending.chunks_done / pending.chunks_total if pending.chunks_total else 1.0
        lines.append(
            f"switching  to {one_line(pending.to.name)} ({pending.to.dim} dims):"
            f" {pending.chunks_done} of {pending.chunks_total} chunks re-embedded ({share:.0%});"
            " `localrag reembed` goes on, search uses the embedder above until it is done"
        )
    wanted = models.active_name(config, "embedder")
    target = pending.to if pending is not None else made_by
    fingerprint = models.recorded_sha256(config, wanted) if wanted else None
    if target is not None and fingerprint != target.fingerprint:
        lines.append(
            f"wanted     {one_line(wanted)} (config.toml); `localrag reembed` re-embeds the vault"
            " with it"
        )
    return lines
