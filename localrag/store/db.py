"""Opening the encrypted database: the one place that hands apsw a key.

The database is opened with the raw 32-byte data key (`PRAGMA key="x'..'"`), which bypasses the
cipher's own PBKDF2 (the data key is already random). AEGIS-256 authenticates every page, WAL
frame and journal page. `PRAGMA key` reports success even for a wrong key, so the key is
verified by reading the schema. sqlite-vec is loaded only after the key is set.
"""

from __future__ import annotations

import logging
from pathlib import Path

import apsw
import sqlite_vec

from localrag.errors import VaultError

log = logging.getLogger(__name__)

CIPHER = "aegis"
"""The only cipher used: AEGIS-256, authenticated (sqlite3mc's aes128cbc, aes256cbc and rc4 are
not). Chosen over ChaCha20-Poly1305, also authenticated, because it costs about 3 % on inserts
where ChaCha20 cost about 30 % (measured side by side, AES instructions on this CPU)."""

# Every connection: temp data in memory, no memory-mapped I/O on the encrypted file, a WAL journal
# with a sync at every commit, freed pages overwritten, and a page cache big enough for the index.
CONNECTION_PRAGMAS = (
    ("temp_store", "MEMORY", 2),
    ("mmap_size", "0", 0),
    ("journal_mode", "WAL", "wal"),
    ("synchronous", "FULL", 2),
    ("secure_delete", "ON", 1),
    ("foreign_keys", "ON", 1),
    # 64 MiB of decrypted pages: without it every cache miss decrypts again (KNN 5-15x slower).
    ("cache_size", "-65536", -65536),
)


BUSY_TIMEOUT_MS = 5000
"""How long a connection waits for another one's lock before it gives up."""


class KeyMismatch(VaultError):
    """The data key does not decrypt the database (a different vault, or a damaged first page)."""


def set_key(conn: apsw.Connection, pragma: str, data_key: bytearray, path: Path) -> None:
    """`PRAGMA key` or `rekey` with the raw key; an error never carries the key's text."""
    try:
        conn.execute(f"PRAGMA {pragma}=\"x'{data_key.hex()}'\"", can_cache=False)
    except apsw.Error as exc:
        message = f"{path}: PRAGMA {pragma} failed ({type(exc).__name__}); nothing was changed"
        raise VaultError(message) from None


def apply_key(conn: apsw.Connection, data_key: bytearray | None, path: Path) -> None:
    """Set the cipher and the raw data key, and prove it by reading the schema."""
    conn.execute(f"PRAGMA cipher='{CIPHER}'", can_cache=False)
    if data_key is not None:
        set_key(conn, "key", data_key, path)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        raise KeyMismatch(
            f"{path}: the vault cannot be decrypted with this key file "
            "(a different vault's key, or a damaged file); restore both from a backup"
        ) from exc
    except apsw.BusyError:
        raise VaultError(
            f"{path}: another localrag is re-encrypting the vault (`localrag rekey`); "
            "nothing was changed; retry when it is done"
        ) from None


def configure(conn: apsw.Connection, path: Path) -> None:
    """Set the connection pragmas and check that each one took."""
    for name, value, expected in CONNECTION_PRAGMAS:
        got = conn.execute(f"PRAGMA {name}={value}").fetchall()
        if not got:
            got = conn.execute(f"PRAGMA {name}").fetchall()
        if got and got[0][0] != expected:
            raise VaultError(f"{path}: could not set PRAGMA {name}={value} (got {got[0][0]})")


def load_vec(conn: apsw.Connection) -> None:
    conn.enable_load_extension(True)
    try:
        conn.load_extension(sqlite_vec.loadable_path())
    finally:
        conn.enable_load_extension(False)


def connect(
    path: Path, data_key: bytearray | None, *, create: bool = False, vfs: str | None = None
) -> apsw.Connection:
    """An open, keyed, verified and configured connection to the vault at `path`.

    `data_key=None` opens a plain SQLite file with the very same settings (for the benchmark).
    """
    if not create and not path.exists():
        raise VaultError(f"{path}: no vault here; create one with `localrag init`")
    flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
    conn = (
        apsw.Connection(str(path), flags=flags, vfs=vfs)
        if vfs
        else apsw.Connection(str(path), flags=flags)
    )
    try:
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        apply_key(conn, data_key, path)
        configure(conn, path)
        load_vec(conn)
    except BaseException:
        conn.close()
        raise
    log.info("opened %s", path)
    return conn


def lock_exclusive(conn: apsw.Connection, path: Path) -> None:
    """Keep every other connection out of the vault until `conn` closes."""
    conn.execute("PRAGMA locking_mode=EXCLUSIVE").fetchall()
    try:
        # In exclusive locking mode the first write transaction takes the lock and keeps it.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
    except apsw.BusyError:
        raise VaultError(
            f"{path}: the vault is open in another localrag; nothing was changed; "
            "close it and retry"
        ) from None


def rekey(conn: apsw.Connection, new_key: bytearray, path: Path) -> None:
    """Re-encrypt every page under `new_key` (outside any transaction)."""
    set_key(conn, "rekey", new_key, path)


def capabilities() -> dict[str, str]:
    """What the SQLite library here can do: versions, cipher, sqlite-vec, FTS5."""
    conn = apsw.Connection(":memory:")
    try:
        load_vec(conn)
        fts5 = "ok"
        try:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        except apsw.SQLError as exc:
            fts5 = f"missing ({exc})"
        mc, vec = conn.execute("SELECT sqlite3mc_version(), vec_version()").get
        return {
            "sqlite": apsw.sqlite_lib_version(),
            "sqlite3mc": str(mc).removeprefix("SQLite3 Multiple Ciphers "),
            "cipher": CIPHER,
            "sqlite-vec": str(vec),
            "fts5": fts5,
        }
    finally:
        conn.close()
