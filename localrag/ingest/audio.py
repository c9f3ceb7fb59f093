"""Recordings to documents: transcribe, one block per timed segment, the transcript kept whole.

Each segment becomes a block whose span carries `start_s`/`end_s`, so a chunk packed from
segments covers the time range from its first segment's start to its last one's end, and a
citation reads `meeting.m4a @ 01:05–01:32`. The segments themselves go to the store with the
document (`meta["segments"]`, taken out by the pipeline and passed as `transcript=`). A recording
with no speech becomes a document with an empty transcript and a notice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from localrag.errors import IngestError
from localrag.ingest.base import Extracted, Limits, Progress, TextBuilder
from localrag.records import NewDocument, Segment
from localrag.transcribe import (
    AUDIO_EXTENSIONS,
    NO_SPEECH,
    TranscribeEvent,
    Transcriber,
    check_extension,
)

if TYPE_CHECKING:
    from localrag.chunk import ChunkSettings
    from localrag.recording import SavedWindows
    from localrag.speakers import SpeakerFinder

__all__ = ["AUDIO_EXTENSIONS", "index_transcript", "read_audio_file", "transcript_extracted"]

MAX_AUDIO_BYTES = 2_000_000_000
"""Largest recording read (a WAV of 2 GB is about 3 hours of CD-quality stereo)."""


def transcript_extracted(
    path: Path, segments: list[Segment], duration_s: float, limits: Limits | None = None
) -> Extracted:
    """The transcript as text with one block per segment, ready to chunk."""
    builder = TextBuilder(path, limits or Limits())
    for s in segments:
        # The speaker is the heading of what they say: keyword search finds their name, and
        # the embedder reads who says it.
        builder.headings = [(1, s.speaker)] if s.speaker else []
        builder.add(s.text, start_s=s.start_s, end_s=s.end_s, speaker=s.speaker)
    meta: dict[str, Any] = {"duration_s": round(duration_s, 3), "segments": segments}
    if not segments:
        meta["notice"] = NO_SPEECH
    return builder.build(**meta)


def read_audio_file(
    path: Path,
    limits: Limits,
    transcriber: Transcriber | Callable[[], Transcriber] | None = None,
    speakers: SpeakerFinder | None = None,
    partials: SavedWindows | None = None,
    sha256: str | None = None,
) -> Iterator[Progress | Extracted]:
    """The reader the ingest registry calls for audio: progress is the share of audio done.

    `transcriber` may be a function that builds it, so Whisper loads only once audio is seen.
    `speakers` (if given) labels each segment with its speaker. With `partials` and the file's
    `sha256`, the windows an interrupted run finished are not transcribed again.
    """
    from localrag.recording import transcribe_file

    if transcriber is not None and not hasattr(transcriber, "transcribe"):
        transcriber = transcriber()
    if transcriber is None:
        raise IngestError(f"{path}: audio needs a transcriber; none is configured")
    if path.stat().st_size > MAX_AUDIO_BYTES:
        raise IngestError(f"{path}: larger than {MAX_AUDIO_BYTES / 1e9:.0f} GB; split it")
    check_extension(path)
    segments: list[Segment] = []
    event: TranscribeEvent | None = None
    duration_s = 0.0
    events = transcribe_file(path, transcriber, finder=speakers, saved=partials, sha256=sha256)
    for event in events:
        # A slow machine gets as long as the recording lasts, at least the usual reader limit.
        if event.elapsed_s > max(limits.max_seconds, event.duration_s):
            raise IngestError(f"{path}: gave up after {event.elapsed_s:.0f} s of transcribing")
        if event.segment is not None:
            segments.append(event.segment)
        if event.status in ("segment", "window"):
            yield Progress(event.fraction, event.rtf, event.eta_s)
        if event.segments:
            segments = list(event.segments)
        if event.status == "done":
            duration_s = event.duration_s
    assert event is not None
    yield transcript_extracted(path, segments, duration_s, limits)


def voice_note_document(audio: np.ndarray, name: str, duration_s: float) -> NewDocument:
    """The document record of a voice note that exists only in memory."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return NewDocument(
        path=name,
        sha256=hashlib.sha256(pcm).hexdigest(),
        kind="audio",
        size_bytes=len(pcm),
        title=name,
        meta={"duration_s": round(duration_s, 3), "source": "microphone"},
    )


def voice_note_name(now: float | None = None) -> str:
    """A name for a voice note, by the local time it was recorded."""
    return time.strftime("voice note %Y-%m-%d %H:%M:%S", time.localtime(now))


def index_transcript(
    store: Any,
    embedder: Any,
    doc: NewDocument,
    extracted: Extracted,
    chunking: ChunkSettings | None = None,
) -> int:
    """Chunk, embed and store a transcript with its document in one transaction; its id.

    A document of the same path is replaced, and then the WAL checkpointed.
    """
    from localrag.chunk import chunk
    from localrag.embed import identity
    from localrag.ingest.pipeline import embed_chunks

    chunks = chunk(extracted, embedder, chunking)
    _, vectors = list(embed_chunks(store, embedder, chunks))[-1]
    meta = {**doc.meta, **{k: v for k, v in extracted.meta.items() if k != "segments"}}
    stored = NewDocument(doc.path, doc.sha256, doc.kind, doc.size_bytes, doc.title, meta)
    segments: list[Segment] = extracted.meta["segments"]
    replaces = store.document(doc.path) is not None
    made_by = identity(embedder)
    doc_id = int(store.add_document(stored, chunks, vectors, segments, embedder=made_by))
    if replaces:
        store.checkpoint()  # as `add` does: the old transcript's pages do not linger in the WAL
    return doc_id
