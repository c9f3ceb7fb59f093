"""The vault's security promises (../shared/security.md items 1-11, 15, 16), each proved here.

No models: synthetic documents with random vectors.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import pytest

from localrag.cli import main
from localrag.errors import VaultError, WrongPassphrase
from localrag.records import NewChunk, NewDocument, Segment, Span
from localrag.settings import Settings
from localrag.store import Store, change_passphrase, create_vault, keys, open_vault, rotate_key
from localrag.store import db as db_mod
from localrag.store import schema as schema_mod
from localrag.store import vault as vault_mod
from localrag.store.db import CIPHER, KeyMismatch
from localrag.store.faults import FaultyVFS
from localrag.store.sample import sample_document, unit_vectors
from localrag.store.vault import unlock
from localrag.store.vectors import codes, default_scale

PASS = b"correct horse battery staple"
MARKER = "QX7MARKERZEBRA"


def pw(text: bytes = PASS) -> bytearray:
    return bytearray(text)


def vault_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.home.iterdir() if p.is_file())


def marker_forms(marker: str) -> list[bytes]:
    return [marker.encode("utf-8"), marker.encode("utf-16-le"), marker.encode("utf-16-be")]


def files_containing(files: list[Path], needles: list[bytes]) -> list[str]:
    return [p.name for p in files if any(n in p.read_bytes() for n in needles)]


def fill_with_marker(store: Store, marker: str = MARKER) -> int:
    """A document, a transcript, a chat turn, meta and a blob, each holding the marker."""
    rng = np.random.default_rng(7)
    doc_id = store.add_document(
        *sample_document(rng, "secret", 5, marker=marker),
        transcript=[Segment(0.0, 2.0, f"spoken {marker}")],
    )
    conv = store.new_conversation(f"about {marker}")
    store.add_turn(conv, "user", f"what is {marker}?")
    store.set_meta("note", marker)
    store.put_blob("adapter", f"weights {marker}".encode())
    return doc_id


def decrypted_copy(settings: Settings, data_key: bytearray, dest: Path) -> bytes:
    """The test's own plaintext copy of the whole vault file, free pages included."""
    shutil.copy(settings.vault_path, dest)
    wal = settings.vault_path.with_name("vault.db-wal")
    if wal.exists():
        shutil.copy(wal, dest.with_name(dest.name + "-wal"))
    conn = apsw.Connection(str(dest))
    conn.execute(f"PRAGMA cipher='{CIPHER}'")
    conn.execute(f"PRAGMA key=\"x'{data_key.hex()}'\"")
    conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    conn.execute("PRAGMA rekey=''")
    conn.close()
    plain = dest.read_bytes()
    assert plain.startswith(b"SQLite format 3\0")
    return plain


# 1. Authenticated encryption: a tampered page fails loudly.
def test_tampered_page_fails_loudly(settings: Settings) -> None:
    with create_vault(settings, pw()) as store:
        for i in range(20):
            store.add_document(*sample_document(np.random.default_rng(i), f"d{i}", 5))
    data = bytearray(settings.vault_path.read_bytes())
    assert len(data) > 3 * 4096
    data[4096 + 200 : 4096 + 203] = bytes(b ^ 0xFF for b in data[4096 + 200 : 4096 + 203])
    settings.vault_path.write_bytes(bytes(data))
    with pytest.raises(VaultError, match="damaged or was altered"):
        read_everything(settings)


def read_everything(settings: Settings) -> None:
    with open_vault(settings, pw()) as store:
        for doc in store.documents():
            store.document_chunks(doc.id)
        store.integrity_problems()


# 2 and 16. No plaintext on disk, while open and after close.
def test_no_plaintext_in_any_file(settings: Settings) -> None:
    store = create_vault(settings, pw())
    fill_with_marker(store)
    files = vault_files(settings)
    assert {p.name for p in files} >= {"vault.db", "vault.db-wal", "vault.db-shm", "vault.key"}
    assert files_containing(files, marker_forms(MARKER)) == []
    store.close()
    files = vault_files(settings)
    assert files_containing(files, marker_forms(MARKER)) == []
    assert settings.vault_path.read_bytes()[:16] != b"SQLite format 3\0"
    with open_vault(settings, pw()) as again:  # and it really was stored
        assert again.get_meta("note") == MARKER


