"""`localrag add` of one recording in a child process, with a slow fake transcriber that notes each
window it starts in a log, so that a test can kill it mid-transcription and see what a second
run transcribes again.

    python tests/longrec_child.py HOME RECORDING LOG WINDOW_S SCRIPT

prints the stored transcript as JSON lines ([start, end, text]) once the recording is added.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from localrag import audio_stream
from localrag.embed import HashingEmbedder
from localrag.records import Segment
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.transcribe import AudioInfo, FakeTranscriber

PASSPHRASE = b"correct horse battery"


class LoggingTranscriber(FakeTranscriber):
    """A fake that writes "<samples> <hash>" of each window to `log` as it starts, then takes
    `pause_s` over it: a kill in that time catches it in the middle of a window."""

    def __init__(self, script: str, log: Path, pause_s: float) -> None:
        super().__init__(script)
        self.log = log
        self.pause_s = pause_s

    def transcribe(self, audio: np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
        with self.log.open("a") as f:
            f.write(f"{len(audio)} {window_id(audio)}\n")
            f.flush()
            os.fsync(f.fileno())
        time.sleep(self.pause_s)
        return super().transcribe(audio)


def window_id(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio).tobytes()).hexdigest()[:16]


def main() -> None:
    # As a terminal gives it: a test runner started in the background ignores SIGINT, and its
    # children would inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    home, recording, log, window_s, script = sys.argv[1:6]
    audio_stream.WINDOW_S = float(window_s)
    settings = Settings.load(Path(home))
    transcriber = LoggingTranscriber(script, Path(log), pause_s=1.5)
    parts = {"embedder": HashingEmbedder(), "transcriber": transcriber}
    with Assistant.open(settings, bytearray(PASSPHRASE), **parts) as assistant:
        events = list(assistant.add([Path(recording)]))
        assert events[-1].status == "added", events[-1]
        for s in assistant.transcript(events[-1].doc_id or 0):
            print(json.dumps([s.start_s, s.end_s, s.text]))


if __name__ == "__main__":
    main()
