"""Recordings in the vault: added, searchable, cited by time; bad ones fail alone."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_synth import encode, meeting, silence

from localrag.embed import HashingEmbedder
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.transcribe import NO_SPEECH, SAMPLE_RATE, FakeTranscriber

SENTENCES = [
    "The lighthouse budget was approved on Tuesday by the harbour committee.",
    "Next we discussed the database migration, which starts in March.",
    "Finally, Priya will order new bicycles for the courier team.",
]


def _open(settings: Settings, **parts: object) -> Assistant:
    return Assistant.create(settings, bytearray(b"correct horse battery"), **parts)


@pytest.fixture
def fake(settings: Settings) -> Iterator[Assistant]:
    script = " ".join(SENTENCES)
    with _open(settings, embedder=HashingEmbedder(), transcriber=FakeTranscriber(script)) as a:
        yield a


@pytest.fixture(scope="module")
def recording() -> tuple[bytes, list[tuple[float, float]]]:
    audio, ranges = meeting(SENTENCES, gap_s=2.0)
    return encode(audio, ".m4a"), ranges


def test_a_recording_is_added_and_found_with_its_time_range(
    fake: Assistant, tmp_path: Path, recording: tuple[bytes, list[tuple[float, float]]]
) -> None:
    path = tmp_path / "standup.m4a"
    path.write_bytes(recording[0])
    events = list(fake.add([path]))
    assert events[-1].status == "added", events[-1]
    progress = [e for e in events if e.fraction is not None]
    shares = [e.fraction for e in progress]
    assert shares and shares == sorted(shares) and shares[-1] <= 1.0
    assert all(e.rtf is not None and e.rtf > 0 for e in progress)  # the real-time factor
    doc = fake.documents()[0]
    assert doc.kind == "audio" and doc.meta["duration_s"] > 10
    assert [s.text for s in fake.transcript(doc.id)] == SENTENCES
    hit = fake.search("bicycles courier", k=1)[0]
    assert hit.chunk.path == str(path)
    assert hit.chunk.span.start_s is not None and hit.chunk.span.end_s is not None
    assert hit.chunk.span.start_s < hit.chunk.span.end_s <= doc.meta["duration_s"]


def test_bad_recordings_fail_alone_with_one_line_naming_them(
    fake: Assistant, tmp_path: Path, recording: tuple[bytes, list[tuple[float, float]]]
) -> None:
    good, cut, junk = tmp_path / "good.m4a", tmp_path / "cut.mp3", tmp_path / "junk.wav"
    good.write_bytes(recording[0])
    mp3 = encode(meeting(SENTENCES[:1])[0], ".mp3")
    cut.write_bytes(mp3[: len(mp3) // 2])
    junk.write_bytes(b"\x00\x01 definitely not a wave file" * 40)
    final = {e.path: e for e in fake.add([cut, good, junk]) if e.final}
    assert final[str(good)].status == "added"
    for bad in (cut, junk):
        event = final[str(bad)]
        assert event.status == "failed"
        assert str(bad) in event.detail and "\n" not in event.detail
    assert [d.path for d in fake.documents()] == [str(good)]


def test_silence_is_indexed_with_an_empty_transcript_and_a_notice(
    fake: Assistant, tmp_path: Path
) -> None:
    path = tmp_path / "quiet.wav"
    path.write_bytes(encode(silence(4.0), ".wav"))
    events = list(fake.transcribe(path))
    assert events[-1].status == "indexed" and events[-1].detail == NO_SPEECH
    doc = fake.documents()[0]
    assert doc.path == str(path) and doc.chunk_count == 0
    assert doc.meta["notice"] == NO_SPEECH
    assert fake.transcript(doc.id) == []


def test_adding_silence_indexes_an_empty_transcript_with_a_notice(
    fake: Assistant, tmp_path: Path
) -> None:
    path = tmp_path / "quiet.opus"
    path.write_bytes(encode(silence(4.0), ".opus"))
    final = [e for e in fake.add([path]) if e.final]
    assert [(e.status, e.detail) for e in final] == [("added", NO_SPEECH)]
    assert fake.transcript(final[0].doc_id) == []  # type: ignore[arg-type]


def test_transcribing_again_replaces_the_document_and_checkpoints(
    fake: Assistant, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "note.flac"
    path.write_bytes(encode(meeting(SENTENCES[:1])[0], ".flac"))
    first = list(fake.transcribe(path))[-1].doc_id
    again = list(fake.transcribe(path))[-1].doc_id
    assert [d.id for d in fake.documents()] == [again] and again != first
    assert settings.vault_path.with_name(settings.vault_path.name + "-wal").stat().st_size == 0


def test_transcribe_without_index_stores_nothing(fake: Assistant, tmp_path: Path) -> None:
    path = tmp_path / "note.flac"
    path.write_bytes(encode(meeting(SENTENCES[:2])[0], ".flac"))
    events = list(fake.transcribe(path, index=False))
    assert [e.segment.text for e in events if e.segment] == SENTENCES
    # Speakers are told apart once everything is heard: their event comes last.
    assert [e.status for e in events][-2:] == ["done", "speakers"]
    assert events[-1].rtf is not None
    assert [s.text for s in events[-1].segments] == SENTENCES
    assert fake.documents() == []


def test_a_voice_note_is_stored_from_memory_only(fake: Assistant, settings: Settings) -> None:
    audio, _ = meeting(SENTENCES[:1])
    before = set(settings.home.rglob("*"))
    events = list(fake.record_note(audio, name="voice note test"))
    assert events[-1].status == "indexed"
    doc = fake.documents()[0]
    assert doc.path == "voice note test" and doc.kind == "audio"
    assert doc.meta["duration_s"] == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.01)
    assert fake.search("lighthouse", k=1)[0].chunk.doc_id == doc.id
    # Only the vault's own files changed: the recording went nowhere else.
    assert {p.name for p in set(settings.home.rglob("*")) - before} <= {
        "vault.db-wal",
        "vault.db-shm",
    }


@pytest.mark.models
def test_spoken_words_are_found_at_the_time_they_were_said(
    real_models: Settings,
    tmp_path: Path,
    recording: tuple[bytes, list[tuple[float, float]]],
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[object],
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    data, ranges = recording
    path = tmp_path / "meeting.m4a"
    path.write_bytes(data)
    with _open(real_models) as a:
        final = [e for e in a.add([path]) if e.final]
        assert [e.status for e in final] == ["added"], final
        for query, (said_from, said_to) in [
            ("lighthouse budget approved", ranges[0]),
            ("bicycles for the courier team", ranges[2]),
        ]:
            hit = a.search(query, k=1)[0]
            assert hit.chunk.path == str(path)
            start, end = hit.chunk.span.start_s, hit.chunk.span.end_s
            assert start is not None and end is not None
            # The cited range holds the moment the words were said (VAD edges: 0.5 s slack).
            assert start <= said_from + 0.5 and end >= said_to - 0.5, (query, start, end)
        transcript = " ".join(s.text for s in a.transcript(a.documents()[0].id)).lower()
        assert "lighthouse" in transcript and "bicycles" in transcript
    assert no_network == []
    # Nothing of the recording or its words was written outside the vault.
    for folder in (real_models.home, scratch):
        for file in folder.rglob("*"):
            if file.is_file() and not file.name.startswith("vault.") and file.stat().st_size:
                assert b"lighthouse" not in file.read_bytes().lower(), file
