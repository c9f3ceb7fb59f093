"""Never lose data (../shared/security.md items 9, 10, 12-14): kills and failed writes.

The harnesses fork the test process (no interpreter start-up per run) and SIGKILL the child at
random moments; afterwards the vault must be consistent and hold everything it reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.errors import VaultError, WrongPassphrase
from localrag.settings import Settings
from localrag.store import Store, change_passphrase, create_vault, keys, open_vault, rotate_key
from localrag.store.db import KeyMismatch
from localrag.store.faults import FaultyVFS
from localrag.store.sample import sample_document
from localrag.store.vault import next_key_path, unlock

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks")

PASS = bytearray(b"kill me softly")
N_PATHS = 40
CHUNKS = 8


def version(seed: int) -> tuple:
    """Document `seed // 1000` in its version `seed`: the same seed always gives the same one."""
    return sample_document(np.random.default_rng(seed), f"doc{seed // 1000}", CHUNKS + seed % 5)


def add_version(store: Store, seed: int) -> None:
    doc, chunks, vectors = version(seed)
    store.add_document(dataclasses.replace(doc, meta={"seed": seed}), chunks, vectors)


def log_line(fd: int, line: str) -> None:
    """One line of the child's log, on disk before it goes on (it may be killed any moment)."""
    os.write(fd, f"{line}\n".encode())
    os.fsync(fd)


def churn(path: Path, key_hex: str, log: Path, finish: bool) -> None:
    """The child: add, replace and delete documents forever (or, if `finish`, add what is missing).

    Each change is logged `begin path seed` before it starts and `done path seed` once the store
    returns (seed -1: deleted), so the parent knows what the program reported as stored.
    """
    store = Store.open(path, bytearray.fromhex(key_hex))
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    rng = random.Random(os.getpid())
    while True:
        present = {d.path: d for d in store.documents()}
        todo = [i for i in range(N_PATHS) if f"/docs/doc{i}.txt" not in present]
        if finish and not todo:
            break
        i = rng.choice(todo) if finish else rng.randrange(N_PATHS)
        doc_path = f"/docs/doc{i}.txt"
        delete = doc_path in present and rng.random() < 0.3
        seed = -1 if delete else i * 1000 + rng.randrange(1000)
        log_line(fd, f"begin {doc_path} {seed}")
        if delete:
            store.delete_document(present[doc_path].id)
        else:
            add_version(store, seed)
        log_line(fd, f"done {doc_path} {seed}")
    store.close()


