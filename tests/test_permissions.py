"""Private files are private to the user (../shared/security.md item 26): the home folder is 0700
and every file in it (vault.db, its WAL, the key file, config.toml) 0600, whatever the umask; a
vault made before is tightened when opened; `doctor` says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from localrag import embed
from localrag.cli import main
from localrag.embed import HashingEmbedder
from localrag.settings import Settings, loose_permissions

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _modes(home: Path) -> dict[str, str]:
    paths = [home, *sorted(home.iterdir())]
    return {p.name: f"{p.stat().st_mode & 0o777:04o}" for p in paths if not p.is_symlink()}


@pytest.fixture
def open_umask():
    old = os.umask(0o002)  # a umask that would leave everything readable by all
    yield
    os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_every_file_in_home_is_private(
    settings: Settings, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse")
    monkeypatch.setattr(embed, "from_settings", lambda s: HashingEmbedder())
    os.chmod(settings.home, 0o775)
    note = tmp_path / "note.txt"
    note.write_text("The capybara is the largest living rodent.\n", encoding="utf-8")
    settings.with_changes(top_k=4).save()
    assert main(["init"]) == 0
    assert main(["add", str(note)]) == 0  # writes through the WAL
    names = {p.name for p in settings.home.iterdir()}
    assert {"vault.db", "vault.key", "config.toml"} <= names
    modes = _modes(settings.home)
    assert modes.pop(settings.home.name) == "0700"
    assert set(modes.values()) == {"0600"}, modes
    capsys.readouterr()
    assert main(["doctor", "--json"]) in (0, 1)
    check = next(
        c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"].startswith("home f")
    )
    assert check["ok"] is True


@pytest.mark.usefixtures("open_umask")
def test_a_loose_vault_is_tightened_on_open_and_doctor_names_it(
    settings: Settings, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse")
    assert main(["init"]) == 0
    os.chmod(settings.home, 0o755)
    os.chmod(settings.vault_path, 0o644)
    capsys.readouterr()
    assert main(["doctor", "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    check = next(c for c in report["checks"] if c["name"].startswith("home f"))
    assert check["ok"] is False and "vault.db 0644" in check["detail"] and not report["ok"]
    assert main(["vault", "info"]) == 0
    assert loose_permissions(settings.home) == []