# 3. Temporary data stays in memory (in a child process: SQLite reads TMPDIR once at start).
def test_sort_distinct_index_vacuum_leave_nothing_in_tmpdir(
    settings: Settings, tmp_path: Path
) -> None:
    with create_vault(settings, pw(), keys.FLOOR) as store:
        rng = np.random.default_rng(3)
        for i in range(40):
            store.add_document(*sample_document(rng, f"big{i}", 20, marker=MARKER))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    script = textwrap.dedent(
        f"""
        from localrag.settings import Settings
        from localrag.store import open_vault
        store = open_vault(Settings.load({str(settings.home)!r}), bytearray({PASS!r}))
        conn = store.conn
        conn.execute("PRAGMA cache_size=-64")  # a tiny page cache forces spilling
        assert len(conn.execute("SELECT text FROM chunks ORDER BY text || id").fetchall()) == 800
        conn.execute("SELECT DISTINCT substr(text, 1, 200) || id FROM chunks").fetchall()
        conn.execute("CREATE INDEX chunks_by_text ON chunks(text)")
        conn.execute("DROP INDEX chunks_by_text")
        conn.execute("VACUUM")
        store.close()
        """
    )
    env = os.environ | {"TMPDIR": str(tmpdir), "SQLITE_TMPDIR": str(tmpdir)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    leftovers = [p for p in tmpdir.rglob("*") if p.is_file()]
    assert files_containing(leftovers, marker_forms(MARKER)) == []
    assert files_containing(vault_files(settings), marker_forms(MARKER)) == []


@pytest.mark.parametrize("temp_store", ["MEMORY", "FILE"])
def test_no_temporary_file_is_ever_opened(settings: Settings, temp_store: str) -> None:
    """Temp files are unlinked as soon as they open, so a folder scan alone cannot see them."""
    create_vault(settings, pw(), keys.FLOOR).close()
    vfs = FaultyVFS("record-temp-" + temp_store)
    try:
        store = open_vault(settings, pw(), vfs=vfs.name)
        rng = np.random.default_rng(5)
        for i in range(10):
            store.add_document(*sample_document(rng, f"d{i}", 20, marker=MARKER))
        conn = store.conn
        conn.execute(f"PRAGMA temp_store={temp_store}")  # FILE: proves the recorder sees them
        conn.execute("PRAGMA cache_size=-64")
        conn.execute("SELECT text FROM chunks ORDER BY text || id").fetchall()
        conn.execute("SELECT DISTINCT substr(text, 1, 200) || id FROM chunks").fetchall()
        conn.execute("CREATE INDEX chunks_by_text ON chunks(text)")
        conn.execute("VACUUM")
        store.close()
    finally:
        vfs.unregister()
    if temp_store == "MEMORY":
        assert vfs.faults.temp_files_opened == []
    else:
        assert vfs.faults.temp_files_opened != []


# 4, 13 and the rest of the connection settings.
def test_connection_settings(settings: Settings) -> None:
    with create_vault(settings, pw()) as store:

        def pragma(name: str) -> object:
            return store.conn.execute(f"PRAGMA {name}").fetchall()[0][0]

        assert pragma("mmap_size") == 0
        assert pragma("temp_store") == 2  # MEMORY
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("secure_delete") == 1
        assert pragma("cipher") == "aegis"


# 6. Argon2id floors, authenticated with the key file.
def test_kdf_floor_enforced_when_writing() -> None:
    with pytest.raises(VaultError, match="safe minimum"):
        keys.wrap(keys.new_data_key(), pw(), keys.KdfParams(memory_kib=8192, iterations=2))
    with pytest.raises(VaultError, match="safe minimum"):
        keys.wrap(keys.new_data_key(), pw(), keys.KdfParams(memory_kib=19456, iterations=1))


def _rewrite_params(blob: bytes, memory_kib: int, iterations: int) -> bytes:
    start = len(keys.MAGIC) + 1
    body = bytearray(blob[: -keys.CHECKSUM_BYTES])
    body[start : start + 12] = struct.pack(">III", memory_kib, iterations, 1)
    return bytes(body) + hashlib.sha256(bytes(body)).digest()  # a careful attacker's checksum


def test_lowered_parameters_in_the_key_file_are_refused(settings: Settings) -> None:
    create_vault(settings, pw()).close()
    original = settings.key_path.read_bytes()
    settings.key_path.write_bytes(_rewrite_params(original, 1024, 1))
    with pytest.raises(VaultError, match="safe minimum"):
        open_vault(settings, pw())
    # Changed but still above the floor: the header is authenticated, so the unwrap fails.
    settings.key_path.write_bytes(_rewrite_params(original, 19456, 2))
    with pytest.raises(WrongPassphrase):
        open_vault(settings, pw())
    settings.key_path.write_bytes(original)
    open_vault(settings, pw()).close()


def test_unlock_parameters_meet_the_floor(settings: Settings) -> None:
    create_vault(settings, pw()).close()
    params = keys.read_params(settings.key_path.read_bytes(), settings.key_path)
    assert params.memory_kib >= 19 * 1024 and params.iterations >= 2 and params.lanes >= 1


# 7. Envelope encryption.
def test_same_passphrase_twice_gives_different_key_files(tmp_path: Path) -> None:
    a = Settings(tmp_path / "a", tmp_path)
    b = Settings(tmp_path / "b", tmp_path)
    create_vault(a, pw(), keys.FLOOR).close()
    create_vault(b, pw(), keys.FLOOR).close()
    ka, kb = a.key_path.read_bytes(), b.key_path.read_bytes()
    assert ka != kb
    salt = slice(keys.HEADER_BYTES - keys.SALT_BYTES, keys.HEADER_BYTES)
    assert ka[salt] != kb[salt]
    wrapped = keys.wrap(bytearray(32), pw(), keys.FLOOR), keys.wrap(bytearray(32), pw(), keys.FLOOR)
    assert wrapped[0] != wrapped[1]


def test_flipping_any_key_file_byte_gives_a_clear_error(settings: Settings) -> None:
    create_vault(settings, pw(), keys.FLOOR).close()
    original = settings.key_path.read_bytes()
    for i in range(len(original)):
        damaged = bytearray(original)
        damaged[i] ^= 0x01
        settings.key_path.write_bytes(bytes(damaged))
        with pytest.raises(VaultError, match=r"vault\.key: .*restore it from a backup"):
            open_vault(settings, pw())
    settings.key_path.write_bytes(original[:-1])
    with pytest.raises(VaultError, match="not a localrag key file"):
        open_vault(settings, pw())


def test_data_key_bytes_are_in_no_file(settings: Settings) -> None:
    store = create_vault(settings, pw())
    fill_with_marker(store)
    data_key = unlock(settings, pw())
    needles = [bytes(data_key), data_key.hex().encode(), data_key.hex().upper().encode()]
    assert files_containing(vault_files(settings), needles) == []
    store.close()
    assert files_containing(vault_files(settings), needles) == []


# 8. Wrong passphrase: its own error, and the vault's bytes untouched.
def test_wrong_passphrase_touches_nothing(settings: Settings, capsys, monkeypatch) -> None:
    with create_vault(settings, pw()) as store:
        fill_with_marker(store)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in vault_files(settings)}
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        open_vault(settings, pw(b"not it"))
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "not it either")
    assert main(["vault", "info"]) == WrongPassphrase.exit_code == 3
    assert capsys.readouterr().err.strip() == "localrag: wrong passphrase"
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in vault_files(settings)}
    assert after == before


