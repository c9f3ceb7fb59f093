"""Where localrag looks for its home folder and models, and what config.toml keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrag.errors import LocalragError
from localrag.settings import CHECKOUT, Settings, platform_data_dir, resolve_home


def test_option_beats_environment(tmp_path, home):
    assert resolve_home(tmp_path / "opt") == (tmp_path / "opt").resolve()
    assert resolve_home(None) == home.resolve()


def test_platform_folder_without_option_or_environment(monkeypatch):
    monkeypatch.delenv("LOCALRAG_HOME")
    assert resolve_home(None) == platform_data_dir()
    assert platform_data_dir().name == "localrag"


def test_models_from_checkout_unless_overridden(tmp_path, monkeypatch):
    assert Settings.load().models_dir == CHECKOUT / "models"
    monkeypatch.setenv("LOCALRAG_MODELS", str(tmp_path / "m"))
    assert Settings.load().models_dir == (tmp_path / "m").resolve()


def test_settings_round_trip(home: Path):
    s = Settings.load().with_changes(top_k=9, roles={"llm": "mine"})
    s.save()
    text = (home / "config.toml").read_text()
    assert "top_k = 9" in text and "context_tokens" not in text
    again = Settings.load()
    assert again.top_k == 9 and again.roles == {"llm": "mine"}
    assert "dir =" not in text  # the default models folder is not pinned by saving


def test_save_keeps_a_models_dir_set_in_the_config(home: Path, tmp_path: Path, monkeypatch):
    (home / "config.toml").write_text(f"[models]\ndir = {str(tmp_path / 'mine')!r}\n")
    Settings.load().with_changes(top_k=5).save()
    assert Settings.load().models_dir == tmp_path / "mine"
    # Pinned to the checkout's folder (the default here): still kept, so it beats the environment.
    (home / "config.toml").write_text(f"[models]\ndir = {str(CHECKOUT / 'models')!r}\n")
    Settings.load().with_changes(top_k=5).save()
    monkeypatch.setenv("LOCALRAG_MODELS", str(tmp_path / "elsewhere"))
    assert Settings.load().models_dir == CHECKOUT / "models"


def test_save_does_not_pin_the_models_dir_of_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LOCALRAG_MODELS", str(tmp_path / "env"))
    Settings.load().with_changes(top_k=5).save()
    monkeypatch.delenv("LOCALRAG_MODELS")
    assert Settings.load().models_dir == CHECKOUT / "models"


def test_broken_config_names_the_file(home: Path):
    (home / "config.toml").write_text("top_k = = 3")
    with pytest.raises(LocalragError, match=r"config\.toml: not valid TOML"):
        Settings.load()


def test_voice_note_settings_default_and_round_trip(home: Path):
    s = Settings.load()
    assert (s.stop_after_silence_s, s.silence_threshold_dbfs, s.voice_note_max_s) == (3, 0, 600)
    (home / "config.toml").write_text(
        "stop_after_silence_s = 1.5\nsilence_threshold_dbfs = -42\nvoice_note_max_s = 90\n"
    )
    s = Settings.load()
    assert (s.stop_after_silence_s, s.silence_threshold_dbfs, s.voice_note_max_s) == (1.5, -42, 90)
    s.with_changes(top_k=4).save()
    again = Settings.load()
    assert (again.stop_after_silence_s, again.voice_note_max_s, again.top_k) == (1.5, 90, 4)
    Settings.load().with_changes(stop_after_silence_s=3.0).save()  # back to the default
    assert "stop_after_silence_s" not in (home / "config.toml").read_text()


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("stop_after_silence_s = -1", "stop_after_silence_s = -1 is not a number from 0 to 3600"),
        ('stop_after_silence_s = "3"', "stop_after_silence_s = '3' is not a number from 0 to"),
        ("silence_threshold_dbfs = 6", "silence_threshold_dbfs = 6 is not a number from -100 to 0"),
        ("voice_note_max_s = 0", "voice_note_max_s = 0 is not a number from 1 to 3600"),
        ("voice_note_max_s = 7200", "voice_note_max_s = 7200 is not a number from 1 to 3600"),
        ("voice_note_max_s = true", "voice_note_max_s = True is not a number"),
    ],
)
def test_a_voice_note_setting_out_of_range_names_the_file_and_the_fix(
    home: Path, line: str, shown: str
):
    (home / "config.toml").write_text(line + "\n")
    with pytest.raises(LocalragError) as caught:
        Settings.load()
    message = caught.value.message
    assert message.startswith(f"{home / 'config.toml'}: {shown}")
    assert message.endswith("fix or delete the line") and "\n" not in message
