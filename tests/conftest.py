"""Shared fixtures: every test gets its own home folder; the real models come from the checkout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localrag import hardening
from localrag.settings import Settings


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home folder per test, through the environment as a user would set it."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("LOCALRAG_HOME", str(folder))
    monkeypatch.delenv("LOCALRAG_PASSPHRASE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hardening.forget_secrets()  # what an earlier test's `main()` took from the environment
    yield folder
    hardening.forget_secrets()


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.load()


@pytest.fixture
def real_models(settings: Settings) -> Settings:
    """The settings, after checking that the default models are pulled and verified."""
    from localrag import models

    bad = [r.name for r in models.status(settings) if r.default and r.state != "verified"]
    if bad:
        pytest.fail(f"default models not pulled: {bad}; run `localrag models pull`")
    return settings


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail any attempt to open a network connection or resolve a name; record what was tried."""
    import socket

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args[1:] if len(args) > 1 else args)
        raise NetworkAttempt(f"network access attempted: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(None, *a))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, *a))
    return attempts


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A vault created with `localrag init`, its passphrase in the environment."""
    from localrag.cli import main

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse")
    assert main(["init"]) == 0
    capsys.readouterr()


@pytest.fixture
def hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast fake embedder in place of the real one."""
    from localrag import embed

    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: embed.HashingEmbedder())