def in_child(action: Callable[[], object], kill_after_s: float | None = None) -> bool:
    """Run `action` in a forked child, SIGKILLed after `kill_after_s` unless it is done by then.

    Returns whether it was killed; a child that fails prints its traceback and fails the test.
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            action()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0
    return False


def run_child(settings: Settings, key_hex: str, kill_after_s: float | None) -> tuple[bool, str]:
    """A churning child killed after `kill_after_s` (None: it finishes the set); and its log."""
    log = settings.home / "churn.log"
    log.unlink(missing_ok=True)
    finish = kill_after_s is None
    killed = in_child(
        functools.partial(churn, settings.vault_path, key_hex, log, finish), kill_after_s
    )
    return killed, log.read_text() if log.exists() else ""


def replay(before: dict[str, int], log: str) -> tuple[dict[str, int], tuple[str, int] | None]:
    """What the vault must hold after the child's log: every `done` change applied to `before`;
    and the change begun but not reported done when it died (path, seed), if any."""
    expected = dict(before)
    in_flight: tuple[str, int] | None = None
    for line in log.splitlines():
        event, path, seed = line.split()
        if event == "begin":
            assert in_flight is None, line  # one change at a time
            in_flight = (path, int(seed))
        else:
            assert in_flight == (path, int(seed)) and event == "done", line
            expected[path] = int(seed)
            in_flight = None
    return expected, in_flight


def check_vault(
    store: Store, expected: dict[str, int], in_flight: tuple[str, int] | None = None
) -> dict[str, int]:
    """Consistent; every document complete; every change reported done is there; only the one in
    flight may be either way. Returns the stored seeds (-1 stands for absent, as in the log)."""
    assert store.integrity_problems() == []
    stored = {d.path: d for d in store.documents()}
    for doc in stored.values():
        _, chunks, vectors = version(doc.meta["seed"])
        got = store.document_chunks(doc.id)
        assert [c.text for c in got] == [c.text for c in chunks]
        nearest = store.knn(vectors[0], 1)
        assert nearest and store.chunks([nearest[0][0]])[0].text == chunks[0].text
    seeds = {p: d.meta["seed"] for p, d in stored.items()}
    for path in expected.keys() | seeds.keys():
        allowed = {expected.get(path, -1)}
        if in_flight and in_flight[0] == path:
            allowed.add(in_flight[1])
        assert seeds.get(path, -1) in allowed, (path, seeds.get(path, -1), allowed)
    return seeds


@pytest.mark.slow
def test_ingest_survives_sigkill_at_random_moments(settings: Settings) -> None:
    create_vault(settings, bytearray(PASS), keys.FLOOR).close()
    key_hex = unlock(settings, bytearray(PASS)).hex()
    stored: dict[str, int] = {}
    rng = random.Random(1234)
    kills = in_flight_kills = 0
    while kills < 55:
        killed, log = run_child(settings, key_hex, rng.uniform(0.01, 0.2))
        kills += killed
        expected, in_flight = replay(stored, log)
        in_flight_kills += in_flight is not None
        with Store.open(settings.vault_path, bytearray.fromhex(key_hex)) as store:
            stored = check_vault(store, expected, in_flight)
    assert len(stored) > 5  # the children did real work between kills
    assert in_flight_kills >= 10  # the kills do land in changes under way
    killed, log = run_child(settings, key_hex, None)  # a re-run completes the rest
    assert not killed
    expected, in_flight = replay(stored, log)
    assert in_flight is None
    with open_vault(settings, bytearray(PASS)) as store:
        assert len(store.documents()) == N_PATHS
        check_vault(store, expected)


def working_passphrases(settings: Settings, *candidates: bytes) -> list[bytes]:
    works = []
    for candidate in candidates:
        try:
            open_vault(settings, bytearray(candidate)).close()
            works.append(candidate)
        except WrongPassphrase:
            pass
    return works


def test_passwd_is_atomic_under_kills(settings: Settings) -> None:
    """Killed at random moments (mostly during Argon2id): exactly one passphrase works."""
    a, b = b"passphrase A", b"passphrase B"
    create_vault(settings, bytearray(a), keys.FLOOR).close()
    db_bytes = settings.vault_path.read_bytes()
    rng = random.Random(99)
    for _ in range(12):
        pid = os.fork()
        if pid == 0:
            try:
                while True:  # flip between the two passphrases until killed
                    for old, new in ((a, b), (b, a)):
                        with contextlib.suppress(WrongPassphrase):
                            change_passphrase(settings, bytearray(old), bytearray(new), keys.FLOOR)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert len(working_passphrases(settings, a, b)) == 1
    assert settings.vault_path.read_bytes() == db_bytes  # only the key file ever changed


class DieAtStep:
    """Stands in for `os` in keys.py: the process SIGKILLs itself just before its `n`th write,
    fsync or replace (counted from 0) of a key file; a write killed is torn, half of it written."""

    STEPS = ("write", "fsync", "replace")

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name not in self.STEPS:
            return real

        def step(*args: Any) -> Any:
            if self.seen == self.n:
                if name == "write":
                    fd, data = args
                    real(fd, data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            self.seen += 1
            return real(*args)

        return step


def killed_at_step(n: int, action: Callable[[], object]) -> bool:
    """Run `action` in a child that dies at key-file step `n`: whether it died or finished."""

    def dying() -> None:
        keys.os = DieAtStep(n)  # type: ignore[assignment]
        action()

    return in_child(dying)


def test_passwd_killed_at_each_step_of_the_key_file_write(settings: Settings) -> None:
    """Steps: write the temp file (torn), fsync it, replace the key file, fsync the folder."""
    create_vault(settings, bytearray(b"pass 0"), keys.FLOOR).close()
    db_bytes = settings.vault_path.read_bytes()
    current = b"pass 0"
    for n in range(5):
        new = f"pass {n + 1}".encode()
        change = functools.partial(
            change_passphrase, settings, bytearray(current), bytearray(new), keys.FLOOR
        )
        finished = not killed_at_step(n, change)
        assert finished == (n == 4)  # four steps, each one killed in turn, then none
        # Until the key file is replaced the old passphrase opens the vault; from then on the new.
        expected = new if n >= 3 else current
        assert working_passphrases(settings, current, new) == [expected]
        current = expected
    assert settings.vault_path.read_bytes() == db_bytes


def opens_with(settings: Settings, data_key: bytearray) -> bool:
    try:
        Store.open(settings.vault_path, bytearray(data_key)).close()
    except KeyMismatch:
        return False
    return True


def rotating_to(settings: Settings, new_key: bytearray) -> Callable[[], None]:
    """What the child runs: `rotate_key`, with `new_key` as its "random" new data key."""

    def rotate() -> None:
        keys.new_data_key = lambda: bytearray(new_key)
        rotate_key(settings, bytearray(PASS))

    return rotate


def check_rotation(
    settings: Settings, old: bytearray, new: bytearray, stored: dict[str, int], padding: bytes
) -> bytearray:
    """Exactly one of the two data keys opens the vault, the passphrase unlocks that one (after
    `open` has finished or discarded the rotation), and nothing was lost. Returns that key."""
    works = [key for key in (old, new) if opens_with(settings, key)]
    assert len(works) == 1
    with open_vault(settings, bytearray(PASS)) as store:
        assert store.integrity_problems() == []  # every page read back, so every page decrypts
        assert {d.path: d.meta["seed"] for d in store.documents()} == stored
        assert store.get_blob("padding") == padding
    assert unlock(settings, bytearray(PASS)) == works[0]
    assert not next_key_path(settings).exists()
    return works[0]


@pytest.mark.slow
def test_rekey_is_atomic_under_kills(settings: Settings) -> None:
    """Killed at each key-file step of a rotation, then at random moments of whole rotations."""
    stored = {f"/docs/doc{i}.txt": i * 1000 for i in range(N_PATHS)}
    padding = np.random.default_rng(0).bytes(2 << 20)  # so that re-encrypting takes a while
    with create_vault(settings, bytearray(PASS), keys.FLOOR) as store:
        for seed in stored.values():
            add_version(store, seed)
        store.put_blob("padding", padding)
    current = unlock(settings, bytearray(PASS))
    # Steps: write vault.key.next (torn), fsync it, rename it, fsync the folder; PRAGMA rekey;
    # rename it over vault.key, fsync the folder.
    for n in range(7):
        new = keys.new_data_key()
        finished = not killed_at_step(n, rotating_to(settings, new))
        assert finished == (n == 6)
        works = check_rotation(settings, current, new, stored, padding)
        assert works == (new if n >= 4 else current)  # the new key from the rekey's commit on
        current = works
    started = time.monotonic()
    new = keys.new_data_key()
    assert not in_child(rotating_to(settings, new))
    whole_s = time.monotonic() - started
    current = check_rotation(settings, current, new, stored, padding)
    assert current == new
    rng = random.Random(5)
    kills = runs = 0
    while kills < 5 and runs < 20:  # a rotation quicker than the one timed may finish: go on
        new = keys.new_data_key()
        kills += in_child(rotating_to(settings, new), rng.uniform(0, whole_s))
        runs += 1
        current = check_rotation(settings, current, new, stored, padding)
    assert kills == 5


def test_failed_writes_are_reported_rolled_back_and_retried(settings: Settings) -> None:
    create_vault(settings, bytearray(PASS), keys.FLOOR).close()
    rng = np.random.default_rng(0)
    first, second = sample_document(rng, "first", 4), sample_document(rng, "second", 30)
    vfs = FaultyVFS()
    try:
        store = open_vault(settings, bytearray(PASS), vfs=vfs.name)
        first_id = store.add_document(*first)
        vfs.faults.fail_writes = True
        with pytest.raises(VaultError, match=r"could not write the vault.*retry"):
            store.add_document(*second)
        with pytest.raises(VaultError, match="could not write the vault"):
            store.delete_document(first_id)
        with pytest.raises(VaultError, match="could not write the vault"):
            store.put_blob("model", b"x" * 3_000_000)
        assert vfs.faults.failed > 0
        assert [d.path for d in store.documents()] == ["/docs/first.txt"]
        assert store.blobs() == []
        vfs.faults.fail_writes = False
        store.add_document(*second)  # the retry succeeds
        assert store.integrity_problems() == []
        store.close()
    finally:
        vfs.unregister()
    with open_vault(settings, bytearray(PASS)) as store:
        assert [d.path for d in store.documents()] == ["/docs/first.txt", "/docs/second.txt"]
        assert store.integrity_problems() == []


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("POSIX signals", allow_module_level=True)
