"""Long recordings: decoded a window at a time in bounded memory, segments timed from the start
of the recording, and a transcription killed half-way resumes where it stopped."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_synth import encode, meeting, silence

from localrag import audio_stream
from localrag.audio_stream import SAMPLE_RATE, AudioStream, cut_windows
from localrag.embed import HashingEmbedder
from localrag.errors import UsageError
from localrag.recording import transcribe_file
from localrag.records import Segment
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.transcribe import AudioInfo, FakeTranscriber

TESTS = Path(__file__).resolve().parent
SENTENCES = [
    "The lighthouse budget was approved on Tuesday by the harbour committee.",
    "Next we discussed the database migration, which starts in March.",
    "Finally, Priya will order new bicycles for the courier team.",
    "The courier team meets again on Friday at nine.",
]


def test_windows_abut_and_are_cut_in_a_pause() -> None:
    # Short phrases: each window's last 2.5 s (where it is cut) holds a pause.
    audio, _ = meeting(["Budget approved.", "Migration in March.", "New bicycles."] * 3)
    windows = list(cut_windows([audio[:70_000], audio[70_000:]], window_s=5.0))
    assert len(windows) > 2
    assert np.array_equal(np.concatenate([w.audio for w in windows]), audio)
    for before, after in itertools.pairwise(windows):
        assert before.end_s == after.start_s
    for w in windows[:-1]:  # every cut falls in a pause, not in a word
        cut = int(w.end_s * SAMPLE_RATE)
        assert np.abs(audio[cut - 800 : cut + 800]).max() < 0.01, w.end_s


def test_segments_of_later_windows_are_timed_from_the_start_of_the_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A beep at known times, one in each window: the fake hears a sentence over each beep.
    beep = (0.3 * np.sin(np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE * 2 * np.pi * 440)).astype(
        np.float32
    )
    starts_s = [1.0, 7.0, 13.0, 19.5]
    audio = silence(24.0)
    for start in starts_s:
        at = int(start * SAMPLE_RATE)
        audio[at : at + len(beep)] = beep
    path = tmp_path / "beeps.flac"
    path.write_bytes(encode(audio, ".flac"))
    monkeypatch.setattr(audio_stream, "WINDOW_S", 6.0)
    events = list(transcribe_file(path, FakeTranscriber("Beep.")))
    heard = [e.segment for e in events if e.segment is not None]
    assert [round(s.start_s, 1) for s in heard] == starts_s
    assert all(abs(s.end_s - s.start_s - 0.5) < 0.05 for s in heard)
    windows = [e for e in events if e.status == "window"]
    assert len(windows) >= 4 and windows[-1].fraction == 1.0
    assert len({int(s.start_s // 6) for s in heard}) == 4  # each beep in a window of its own
    assert events[-1].status == "done" and abs(events[-1].duration_s - 24.0) < 0.05


def test_progress_has_an_eta_from_the_rate_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio, _ = meeting(SENTENCES, gap_s=1.0)
    path = tmp_path / "meeting.wav"
    path.write_bytes(encode(audio, ".wav"))
    monkeypatch.setattr(audio_stream, "WINDOW_S", 5.0)
    events = list(transcribe_file(path, FakeTranscriber(" ".join(SENTENCES))))
    windows = [e for e in events if e.status == "window"]
    first = windows[0]
    assert first.eta_s is not None and first.rtf is not None
    left_s = first.duration_s - first.done_s
    assert first.eta_s == pytest.approx(left_s * first.rtf)
    assert events[-1].eta_s == 0.0


CHILD_MEMORY = r"""
import os, sys
from collections.abc import Iterator
from pathlib import Path
from localrag.worker.memory import peak_rss_bytes, reset_peak_rss
from localrag.audio_stream import AudioStream, cut_windows
from localrag.transcribe import decode_audio, read_file
import av, av.audio.resampler, av.audio.fifo  # its libraries are not the samples
side, path = sys.argv[1], Path(sys.argv[2])
reset_peak_rss(os.getpid())
before = peak_rss_bytes(os.getpid())
longest = 0
if side == "streamed":
    for window in cut_windows(AudioStream(path).blocks()):
        longest = max(longest, len(window.audio))
        del window  # as the transcription does: one window at a time