# 9. Passphrase change re-wraps only.
def test_passwd_keeps_the_database_and_swaps_the_passphrase(settings: Settings) -> None:
    with create_vault(settings, pw()) as store:
        fill_with_marker(store)
    db_hash = hashlib.sha256(settings.vault_path.read_bytes()).hexdigest()
    change_passphrase(settings, pw(), pw(b"new one"))
    assert hashlib.sha256(settings.vault_path.read_bytes()).hexdigest() == db_hash
    with pytest.raises(WrongPassphrase):
        open_vault(settings, pw())
    with open_vault(settings, pw(b"new one")) as store:
        assert store.get_meta("note") == MARKER
    with pytest.raises(WrongPassphrase):
        change_passphrase(settings, pw(b"wrong"), pw(b"whatever"))


# 10. Key rotation re-encrypts under a new data key.
def test_rekey_makes_the_old_data_key_useless(settings: Settings) -> None:
    with create_vault(settings, pw()) as store:
        fill_with_marker(store)
    old_key = unlock(settings, pw())
    old_bytes = settings.vault_path.read_bytes()
    rotate_key(settings, pw())
    with pytest.raises(KeyMismatch):
        Store.open(settings.vault_path, old_key)
    assert settings.vault_path.read_bytes() != old_bytes
    with open_vault(settings, pw()) as store:
        assert store.get_meta("note") == MARKER and store.integrity_problems() == []
    assert not (settings.home / "vault.key.next").exists()


