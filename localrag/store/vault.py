"""The vault on disk: the encrypted database and the key file beside it.

    create  -> a random data key, wrapped into the key file, then a new database under it
    open    -> passphrase -> Argon2id -> unwrap the data key -> open the database with it
    passwd  -> re-wrap the same data key under a new passphrase (the database is not written)
    rekey   -> a new data key; every page re-encrypted (`PRAGMA rekey`)

Rotation writes the new key file as `vault.key.next` before it re-encrypts, so a crash at any
point leaves one key file that opens the database; `open` finishes or discards a half-done one
(`rotate_key` explains why that is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localrag.errors import VaultError, WrongPassphrase
from localrag.settings import Settings, make_private
from localrag.store import db, keys
from localrag.store.store import Store

log = logging.getLogger(__name__)


def next_key_path(settings: Settings) -> Path:
    return settings.key_path.with_name(settings.key_path.name + ".next")


def vault_exists(settings: Settings) -> bool:
    """The database is the vault; a key file alone is an init that did not finish."""
    return settings.vault_path.exists()


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
    A kill between writing the key file and the database leaves only the key: rerunning `init`
    with the same passphrase finishes the vault with that key.
    """
    if vault_exists(settings):
        raise VaultError(
            f"{settings.home}: a vault already exists here; nothing was changed "
            "(use another --home, or delete vault.db and vault.key yourself)"
        )
    make_private(settings.home)
    made = [path for path in _vault_files(settings) if not path.exists()]
    try:
        data_key = _interrupted_init_key(settings, passphrase)
        if data_key is None:
            data_key = keys.new_data_key()
            keys.write_atomic(settings.key_path, keys.wrap(data_key, passphrase, kdf))
        try:
            store = Store.open(settings.vault_path, data_key, create=True)
        finally:
            keys.wipe(data_key)
        make_private(settings.home)  # SQLite made vault.db (and its WAL) by the umask
    except BaseException:
        # Half a vault is worse than none: `init` would call it existing, the rest "run init".
        for path in made:
            path.unlink(missing_ok=True)
        raise
    log.info("created vault %s", settings.vault_path)
    return store


def _interrupted_init_key(settings: Settings, passphrase: bytearray) -> bytearray | None:
    """The data key of a key file left without its database, if `passphrase` opens it."""
    if not settings.key_path.exists():
        return None
    try:
        return keys.unwrap(keys.read_key_file(settings.key_path), passphrase, settings.key_path)
    except WrongPassphrase:
        raise VaultError(
            f"{settings.key_path}: a key file without its vault.db (an interrupted init, or half "
            "a restore); nothing was changed; run init with the passphrase it was made with, "
            "restore vault.db, or delete vault.key"
        ) from None


def unlock(settings: Settings, passphrase: bytearray, key_path: Path | None = None) -> bytearray:
    """The data key; `WrongPassphrase` if the passphrase does not open the key file."""
    path = key_path or settings.key_path
    if not settings.vault_path.exists():
        raise VaultError(f"{settings.vault_path}: no vault here; create one with `localrag init`")
    return keys.unwrap(keys.read_key_file(path), passphrase, path)


def open_vault(settings: Settings, passphrase: bytearray, *, vfs: str | None = None) -> Store:
    """Unlock and open the vault. The vault's files are not written if the passphrase is wrong."""
    store, data_key = _open(settings, passphrase, vfs)
    keys.wipe(data_key)
    return store


def _open(
    settings: Settings, passphrase: bytearray, vfs: str | None = None
) -> tuple[Store, bytearray]:
    """The open vault and the data key that opened it (the caller wipes it), after finishing or
    discarding a rotation that a crash interrupted."""
    data_key = unlock(settings, passphrase)
    make_private(settings.home)  # also tightens a vault made before localrag did this
    try:
        store = Store.open(settings.vault_path, data_key, vfs=vfs)
    except db.KeyMismatch:
        keys.wipe(data_key)
        if not next_key_path(settings).exists():
            raise
        return _finish_rotation(settings, passphrase, vfs)
    except BaseException:
        keys.wipe(data_key)
        raise
    _discard_stale_rotation(settings)
    return store, data_key


