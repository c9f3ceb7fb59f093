"""`localrag transcribe` and `localrag record` as a user runs them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from audio_synth import encode, fake_sounddevice, meeting

from localrag.cli import main
from localrag.cli.audio import srt, vtt
from localrag.records import Segment
from localrag.settings import Settings

SEGMENTS = [Segment(0.0, 2.5, "Hello there."), Segment(3661.25, 3663.0, "An hour later.")]


def test_subtitles_have_the_standard_timestamps() -> None:
    assert srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n01:01:01,250 --> 01:01:03,000\nAn hour later.\n\n"
    )
    assert vtt(SEGMENTS).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n")


def test_record_without_a_microphone_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["record", "--seconds", "2"]) == 8
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sounddevice" in err


def test_transcribing_a_broken_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt nothing more")
    assert main(["transcribe", str(path), "--no-index"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


@pytest.mark.models
def test_transcribe_prints_indexes_and_search_cites_the_time(
    real_models: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse battery")
    assert main(["init"]) == 0
    audio, ranges = meeting(
        ["Welcome to the weekly call.", "The new bicycles for the courier team arrive on Friday."],
        gap_s=3.0,
    )
    path = tmp_path / "call.webm"
    path.write_bytes(encode(audio, ".webm"))
    capsys.readouterr()

    assert main(["transcribe", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines and all(line.startswith("[00:0") for line in lines)
    assert "bicycles" in out.lower()
    assert "indexed as document" in err and "RTF" in err

    assert main(["transcribe", str(path), "--no-index", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["doc_id"] is None and len(printed["segments"]) == len(lines)
    assert printed["duration_s"] == pytest.approx(len(audio) / 16_000, abs=0.05)

    assert main(["search", "bicycles courier", "-k", "1", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    assert hit["path"] == str(path)
    start, end = ranges[1]
    assert hit["start_s"] <= start + 0.5 and hit["end_s"] >= end - 0.5


@pytest.mark.models
def test_record_transcribes_and_indexes_a_voice_note(
    real_models: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse battery")
    assert main(["init"]) == 0
    capsys.readouterr()
    said, _ = meeting(["Remember to renew the parking permit before Monday."])
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(said))
    seconds = len(said) / 16_000 + 0.5
    assert main(["record", "--seconds", f"{seconds:.1f}", "--name", "permit", "--json"]) == 0
    note = json.loads(capsys.readouterr().out)
    assert note["path"] == "permit" and note["doc_id"] is not None
    assert "parking permit" in " ".join(s["text"] for s in note["segments"]).lower()
    assert main(["search", "parking permit", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == "permit"


@pytest.mark.models
def test_bench_audio_compares_with_raw_faster_whisper_on_the_same_text(
    real_models: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench.flac"
    path.write_bytes(encode(meeting(["The bench reads this sentence twice."])[0], ".flac"))
    assert main(["bench", "audio", str(path), "--runs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["same_text"] is True  # both sides heard the same words
    assert result["ours_s"] > 0 and result["raw_s"] > 0 and result["duration_s"] > 2


@pytest.mark.models
def test_adding_a_silent_recording_says_so(
    real_models: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from audio_synth import silence

    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "a passphrase for tests")
    assert main(["init"]) == 0
    quiet, also_quiet = tmp_path / "quiet.wav", tmp_path / "also-quiet.flac"
    quiet.write_bytes(encode(silence(3.0), ".wav"))
    also_quiet.write_bytes(encode(silence(2.0), ".flac"))
    capsys.readouterr()
    assert main(["add", str(quiet)]) == 0
    assert f"{quiet}: no speech" in capsys.readouterr().err
    assert main(["add", str(also_quiet), "--json"]) == 0
    [added] = json.loads(capsys.readouterr().out)["added"]
    assert added["path"] == str(also_quiet) and added["notice"].startswith("no speech")
