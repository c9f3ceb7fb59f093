"""`localrag eval asr`: word error rate with Whisper's normaliser, on a LibriSpeech-style folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_synth import encode, meeting

from localrag.cli import main
from localrag.errors import UsageError
from localrag.evaluate.asr import (
    english_normalizer,
    find_utterances,
    score,
    summarize,
    word_errors,
)
from localrag.settings import Settings
from localrag.transcribe import FakeTranscriber

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"
"""../shared/data/audio beside the checkout: jfk.flac with its reference transcript."""


def test_word_errors_counts_substitutions_deletions_and_insertions() -> None:
    ref = ["ask", "not", "what", "your", "country", "can", "do"]
    assert word_errors(ref, ref) == 0
    assert word_errors(ref, ["ask", "not", "what", "my", "country", "can", "do"]) == 1
    assert word_errors(ref, ["ask", "what", "your", "country", "can", "do"]) == 1
    assert (
        word_errors(ref, ["ask", "not", "what", "your", "country", "can", "do", "for", "you"]) == 2
    )
    assert word_errors(ref, []) == len(ref)


def test_the_normaliser_is_whispers_english_one() -> None:
    normalize = english_normalizer()
    assert normalize("And so, my fellow Americans!") == "and so my fellow americans"
    # British spellings and titles are made uniform, as in Whisper's published scores.
    assert normalize("Mr. Smith's colour") == normalize("mister smith's color")


def _librispeech(folder: Path, lines: dict[str, str], ext: str = ".flac") -> None:
    chapter = folder / "84" / "121123"
    chapter.mkdir(parents=True)
    listing = []
    for uid, text in lines.items():
        audio, _ = meeting([text])
        (chapter / f"{uid}{ext}").write_bytes(encode(audio, ext))
        listing.append(f"{uid} {text.upper()}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(listing) + "\n")


def test_a_librispeech_folder_is_read_and_scored(tmp_path: Path) -> None:
    _librispeech(tmp_path, {"84-121123-0000": "go do you hear", "84-121123-0001": "but in less"})
    utterances = find_utterances(tmp_path)
    assert [u.id for u in utterances] == ["84-121123-0000", "84-121123-0001"]
    fake = FakeTranscriber("Go, do you hear?")
    report = summarize(list(score(fake, utterances)), "fake")
    assert report.results[0].errors == 0
    assert report.results[1].errors == 4  # "but in less" against "go do you hear"
    assert report.words == 7 and report.wer == pytest.approx(4 / 7)
    assert report.audio_s > 0 and report.rtf >= 0


def test_a_folder_without_transcripts_or_audio_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no \*\.trans\.txt"):
        find_utterances(tmp_path)
    (tmp_path / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(UsageError, match="no audio file for utterance 1-2-0000"):
        find_utterances(tmp_path)


@pytest.mark.models
def test_eval_asr_scores_synthesized_speech(
    real_models: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _librispeech(
        tmp_path,
        {
            "1-1-0000": "the meeting starts at nine in the morning",
            "1-1-0001": "please send the report to the finance team",
        },
    )
    assert main(["eval", "asr", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["utterances"] == 2 and report["words"] == 16  # "nine" is normalised to "9"
    assert report["wer"] < 0.25
    assert 0 < report["rtf"] < 1


@pytest.mark.models
@pytest.mark.skipif(
    not (SHARED_AUDIO / "jfk.flac").exists(),
    reason=f"{SHARED_AUDIO / 'jfk.flac'} is absent (../shared is not beside this checkout)",
)
def test_eval_asr_on_the_shared_recording_is_within_ten_percent_wer(
    real_models: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "asr", str(SHARED_AUDIO), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["utterances"] == 1 and report["words"] > 0
    assert report["wer"] <= 0.1, report["results"]