def _finish_rotation(
    settings: Settings, passphrase: bytearray, vfs: str | None
) -> tuple[Store, bytearray]:
    """A rotation re-encrypted the database but stopped before replacing the key file."""
    pending = next_key_path(settings)
    new_key = unlock(settings, passphrase, pending)
    try:
        store = Store.open(settings.vault_path, new_key, vfs=vfs)
    except BaseException:
        keys.wipe(new_key)
        raise
    keys.replace_durably(pending, settings.key_path)
    log.warning("finished an interrupted key rotation of %s", settings.vault_path)
    return store, new_key


def _discard_stale_rotation(settings: Settings) -> None:
    """After the current key file opened the database, a leftover `.next` was never used."""
    pending = next_key_path(settings)
    if pending.exists():
        pending.unlink()
        keys.fsync_dir(settings.home)


@contextmanager
def _opened(
    settings: Settings, passphrase: bytearray, *, exclusive: bool = False
) -> Iterator[tuple[Store, bytearray]]:
    """The vault open, and the data key that opens it (wiped after).

    While it is open no rotation can start: a rotation locks every other connection out first
    (`exclusive`), and holds that lock until it is done. So whoever writes a key file in here
    cannot race another process that reads the old one or discards a `.next` as stale.
    """
    store, data_key = _open(settings, passphrase)
    try:
        if exclusive:
            db.lock_exclusive(store.conn, settings.vault_path)
        yield store, data_key
    finally:
        keys.wipe(data_key)
        store.close()


def change_passphrase(
    settings: Settings,
    old: bytearray,
    new: bytearray,
    kdf: keys.KdfParams = keys.DEFAULT_KDF,
) -> None:
    """Re-wrap the data key under `new`, atomically; the database file is not written.

    The key re-wrapped is the one that opens the database now (an interrupted rotation is
    finished first), so the new key file cannot disagree with the database.
    """
    with _opened(settings, old) as (_, data_key):
        keys.write_atomic(settings.key_path, keys.wrap(data_key, new, kdf))
    log.info("passphrase changed for %s", settings.vault_path)


def rotate_key(settings: Settings, passphrase: bytearray) -> None:
    """Re-encrypt the whole vault under a new random data key (same passphrase).

    Crash-safe because exactly one step switches the key, and a key file for either side of
    it is always on disk:

    1. Lock every other connection out of the vault (`_opened`) for the whole rotation.
    2. Write the new key, wrapped, to `vault.key.next` (temp file, fsync, rename, folder fsync).
    3. `PRAGMA rekey`: one SQLite transaction rewrites every page under the new key. In WAL mode
       (SQLite3MC 2.4 and later) the new pages go to the WAL and the commit frame, synced by
       `synchronous=FULL`, is the switch: before it the old key reads every page (uncommitted
       frames are ignored on recovery), after it the new key does.
    4. Rename `vault.key.next` over `vault.key` and fsync the folder.

    A crash before 3 commits leaves the old key working: `open` deletes the unused `.next`.
    A crash after it leaves `vault.key` failing and `.next` working: `open` finishes step 4.
    Hence the rules `open` follows: `.next` is deleted only once `vault.key` has been proved to
    open the database, never on an error (a failed commit may still have reached the disk), and
    the lock keeps another process from applying them while a rotation is under way.
    """
    with _opened(settings, passphrase, exclusive=True) as (store, _):
        params = keys.read_params(keys.read_key_file(settings.key_path), settings.key_path)
        new_key = keys.new_data_key()
        pending = next_key_path(settings)
        try:
            keys.write_atomic(pending, keys.wrap(new_key, passphrase, params))
            db.rekey(store.conn, new_key, settings.vault_path)
            keys.replace_durably(pending, settings.key_path)
        finally:
            keys.wipe(new_key)
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
        info["embedder"] = store.embedder_info()
        info["embedder_switch"] = store.embedder_switch()
        info["counts"] = store.counts()
    return info
