"""`localrag record` as a user runs it: a note spoken into the "microphone" (a `Playback` of
espeak-ng speech put in the microphone's place), stopped by the silence after it, transcribed,
stored in the vault and found by `search`."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_synth import meeting, silence
from test_audio_record import Interrupted

from localrag import record, transcribe
from localrag.cli import main
from localrag.settings import Settings
from localrag.transcribe import FakeTranscriber

NOTE = "Remember to renew the parking permit before Monday."


@pytest.fixture
def speak_into_the_microphone(monkeypatch: pytest.MonkeyPatch) -> Callable[..., float]:
    """Put a `Playback` of the note (then a quiet room) where the microphone would be; the
    time the last word ends, in seconds."""

    def install(audio: np.ndarray | None = None, source: object = None) -> float:
        said, ranges = meeting([NOTE], gap_s=0.0) if audio is None else (audio, [(0.0, 0.0)])
        chosen = source or record.Playback(said, "Playback microphone")
        monkeypatch.setattr(record, "default_microphone", lambda: chosen)
        return ranges[-1][1]

    return install


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch, hashing: None) -> None:
    """The fast fake embedder, and a transcriber that "hears" the note."""
    monkeypatch.setattr(transcribe, "build_transcriber", lambda *_, **__: FakeTranscriber(NOTE))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty TMPDIR, to show that recording writes nothing there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def record_json(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[dict, str]:
    capsys.readouterr()
    assert main(["record", "--json", *options]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_a_note_stops_after_the_silence_and_is_stored(
    vault: None,
    fake_models: None,
    speak_into_the_microphone: Callable[..., float],
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    private_tmp: Path,
) -> None:
    last_word_s = speak_into_the_microphone()
    before = set(settings.home.rglob("*"))
    note, err = record_json(capsys, "--name", "permit")
    assert note["stopped_by"] == "silence" and note["doc_id"] is not None
    assert note["recorded_s"] == pytest.approx(last_word_s + 3.0, abs=0.5)
    assert "stopped after 3 s of silence" in err and "Playback microphone" in err
    assert main(["docs", "--json"]) == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert doc["path"] == "permit" and doc["meta"]["duration_s"] == note["recorded_s"]
    # The samples went nowhere but memory: only the vault's own files changed, TMPDIR is empty.
    assert {p.name for p in set(settings.home.rglob("*")) - before} <= {
        "vault.db-wal",
        "vault.db-shm",
    }
    assert list(private_tmp.iterdir()) == []


def test_the_command_line_and_the_settings_choose_how_it_stops(
    vault: None,
    fake_models: None,
    speak_into_the_microphone: Callable[..., float],
    capsys: pytest.CaptureFixture[str],
    home: Path,
) -> None:
    last_word_s = speak_into_the_microphone()
    note, _ = record_json(capsys, "--stop-after-silence", "1", "--name", "quick")
    assert note["stopped_by"] == "silence"
    assert note["recorded_s"] == pytest.approx(last_word_s + 1.0, abs=0.5)

    note, err = record_json(capsys, "--no-stop-on-silence", "--seconds", "7.5", "--name", "long")
    assert note["stopped_by"] == "limit" and note["recorded_s"] == 7.5
    assert "stopped at the limit of 7.5 s" in err

    (home / "config.toml").write_text("stop_after_silence_s = 2\nvoice_note_max_s = 20\n")
    note, _ = record_json(capsys, "--name", "configured")
    assert note["recorded_s"] == pytest.approx(last_word_s + 2.0, abs=0.5)
    (home / "config.toml").write_text("stop_after_silence_s = 0\nvoice_note_max_s = 6\n")
    note, _ = record_json(capsys, "--name", "capped")
    assert note["stopped_by"] == "limit" and note["recorded_s"] == 6.0


def test_ctrl_c_ends_the_note_and_keeps_it(
    vault: None,
    fake_models: None,
    speak_into_the_microphone: Callable[..., float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    said, _ = meeting([NOTE], gap_s=0.0)
    speak_into_the_microphone(source=Interrupted(said, 15, KeyboardInterrupt()))
    note, err = record_json(capsys, "--name", "cut short")
    assert note["stopped_by"] == "cancel" and note["recorded_s"] == pytest.approx(1.5)
    assert note["doc_id"] is not None and "stopped by you" in err


def test_silence_alone_runs_to_the_limit(
    vault: None,
    fake_models: None,
    speak_into_the_microphone: Callable[..., float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    speak_into_the_microphone(silence(1.0))
    note, _ = record_json(capsys, "--seconds", "12")
    assert note["stopped_by"] == "limit" and note["recorded_s"] == 12.0


def test_a_bad_setting_is_one_line_naming_the_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config.toml").write_text('stop_after_silence_s = "soon"\n')
    assert main(["record"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "config.toml: stop_after_silence_s = 'soon' is not a number from 0 to 3600" in err


def test_silence_options_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["record", "--stop-after-silence", "2", "--no-stop-on-silence"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.models
def test_a_spoken_note_is_transcribed_by_whisper_and_found(
    real_models: Settings,
    monkeypatch: pytest.MonkeyPatch,
    speak_into_the_microphone: Callable[..., float],
    capsys: pytest.CaptureFixture[str],
    private_tmp: Path,
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse battery")
    assert main(["init"]) == 0
    last_word_s = speak_into_the_microphone()
    before = set(real_models.home.rglob("*"))
    note, _ = record_json(capsys)
    assert note["stopped_by"] == "silence"
    assert note["recorded_s"] == pytest.approx(last_word_s + 3.0, abs=0.5)
    heard = " ".join(s["text"] for s in note["segments"]).lower()
    assert "parking permit" in heard and "monday" in heard
    assert note["path"].startswith("voice note ")
    assert main(["search", "renew the parking permit", "-k", "1", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["path"] == note["path"] and "permit" in hit["text"].lower()
    assert {p.name for p in set(real_models.home.rglob("*")) - before} <= {
        "vault.db-wal",
        "vault.db-shm",
    }
    assert list(private_tmp.iterdir()) == []
