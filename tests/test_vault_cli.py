"""The vault's commands as a user runs them, and the service's create/open."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from localrag import hardening
from localrag.cli import main
from localrag.cli.common import open_assistant
from localrag.errors import UsageError, VaultError, WrongPassphrase
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.store import keys, schema
from localrag.store.vault import unlock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_info_passwd_rekey(settings: Settings, capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "first secret")
    code, out, _ = run(capsys, "init")
    assert code == 0 and "created the encrypted vault" in out
    code, _, err = run(capsys, "init")
    assert code == UsageError.exit_code and "already exists" in err

    code, out, _ = run(capsys, "vault", "info", "--json")
    info = json.loads(out)
    assert info["cipher"] == "aegis" and info["kdf"]["algorithm"] == "argon2id"
    assert info["kdf"]["memory_kib"] >= 19 * 1024 and info["counts"]["documents"] == 0
    data_key = unlock(settings, bytearray(b"first secret")).hex()
    assert "first secret" not in out and data_key not in out.lower()

    monkeypatch.setenv("LOCALRAG_NEW_PASSPHRASE", "second secret")
    assert run(capsys, "passwd")[0] == 0
    assert run(capsys, "vault", "info")[0] == WrongPassphrase.exit_code
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text("second secret\n")
    assert "LOCALRAG_PASSPHRASE" not in os.environ  # main() took it out once read
    hardening.forget_secrets()
    code, out, _ = run(capsys, "rekey", "--passphrase-file", str(secret_file))
    assert code == 0 and "re-encrypted" in out
    code, out, _ = run(capsys, "vault", "info", "--passphrase-file", str(secret_file))
    assert code == 0 and "argon2id" in out and "vault.db" in out
    assert unlock(settings, bytearray(b"second secret")).hex() != data_key


def _no_space(*_: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _database_full(*_: object) -> None:
    raise apsw.FullError("database or disk is full")


@pytest.mark.parametrize("fails", ["key file", "database"])
def test_a_failed_init_leaves_nothing_and_can_be_rerun(
    settings: Settings, capsys, monkeypatch, fails: str
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "first secret")
    with monkeypatch.context() as broken:
        if fails == "key file":
            broken.setattr(keys.os, "replace", _no_space)
        else:  # after the key file is written
            broken.setattr(schema, "migrate", _database_full)
        code, _, err = run(capsys, "init")
    assert code == VaultError.exit_code and "could not write" in err and err.count("\n") == 1
    assert list(settings.home.iterdir()) == []
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "vault", "info")[0] == 0


def test_init_refuses_an_empty_passphrase(settings: Settings, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "")
    code, _, err = run(capsys, "init")
    assert code == UsageError.exit_code and "empty" in err
    assert not settings.vault_path.exists() and not settings.key_path.exists()


def test_commands_without_a_vault_say_how_to_make_one(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "x")
    code, _, err = run(capsys, "vault", "info")
    assert code != 0 and "localrag init" in err


def test_assistant_create_open_with_fake_parts(settings: Settings) -> None:
    from localrag.embed import HashingEmbedder

    fake = HashingEmbedder()
    assert not Assistant.vault_exists(settings)
    with Assistant.create(settings, bytearray(b"pw"), embedder=fake) as assistant:
        assert assistant.embedder is fake and assistant.store.counts()["documents"] == 0
    assert Assistant.vault_exists(settings)
    with pytest.raises(WrongPassphrase):
        Assistant.open(settings, bytearray(b"wrong"))
    with Assistant.open(settings, bytearray(b"pw"), embedder=fake) as assistant:
        assert assistant.store.vector_dim is None


def test_open_assistant_reads_the_passphrase_the_standard_way(
    settings: Settings, monkeypatch
) -> None:
    Assistant.create(settings, bytearray(b"pw")).close()
    args = argparse.Namespace(home=None, passphrase_file=None)
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "pw")
    with open_assistant(args) as assistant:
        assert assistant.settings.home == settings.home
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "nope")
    with pytest.raises(WrongPassphrase):
        open_assistant(args)


def test_bench_vault_runs_both_sides_and_reports_the_ratio(capsys) -> None:
    code, out, _ = run(capsys, "bench", "vault", "--n", "300", "--queries", "5", "--json")
    report = json.loads(out)
    assert code == 0 and report["chunks"] == 300
    for side in ("plain", "encrypted"):
        assert report[side]["insert_s"] > 0 and report[side]["knn"]["p95_ms"] > 0
    ratio = report["encrypted"]["insert_s"] / report["plain"]["insert_s"]
    assert report["encrypted_over_plain"]["insert"] == pytest.approx(ratio, rel=0.01)
    assert report["knn_recall_at_10"] >= 0.95 and report["unlock_s"] > 0


KILLED_INIT = """
import os, signal, sys
from pathlib import Path
from localrag.settings import Settings
from localrag.store import create_vault, schema, vault
kill = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "after the key file":
    vault.Store.open = kill
else:
    schema.migrate = kill
create_vault(Settings(Path(sys.argv[1]), Path(sys.argv[1])), bytearray(b"first secret"))
"""


def _kill_init(settings: Settings, when: str) -> bytes:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_INIT, str(settings.home), when], check=False
    )
    assert child.returncode == -signal.SIGKILL
    return settings.key_path.read_bytes()


def test_init_killed_after_the_key_file_is_finished_by_rerunning_it(
    settings: Settings, capsys, monkeypatch
) -> None:
    key_file = _kill_init(settings, "after the key file")
    assert not settings.vault_path.exists()
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "first secret")
    code, _, err = run(capsys, "vault", "info")
    assert code != 0 and "create one with `localrag init`" in err

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "another secret")
    code, _, err = run(capsys, "init")
    assert code == VaultError.exit_code and "key file without its vault.db" in err
    assert settings.key_path.read_bytes() == key_file and not settings.vault_path.exists()

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "first secret")
    assert run(capsys, "init")[0] == 0 and settings.key_path.read_bytes() == key_file
    assert run(capsys, "vault", "info")[0] == 0


def test_init_killed_before_the_schema_leaves_a_vault_that_opens(
    settings: Settings, capsys, monkeypatch
) -> None:
    key_file = _kill_init(settings, "before the schema")
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "first secret")
    code, out, _ = run(capsys, "vault", "info", "--json")  # the migrations run on open
    assert code == 0 and json.loads(out)["schema_version"] == schema.LATEST
    assert settings.key_path.read_bytes() == key_file