def rotation_interrupted_after_rekey(settings: Settings) -> bytearray:
    """What a crash leaves between `PRAGMA rekey` and replacing the key file; the new key."""
    new_key = keys.new_data_key()
    (settings.home / "vault.key.next").write_bytes(keys.wrap(new_key, pw(), keys.FLOOR))
    old_key = unlock(settings, pw())
    conn = apsw.Connection(str(settings.vault_path))
    conn.execute(f"PRAGMA cipher='{CIPHER}'")
    conn.execute(f"PRAGMA key=\"x'{old_key.hex()}'\"")
    conn.execute(f"PRAGMA rekey=\"x'{new_key.hex()}'\"")
    conn.close()
    return new_key


def test_rekey_interrupted_after_reencryption_is_finished_on_open(settings: Settings) -> None:
    with create_vault(settings, pw(), keys.FLOOR) as store:
        fill_with_marker(store)
    new_key = rotation_interrupted_after_rekey(settings)
    with open_vault(settings, pw()) as store:
        assert store.get_meta("note") == MARKER
    assert not (settings.home / "vault.key.next").exists()
    assert unlock(settings, pw()) == new_key


def test_rekey_interrupted_before_reencryption_is_discarded(settings: Settings) -> None:
    create_vault(settings, pw(), keys.FLOOR).close()
    (settings.home / "vault.key.next").write_bytes(keys.wrap(keys.new_data_key(), pw(), keys.FLOOR))
    open_vault(settings, pw()).close()
    assert not (settings.home / "vault.key.next").exists()


def test_passwd_after_an_interrupted_rotation_wraps_the_key_that_opens_the_vault(
    settings: Settings,
) -> None:
    with create_vault(settings, pw(), keys.FLOOR) as store:
        fill_with_marker(store)
    new_key = rotation_interrupted_after_rekey(settings)
    change_passphrase(settings, pw(), pw(b"new one"), keys.FLOOR)
    with open_vault(settings, pw(b"new one")) as store:
        assert store.get_meta("note") == MARKER
    assert unlock(settings, pw(b"new one")) == new_key
    assert not (settings.home / "vault.key.next").exists()


def test_rotation_locks_out_other_connections(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_mod, "BUSY_TIMEOUT_MS", 50)
    create_vault(settings, pw(), keys.FLOOR).close()
    with open_vault(settings, pw()) as other:  # another localrag has it open
        key_file = settings.key_path.read_bytes()
        with pytest.raises(VaultError, match="open in another localrag; nothing was changed"):
            rotate_key(settings, pw())
        assert settings.key_path.read_bytes() == key_file
        change_passphrase(settings, pw(), pw(b"new one"), keys.FLOOR)  # that one may go on
        assert other.counts()["documents"] == 0
    # While a rotation holds the lock, opening fails clearly and leaves `.next` alone.
    with vault_mod._opened(settings, pw(b"new one"), exclusive=True):
        pending = settings.home / "vault.key.next"
        pending.write_bytes(keys.wrap(keys.new_data_key(), pw(b"new one"), keys.FLOOR))
        for attempt in (
            lambda: open_vault(settings, pw(b"new one")),
            lambda: change_passphrase(settings, pw(b"new one"), pw(), keys.FLOOR),
        ):
            with pytest.raises(VaultError, match="another localrag is re-encrypting the vault"):
                attempt()
        assert pending.exists()


