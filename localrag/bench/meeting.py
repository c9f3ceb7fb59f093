"""A test meeting with known speaker turns, for diarization tests and `localrag bench speakers`.

Each turn is spoken by espeak-ng in the speaker's voice (espeak-ng variants: `en-us+m3` is a
male US voice, `en+f4` a female one, `en-gb-scotland+m7` a Scottish one) and laid end to end
with short pauses; a real recording can stand for a speaker too (`real=`). The truth is where each
turn's sound starts and ends (its leading and trailing silence trimmed), and its words.
`stereo()` puts each speaker on a channel of their own, as a call recorded as mic + system is.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from localrag.transcribe import SAMPLE_RATE, decode_audio

VOICES = {"Ana": "en+f4", "Ben": "en-us+m3", "Cal": "en-gb-scotland+m7"}
"""The meeting's speakers and their espeak-ng voices."""

STANDUP = [
    ("Ben", "Good morning. Let us start with the budget for the next quarter."),
    ("Ana", "The budget is ready. Marketing asked for twelve thousand euros more than last year."),
    ("Ben", "That is a lot. What do they want to spend it on?"),
    ("Ana", "Mostly the trade fair in Lisbon, and two new videos for the product launch."),
    ("Ben", "Fine."),
    ("Cal", "Before we decide, the server migration is late by two weeks."),
    ("Ben", "Why is it late?"),
    ("Cal", "The database vendor changed their licence, and legal has to read the new terms."),
    ("Ana", "I can ask legal to review it by Friday."),
    ("Cal", "Thank you. Then we can move the release to the second week of March."),
    ("Ben", "Agreed. Ana sends the budget, Cal updates the plan, and we meet again on Monday."),
    ("Ana", "I will send the budget today."),
]
"""(speaker, words) in order: a stand-up of three people with long and very short turns."""

PAUSES_S = (0.35, 0.6, 0.45, 0.8, 0.3, 0.5)
"""The pauses between turns, in turn (a real meeting's are between a third and a second)."""


@dataclass(frozen=True)
class TrueTurn:
    """A turn of the meeting as it was made."""

    start_s: float
    end_s: float
    speaker: str
    text: str


@dataclass(frozen=True)
class Meeting:
    """A made meeting: its audio and the turns it was made of."""

    audio: np.ndarray
    """16 kHz mono float32."""
    turns: list[TrueTurn]
    tracks: dict[str, np.ndarray]
    """Each speaker's sound alone, the length of `audio` (for `stereo`)."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def speech(self, bridge_s: float = 0.3) -> list[TrueTurn]:
        """Where each person is heard (pauses shorter than `bridge_s` bridged, as NIST's
        reference annotations do): the reference for DER. A turn's own pauses, such as the
        breath between "Good morning." and "Let us start", are not speech; nor is the hiss of a
        real recording between its phrases (frames 20 dB under the track's loud ones)."""
        frame = SAMPLE_RATE // 100
        spans: list[TrueTurn] = []
        for speaker, track in self.tracks.items():
            loud = np.abs(track[: len(track) // frame * frame]).reshape(-1, frame).max(axis=1)
            sounding = loud[loud > 0]
            floor = max(0.01, 0.1 * float(np.percentile(sounding, 95))) if len(sounding) else 1
            heard = np.flatnonzero(loud > floor)
            if not len(heard):
                continue
            breaks = np.flatnonzero(np.diff(heard) > bridge_s * 100)
            starts = [heard[0], *heard[breaks + 1]]
            ends = [*heard[breaks], heard[-1]]
            pairs = zip(starts, ends, strict=True)
            spans += [TrueTurn(s / 100, (e + 1) / 100, speaker, "") for s, e in pairs]
        return sorted(spans, key=lambda t: t.start_s)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str) -> np.ndarray:
    """`text` in espeak-ng's `voice`, 16 kHz mono float32."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "155", "--stdout", text], capture_output=True, check=True
    ).stdout
    return decode_audio(wav, f"espeak-ng {voice}")


def trimmed(audio: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """`audio` without its leading and trailing near-silence."""
    loud = np.flatnonzero(np.abs(audio) > floor)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio[:0]


def build_meeting(
    script: list[tuple[str, str]] | None = None,
    voices: dict[str, str] | None = None,
    real: dict[str, tuple[np.ndarray, str]] | None = None,
    lead_in_s: float = 0.5,
) -> Meeting:
    """The meeting of `script` ((speaker, words) turns). `real` maps a speaker to a recording
    and its transcript, played for that speaker's first turn instead of synthetic speech."""
    script = script or STANDUP
    voices = voices or VOICES
    real = dict(real or {})
    pieces: list[tuple[str, str, np.ndarray]] = []
    for speaker, text in script:
        if speaker in real:
            audio, words = real.pop(speaker)
            pieces.append((speaker, words, trimmed(audio)))
        else:
            pieces.append((speaker, text, trimmed(speak(text, voices[speaker]))))
    gap = lambda i: int(PAUSES_S[i % len(PAUSES_S)] * SAMPLE_RATE)  # noqa: E731
    total = int(lead_in_s * SAMPLE_RATE) + sum(len(p[2]) + gap(i) for i, p in enumerate(pieces))
    speakers = sorted({p[0] for p in pieces})
    tracks = {s: np.zeros(total, np.float32) for s in speakers}
    turns = []
    at = int(lead_in_s * SAMPLE_RATE)
    for i, (speaker, text, audio) in enumerate(pieces):
        level = 0.5 / max(float(np.abs(audio).max()), 1e-6)  # every voice equally loud
        tracks[speaker][at : at + len(audio)] = audio * level
        turns.append(
            TrueTurn(
                round(at / SAMPLE_RATE, 3), round((at + len(audio)) / SAMPLE_RATE, 3), speaker, text
            )
        )
        at += len(audio) + gap(i)
    mixed = np.sum(list(tracks.values()), axis=0).astype(np.float32)
    return Meeting(mixed, turns, tracks)


def stereo(meeting: Meeting, crosstalk_db: float = -24.0) -> np.ndarray:
    """(samples, 2): the first speaker on the left channel, the others on the right, each
    also heard faintly on the other side (a headset picks up a little of the call)."""
    names = sorted(meeting.tracks)
    left = meeting.tracks[names[0]]
    right = np.sum([meeting.tracks[n] for n in names[1:]], axis=0)
    leak = 10 ** (crosstalk_db / 20)
    return np.stack([left + leak * right, right + leak * left], axis=1).astype(np.float32)


def encode_stereo(samples: np.ndarray) -> bytes:
    """(samples, 2) float32 as a 16-bit stereo WAV file."""
    import io
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()
