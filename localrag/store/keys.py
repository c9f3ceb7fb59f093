"""The key file: a random data key, wrapped under a key derived from the passphrase.

Layout (all integers big-endian):

    magic "LRKEY" | format version (1 byte) | memory_kib, iterations, lanes (u32 each) | salt (16)
    | nonce (12) | AES-256-GCM(data key, 32 bytes) + tag (16) | SHA-256 of everything before (32)

Everything up to the salt is the header: it is the associated data of the AES-GCM wrap, so a file
whose KDF parameters were lowered fails to open. The trailing checksum only tells accidental
damage apart from a wrong passphrase; it protects nothing by itself. The passphrase-derived key
(Argon2id) never touches the database: it only unwraps the data key, so a passphrase change
rewrites this small file and nothing else.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from localrag.errors import VaultError, WrongPassphrase
from localrag.hardening import locked

log = logging.getLogger(__name__)

MAGIC = b"LRKEY"
FORMAT_VERSION = 1
DATA_KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
CHECKSUM_BYTES = 32
_PARAMS = struct.Struct(">III")
HEADER_BYTES = len(MAGIC) + 1 + _PARAMS.size + SALT_BYTES
FILE_BYTES = HEADER_BYTES + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES + CHECKSUM_BYTES


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters, stored in (and authenticated with) the key file."""

    memory_kib: int = 65536
    """Memory cost in KiB (64 MiB by default)."""
    iterations: int = 3
    """Passes over the memory."""
    lanes: int = 1
    """Parallelism."""

    def check_floor(self, where: Path | str) -> None:
        """Refuse parameters below the OWASP floor: 19 MiB, 2 passes, 1 lane."""
        if (
            self.memory_kib < FLOOR.memory_kib
            or self.iterations < FLOOR.iterations
            or self.lanes < 1
        ):
            raise VaultError(
                f"{where}: key derivation parameters below the safe minimum "
                f"({self.memory_kib} KiB, {self.iterations} passes); "
                "the key file was altered; restore it from a backup"
            )


FLOOR = KdfParams(memory_kib=19 * 1024, iterations=2, lanes=1)
DEFAULT_KDF = KdfParams()


def wipe(secret: bytearray) -> None:
    """Overwrite a secret held in a bytearray (as far as Python allows)."""
    for i in range(len(secret)):
        secret[i] = 0


@contextmanager
def wiped(secret: bytearray) -> Iterator[bytearray]:
    """`with wiped(read_passphrase(args)) as passphrase:` overwrites it when the block ends."""
    try:
        yield secret
    finally:
        wipe(secret)


def new_data_key() -> bytearray:
    return locked(bytearray(secrets.token_bytes(DATA_KEY_BYTES)))


def _derive(passphrase: bytearray, salt: bytes, params: KdfParams) -> bytearray:
    kdf = Argon2id(
        salt=salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return locked(bytearray(kdf.derive(bytes(passphrase))))


def wrap(data_key: bytearray, passphrase: bytearray, params: KdfParams = DEFAULT_KDF) -> bytes:
    """The key file's bytes: `data_key` wrapped under a key derived from `passphrase`."""
    params.check_floor("new key file")
    salt = secrets.token_bytes(SALT_BYTES)
    header = (
        MAGIC
        + bytes([FORMAT_VERSION])
        + _PARAMS.pack(params.memory_kib, params.iterations, params.lanes)
        + salt
    )
    kek = _derive(passphrase, salt, params)
    try:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(bytes(kek)).encrypt(nonce, bytes(data_key), header)
    finally:
        wipe(kek)
    body = header + nonce + sealed
    return body + hashlib.sha256(body).digest()


def read_params(blob: bytes, where: Path | str) -> KdfParams:
    """Check a key file's framing and return its KDF parameters (no secret needed)."""
    if len(blob) != FILE_BYTES or not blob.startswith(MAGIC):
        raise VaultError(f"{where}: not a localrag key file; restore it from a backup")
    body, checksum = blob[:-CHECKSUM_BYTES], blob[-CHECKSUM_BYTES:]
    if hashlib.sha256(body).digest() != checksum:
        raise VaultError(
            f"{where}: the key file is damaged (checksum mismatch); restore it from a backup"
        )
    version = blob[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise VaultError(
            f"{where}: key file format {version} is not known to this localrag; upgrade localrag"
        )
    start = len(MAGIC) + 1
    params = KdfParams(*_PARAMS.unpack(blob[start : start + _PARAMS.size]))
    params.check_floor(where)
    return params


def unwrap(blob: bytes, passphrase: bytearray, where: Path | str = "key file") -> bytearray:
    """The data key in a key file's bytes; `WrongPassphrase` if the passphrase does not open it."""
    params = read_params(blob, where)
    header = blob[:HEADER_BYTES]
    salt = header[-SALT_BYTES:]
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    sealed = blob[HEADER_BYTES + NONCE_BYTES : -CHECKSUM_BYTES]
    kek = _derive(passphrase, salt, params)
    try:
        return locked(bytearray(AESGCM(bytes(kek)).decrypt(nonce, sealed, header)))
    except InvalidTag:
        raise WrongPassphrase() from None
    finally:
        wipe(kek)


def tmp_path(path: Path) -> Path:
    """Where `write_atomic` writes the new `path` before it replaces the old one."""
    return path.with_name(path.name + ".tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old file or the new one."""
    tmp = tmp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VaultError(
            f"{path}: could not write the key file ({exc.strerror}); it is unchanged; "
            "free disk space or check the folder's permissions, then retry"
        ) from None
    fsync_dir(path.parent)


def replace_durably(src: Path, dst: Path) -> None:
    """`os.replace`, then the folder synced so that the rename survives a power cut."""
    os.replace(src, dst)
    fsync_dir(dst.parent)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its os.replace is durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VaultError(f"{path}: key file missing; restore it from a backup") from None
    except OSError as exc:
        raise VaultError(f"{path}: cannot read the key file ({exc.strerror})") from None