# 15. Deletion is real.
def test_deleted_document_leaves_no_text_or_vector_bytes(
    settings: Settings, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    store = create_vault(settings, pw())
    doc, chunks, vectors = sample_document(rng, "secret", 4, marker=MARKER)
    doc_id = store.add_document(doc, chunks, vectors, transcript=[Segment(0, 1, f"said {MARKER}")])
    store.add_document(*sample_document(rng, "other", 4))
    data_key = unlock(settings, pw())
    vector_bytes = [v.tobytes()[:64] for v in vectors]
    # The int8 codes sit in sqlite-vec's chunk blobs, which span pages: a code may straddle a
    # page boundary (at most one), so its first or its last 32 bytes are whole on a page.
    code_bytes = [c.tobytes() for c in codes(vectors, default_scale(vectors.shape[1]))]
    code_pieces = [c[:32] for c in code_bytes] + [c[-32:] for c in code_bytes]

    store.checkpoint()
    before = decrypted_copy(settings, data_key, tmp_path / "before.db")
    assert MARKER.encode() in before and all(v in before for v in vector_bytes)  # the method sees
    assert all(c[:32] in before or c[-32:] in before for c in code_bytes)
    vector_bytes += code_pieces

    store.delete_document(doc_id)
    after = decrypted_copy(settings, data_key, tmp_path / "after.db")
    assert MARKER.encode() not in after
    assert [v for v in vector_bytes if v in after] == []
    store.close()
    after_close = decrypted_copy(settings, data_key, tmp_path / "closed.db")
    assert MARKER.encode() not in after_close and not any(v in after_close for v in vector_bytes)


# 5. One SQLite library: the store is the only importer of apsw.
def test_only_the_store_imports_apsw() -> None:
    root = Path(__file__).resolve().parent.parent / "localrag"
    importers = {
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "import apsw" in p.read_text(encoding="utf-8")
        or "import sqlite3" in p.read_text(encoding="utf-8")
    }
    assert {p for p in importers if not p.startswith("store/")} == set()


# Schema versions.
def test_newer_vault_is_refused_and_migrations_record_themselves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with create_vault(settings, pw(), keys.FLOOR) as store:
        assert store.schema_version() == schema_mod.LATEST
    at = schema_mod.LATEST
    released = list(schema_mod.MIGRATIONS)
    good = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"
    broken = "CREATE TABLE half (x); SELECT no_such_function()"
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*released, (at + 1, good), (at + 2, broken)])
    monkeypatch.setattr(schema_mod, "LATEST", at + 2)
    opened: list[apsw.Connection] = []
    connect = db_mod.connect

    def recording_connect(*args: Any, **kwargs: Any) -> apsw.Connection:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(db_mod, "connect", recording_connect)
    with pytest.raises(VaultError) as failed:
        open_vault(settings, pw())
    message = failed.value.message  # one line: the file, what happened, what to do
    assert "\n" not in message and message.startswith(f"{settings.vault_path}: ")
    assert f"schema {at + 2} failed" in message and f"left intact at schema {at + 1}" in message
    assert "report this bug" in message
    with pytest.raises(apsw.ConnectionClosedError):  # the failed open let go of the file
        opened[0].execute("SELECT 1")
    monkeypatch.setattr(schema_mod, "MIGRATIONS", schema_mod.MIGRATIONS[:-1])
    monkeypatch.setattr(schema_mod, "LATEST", at + 1)
    with open_vault(settings, pw()) as store:
        assert store.schema_version() == at + 1  # the good one applied once, the broken rolled back
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_schema")}
        assert "notes" in tables and "half" not in tables
    monkeypatch.setattr(schema_mod, "MIGRATIONS", released)
    monkeypatch.setattr(schema_mod, "LATEST", at)
    with pytest.raises(VaultError, match="newer localrag"):
        open_vault(settings, pw())


def test_vault_does_not_overwrite(settings: Settings) -> None:
    create_vault(settings, pw(), keys.FLOOR).close()
    key = settings.key_path.read_bytes()
    with pytest.raises(VaultError, match="already exists"):
        create_vault(settings, pw(b"other"))
    assert settings.key_path.read_bytes() == key


def test_nothing_outside_the_home_folder_after_ingest(settings: Settings, tmp_path: Path) -> None:
    with create_vault(settings, pw()) as store:
        fill_with_marker(store)
        store.add_document(
            NewDocument("/x.wav", "h", "audio", 1),
            [NewChunk(f"audio {MARKER}", Span(start_s=0.0, end_s=1.0), 3)],
            unit_vectors(np.random.default_rng(0), 1),
        )
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files_containing(everything, marker_forms(MARKER)) == []