else:
    longest = len(decode_audio(read_file(path), str(path)))
print(peak_rss_bytes(os.getpid()) - before, longest)
"""


def _peak_growth(side: str, path: Path) -> tuple[int, int]:
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD_MEMORY, side, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_memory_of_a_long_recording_stays_bounded(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    # 25 minutes of speech and pauses, as a phone records a meeting (AAC in .m4a).
    once, _ = meeting(SENTENCES, gap_s=1.0)
    minutes = 25
    audio = np.tile(once, int(np.ceil(minutes * 60 * SAMPLE_RATE / len(once))))
    path = tmp_path / "meeting.m4a"
    path.write_bytes(encode(audio[: minutes * 60 * SAMPLE_RATE], ".m4a"))
    del audio
    samples_mb = minutes * 60 * SAMPLE_RATE * 4 / 1e6  # the whole recording as float32: 96 MB
    streamed, longest = _peak_growth("streamed", path)
    whole, length = _peak_growth("whole", path)
    print(f"peak growth: streamed {streamed / 1e6:.0f} MB, whole file {whole / 1e6:.0f} MB")
    assert longest <= audio_stream.WINDOW_S * SAMPLE_RATE and length >= minutes * 60 * 16_000 - 1
    # One window is 19 MB of samples (and the decoder about 25 MB); the whole file needs every
    # sample at once, and more (216 MB measured here).
    assert streamed / 1e6 < 70, f"streamed decoding grew by {streamed / 1e6:.0f} MB"
    assert whole / 1e6 > samples_mb, f"the whole-file decode grew by {whole / 1e6:.0f} MB only"


def _child(home: Path, recording: Path, log: Path, script: str) -> subprocess.Popen[str]:
    args = [str(home), str(recording), str(log), "4.0", script]
    return subprocess.Popen(
        [sys.executable, str(TESTS / "longrec_child.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )


def _logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_a_transcription_killed_half_way_resumes_where_it_stopped(
    settings: Settings, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: int
) -> None:
    audio, _ = meeting(SENTENCES * 2, gap_s=1.0)  # about 45 s: a dozen windows of 4 s
    recording = tmp_path / "standup.m4a"
    recording.write_bytes(encode(audio, ".m4a"))
    script = " ".join(SENTENCES[:2])
    # The uninterrupted run, for reference.
    monkeypatch.setattr(audio_stream, "WINDOW_S", 4.0)
    reference = [
        [e.segment.start_s, e.segment.end_s, e.segment.text]
        for e in transcribe_file(recording, FakeTranscriber(script))
        if e.segment is not None
    ]
    windows = len(list(cut_windows(AudioStream(recording).blocks())))
    assert windows >= 8 and reference
    Assistant.create(
        settings, bytearray(b"correct horse battery"), embedder=HashingEmbedder()
    ).close()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    child = _child(home, recording, first_log, script)
    deadline = time.monotonic() + 60
    while len(_logged(first_log)) < 4 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None and len(_logged(first_log)) == 4, child.communicate()
    child.send_signal(stop)  # windows 0-2 are kept; window 3 is in the middle of its work
    child.communicate(timeout=30)
    assert child.returncode != 0
    started = _logged(first_log)
    assert len(started) == 4
    # The finished windows wait in the encrypted vault: their words are in no file of the home.
    for file in home.rglob("*"):
        if file.is_file():
            assert b"lighthouse" not in file.read_bytes().lower(), file

    child = _child(home, recording, second_log, script)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()] == reference
    again = _logged(second_log)
    assert again[0] == started[3]  # it starts again with the window it was stopped in
    assert not set(again) & set(started[:3])  # and no finished window is done twice
    assert len(started[:3]) + len(again) == windows

    with Assistant.open(settings, bytearray(b"correct horse battery")) as assistant:
        assert assistant.store.partials.count() == 0  # the document is whole: nothing waits


@pytest.mark.models
def test_whisper_times_words_in_later_windows_from_the_start_of_the_recording(
    real_models: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localrag.transcribe import build_transcriber

    audio, ranges = meeting(SENTENCES, gap_s=1.5)  # about 25 s, in windows of about 8 s
    path = tmp_path / "standup.m4a"
    path.write_bytes(encode(audio, ".m4a"))
    monkeypatch.setattr(audio_stream, "WINDOW_S", 8.0)
    events = list(transcribe_file(path, build_transcriber(real_models)))
    assert sum(e.status == "window" for e in events) >= 3
    heard = [e.segment for e in events if e.segment is not None]
    for word, (said_from, said_to) in [
        ("lighthouse", ranges[0]),
        ("migration", ranges[1]),
        ("bicycles", ranges[2]),
        ("friday", ranges[3]),
    ]:
        found = [s for s in heard if word in s.text.lower()]
        assert found, (word, [s.text for s in heard])
        # The segment is where the sentence was said (VAD edges and cuts: 0.5 s slack).
        assert said_from - 0.5 <= found[0].start_s and found[0].end_s <= said_to + 0.5, (
            word,
            found[0],
            (said_from, said_to),
        )


def test_a_recording_found_truncated_at_its_end_fails_and_keeps_no_window(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An MP3 cut in half decodes until it stops: only its declared length tells, at the end.
    audio, _ = meeting(SENTENCES)
    data = encode(audio, ".mp3")
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(audio_stream, "WINDOW_S", 4.0)
    heard: list[int] = []

    class Counting(FakeTranscriber):
        def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
            heard.append(len(audio))
            return super().transcribe(audio)

    parts = {"embedder": HashingEmbedder(), "transcriber": Counting("Words."), "speakers": None}
    with Assistant.create(settings, bytearray(b"correct horse battery"), **parts) as assistant:
        final = [e for e in assistant.add([path]) if e.final]
        assert [e.status for e in final] == ["failed"]
        assert "truncated" in final[0].detail and str(path) in final[0].detail
        assert len(heard) >= 2  # windows were transcribed and kept before the end was reached
        assert assistant.store.partials.count() == 0


def test_transcribe_resumes_too_and_no_index_keeps_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio, _ = meeting(SENTENCES, gap_s=1.0)
    path = tmp_path / "standup.flac"
    path.write_bytes(encode(audio, ".flac"))
    monkeypatch.setattr(audio_stream, "WINDOW_S", 4.0)
    heard: list[int] = []
    stop_at: list[int] = [3]

    class Stopping(FakeTranscriber):
        """Interrupted (as by Ctrl-C) when it reaches window `stop_at[0]`."""

        def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
            if len(heard) == stop_at[0]:
                stop_at[0] = -1
                raise KeyboardInterrupt
            heard.append(len(audio))
            return super().transcribe(audio)

    script = " ".join(SENTENCES)
    fake = Stopping(script)
    parts = {"embedder": HashingEmbedder(), "transcriber": fake, "speakers": None}
    with Assistant.create(settings, bytearray(b"correct horse battery"), **parts) as assistant:
        with pytest.raises(KeyboardInterrupt):
            list(assistant.transcribe(path, index=False))
        assert assistant.store.partials.count() == 0  # --no-index keeps nothing
        heard.clear()
        stop_at[0] = 3
        with pytest.raises(KeyboardInterrupt):
            list(assistant.transcribe(path))
        assert assistant.store.partials.count() == 3
        with pytest.raises(UsageError, match=r"transcription never finished.* 3 windows"):
            assistant.remove(str(path))  # a user who gives up on it can delete what waits
        assert assistant.store.partials.count() == 0
        heard.clear()
        stop_at[0] = 3
        with pytest.raises(KeyboardInterrupt):
            list(assistant.transcribe(path))
        events = list(assistant.transcribe(path))
        assert len(heard) == len([e for e in events if e.status == "window"])  # none twice
        assert events[-1].status == "indexed" and events[-1].resumed_s > 0
        stored = assistant.transcript(events[-1].doc_id or 0)
        assert assistant.store.partials.count() == 0
    reference = [e.segment for e in transcribe_file(path, FakeTranscriber(script)) if e.segment]
    assert [(s.start_s, s.end_s, s.text) for s in stored] == [
        (s.start_s, s.end_s, s.text) for s in reference
    ]
