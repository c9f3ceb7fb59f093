"""Secrets are not kept or printed (../shared/security.md item 11): the vault's commands run with
`-v`, and neither a passphrase nor a data key shows up in a log line, an error or config.toml."""

from __future__ import annotations

import logging

import pytest

from localrag.cli import main
from localrag.errors import WrongPassphrase
from localrag.settings import Settings
from localrag.store import open_vault
from localrag.store.vault import unlock

FIRST, SECOND, WRONG = "first Secret 17", "second Secret 42", "wrong Secret 99"


def test_no_secret_in_logs_errors_or_config(
    settings: Settings, capsys: pytest.CaptureFixture[str], caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)  # every record, whatever -v sets up
    settings.with_changes(top_k=4).save()  # a config.toml for the commands to read
    printed: list[str] = []

    def run(*argv: str) -> int:
        code = main(["-v", *argv])
        out, err = capsys.readouterr()
        printed.append(out + err)
        return code

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", FIRST)
    assert run("init") == 0
    data_keys = [unlock(settings, bytearray(FIRST.encode()))]
    assert run("rekey") == 0
    data_keys.append(unlock(settings, bytearray(FIRST.encode())))
    monkeypatch.setenv("LOCALRAG_NEW_PASSPHRASE", SECOND)
    assert run("passwd") == 0
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", WRONG)
    assert run("vault", "info") == WrongPassphrase.exit_code
    with pytest.raises(WrongPassphrase) as failed:
        open_vault(settings, bytearray(WRONG.encode()))

    logged = [r.getMessage() for r in caplog.records]
    for said in ("created vault", "data key rotated", "passphrase changed"):
        assert any(said in line for line in logged), said  # -v did log each step
    texts = [*logged, caplog.text, *printed, str(failed.value), settings.config_path.read_text()]
    secrets = [FIRST, SECOND, WRONG]
    secrets += [form for key in data_keys for form in (key.hex(), key.hex().upper())]
    assert data_keys[0] != data_keys[1]
    assert [(s, t) for s in secrets for t in texts if s in t] == []
