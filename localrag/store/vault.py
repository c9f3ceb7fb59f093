"""The vault on disk: the encrypted database and the key file beside it.

    create  -> a random data key, wrapped into the key file, then a new database under it
    open    -> passphrase -> Argon2id -> unwrap the data key -> open the database with it
    passwd  -> re-wrap the same data key under a new passphrase (the database is not touched)
    rekey   -> a new data key; every page re-encrypted (`PRAGMA rekey`)

Rotation writes the new key file as `vault.key.next` before it re-encrypts, so a crash at any
point leaves one key file that opens the database; `open` finishes or discards a half-done one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from localrag.errors import VaultError
from localrag.settings import Settings
from localrag.store import db, keys
from localrag.store.store import Store

log = logging.getLogger(__name__)


def next_key_path(settings: Settings) -> Path:
    return settings.key_path.with_name(settings.key_path.name + ".next")


def vault_exists(settings: Settings) -> bool:
    return settings.vault_path.exists() or settings.key_path.exists()


def _vault_files(settings: Settings) -> list[Path]:
    """Every file a vault can leave in its folder: SQLite's journals, and the key file's temp."""
    db = settings.vault_path
    journals = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
    return [db, *journals, settings.key_path, keys.tmp_path(settings.key_path)]


def create_vault(
    settings: Settings, passphrase: bytearray, kdf: keys.KdfParams = keys.DEFAULT_KDF
) -> Store:
    """A new, empty vault under `passphrase`; refuses to overwrite an existing one.

    All or nothing: if it fails, the files it made are removed, so `init` can simply be rerun.
    """
    if vault_exists(settings):
        raise VaultError(
            f"{settings.home}: a vault already exists here; nothing was changed "
            "(use another --home, or delete vault.db and vault.key yourself)"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    made = [path for path in _vault_files(settings) if not path.exists()]
    data_key = keys.new_data_key()
    try:
        keys.write_atomic(settings.key_path, keys.wrap(data_key, passphrase, kdf))
        store = Store.open(settings.vault_path, data_key, create=True)
    except BaseException:
        # Half a vault is worse than none: `init` would call it existing, the rest "run init".
        for path in made:
            path.unlink(missing_ok=True)
        raise
    finally:
        keys.wipe(data_key)
    log.info("created vault %s", settings.vault_path)
    return store


def unlock(settings: Settings, passphrase: bytearray, key_path: Path | None = None) -> bytearray:
    """The data key; `WrongPassphrase` if the passphrase does not open the key file."""
    path = key_path or settings.key_path
    if not settings.vault_path.exists():
        raise VaultError(f"{settings.vault_path}: no vault here; create one with `localrag init`")
    return keys.unwrap(keys.read_key_file(path), passphrase, path)


def open_vault(settings: Settings, passphrase: bytearray, *, vfs: str | None = None) -> Store:
    """Unlock and open the vault. The vault's files are not written if the passphrase is wrong."""
    data_key = unlock(settings, passphrase)
    try:
        store = Store.open(settings.vault_path, data_key, vfs=vfs)
    except db.KeyMismatch:
        if not next_key_path(settings).exists():
            raise
        return _finish_rotation(settings, passphrase, vfs)
    finally:
        keys.wipe(data_key)
    _discard_stale_rotation(settings)
    return store


def _finish_rotation(settings: Settings, passphrase: bytearray, vfs: str | None) -> Store:
    """A rotation re-encrypted the database but stopped before replacing the key file."""
    pending = next_key_path(settings)
    new_key = unlock(settings, passphrase, pending)
    try:
        store = Store.open(settings.vault_path, new_key, vfs=vfs)
    finally:
        keys.wipe(new_key)
    os.replace(pending, settings.key_path)
    keys.fsync_dir(settings.home)
    log.warning("finished an interrupted key rotation of %s", settings.vault_path)
    return store


def _discard_stale_rotation(settings: Settings) -> None:
    """After the current key file opened the database, a leftover `.next` was never used."""
    pending = next_key_path(settings)
    if pending.exists():
        pending.unlink()
        keys.fsync_dir(settings.home)


def change_passphrase(
    settings: Settings,
    old: bytearray,
    new: bytearray,
    kdf: keys.KdfParams = keys.DEFAULT_KDF,
) -> None:
    """Re-wrap the data key under `new`, atomically; the database file is not touched."""
    data_key = unlock(settings, old)
    try:
        keys.write_atomic(settings.key_path, keys.wrap(data_key, new, kdf))
    finally:
        keys.wipe(data_key)
    log.info("passphrase changed for %s", settings.vault_path)


def rotate_key(settings: Settings, passphrase: bytearray) -> None:
    """Re-encrypt the whole vault under a new random data key (same passphrase)."""
    store = open_vault(settings, passphrase)
    params = keys.read_params(keys.read_key_file(settings.key_path), settings.key_path)
    new_key = keys.new_data_key()
    pending = next_key_path(settings)
    try:
        keys.write_atomic(pending, keys.wrap(new_key, passphrase, params))
        db.rekey(store.conn, new_key, settings.vault_path)
        store.close()
        os.replace(pending, settings.key_path)
        keys.fsync_dir(settings.home)
    finally:
        keys.wipe(new_key)
        store.close()
    log.info("data key rotated for %s", settings.vault_path)


def vault_info(settings: Settings, store: Store | None = None) -> dict[str, Any]:
    """What `localrag vault info` shows: cipher, KDF parameters, sizes and counts; no secret."""
    files = {
        path.name: path.stat().st_size
        for path in (
            settings.vault_path,
            settings.vault_path.with_name(settings.vault_path.name + "-wal"),
            settings.vault_path.with_name(settings.vault_path.name + "-shm"),
            settings.key_path,
        )
        if path.exists()
    }
    info: dict[str, Any] = {"vault": str(settings.vault_path), "cipher": db.CIPHER}
    if settings.key_path.exists():
        params = keys.read_params(keys.read_key_file(settings.key_path), settings.key_path)
        info["kdf"] = {
            "algorithm": "argon2id",
            "memory_kib": params.memory_kib,
            "iterations": params.iterations,
            "lanes": params.lanes,
        }
        info["key_wrap"] = "aes-256-gcm"
    info["files_bytes"] = files
    if store is not None:
        info["schema_version"] = store.schema_version()
        info["vector_dim"] = store.vector_dim
        info["counts"] = store.counts()
    return info
