"""When a voice note should stop: the level of each block of samples, and a stop rule.

Pure numpy, so it is tested on synthetic and spoken audio without a microphone. A block is
speech when its RMS level is above a threshold; the threshold is fixed (`threshold_dbfs` < 0)
or, with 0, set from the room: the quietest block of the first half second (a pause between
words or the room before the first one) plus `MARGIN_DB`. The note stops after `stop_after_s`
of continuous silence once speech has been heard, never before any speech, and always at
`max_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR_DBFS = -100.0
"""The level of digital silence (an RMS of zero would be minus infinity)."""
CALIBRATION_S = 0.5
"""How much of the start of a note the automatic threshold learns the room from."""
MARGIN_DB = 10.0
"""How far above the room's noise speech must be: speech at a laptop microphone is 20-40 dB
above its hiss, a breath or a fan's hum changes the level by a few dB."""
LOWEST_THRESHOLD_DBFS = -60.0
"""The automatic threshold never goes below this: in a silent room (or digital silence) the
noise floor plus the margin would make the faintest hiss count as speech."""
HIGHEST_THRESHOLD_DBFS = -30.0
"""Nor above this: someone who starts talking at once raises the first half second's quietest
block, and ordinary speech (-30 to -15 dBFS) must still count."""
MIN_SPEECH_S = 0.2
"""Speech is heard once this much sound above the threshold has been: a click or a cough of
one block does not start the silence countdown."""


def level_dbfs(block: np.ndarray) -> float:
    """The RMS level of `block` (float samples in -1..1) in dB relative to full scale."""
    if block.size == 0:
        return FLOOR_DBFS
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    return max(FLOOR_DBFS, 20.0 * float(np.log10(rms))) if rms > 0 else FLOOR_DBFS


@dataclass(frozen=True)
class Verdict:
    """What the detector made of one block."""

    level_dbfs: float
    """The block's RMS level."""
    threshold_dbfs: float | None
    """The level above which a block is speech (None while the automatic one still learns)."""
    speech: bool
    """Whether this block is above the threshold."""
    speech_heard: bool
    """Whether the note has held speech so far."""
    silent_s: float
    """Seconds of continuous silence up to the end of this block (0 before any speech)."""
    elapsed_s: float
    """Seconds of audio up to the end of this block."""
    stop: str | None
    """Why the note ends here: "silence" or "limit"; None to go on."""


class SilenceDetector:
    """Feed it each block in order; each `Verdict` says whether the note should stop there."""

    def __init__(
        self,
        sample_rate: int,
        stop_after_s: float | None,
        threshold_dbfs: float = 0.0,
        max_s: float | None = None,
    ) -> None:
        """`stop_after_s` None (or 0): never stop on silence. `threshold_dbfs` 0: automatic."""
        self.sample_rate = sample_rate
        self.stop_after = round(stop_after_s * sample_rate) if stop_after_s else None
        self.max = round(max_s * sample_rate) if max_s else None
        self.fixed_threshold = threshold_dbfs if threshold_dbfs < 0 else None
        self.noise_floor_dbfs: float | None = None
        """The quietest block of the calibration window, once it has passed (automatic mode)."""
        self._quietest = FLOOR_DBFS - 1  # below anything: nothing measured yet
        self._samples = 0
        self._speech = 0
        self._silent = 0

    @property
    def threshold_dbfs(self) -> float | None:
        if self.fixed_threshold is not None:
            return self.fixed_threshold
        if self.noise_floor_dbfs is None:
            return None
        automatic = self.noise_floor_dbfs + MARGIN_DB
        return min(HIGHEST_THRESHOLD_DBFS, max(LOWEST_THRESHOLD_DBFS, automatic))

    def feed(self, block: np.ndarray) -> Verdict:
        level = level_dbfs(block)
        self._samples += len(block)
        if self.fixed_threshold is None:
            self._learn(level)
        threshold = self.threshold_dbfs
        speech = threshold is not None and level > threshold
        if speech:
            self._speech += len(block)
            self._silent = 0
        elif self.speech_heard:
            self._silent += len(block)
        return Verdict(
            level_dbfs=level,
            threshold_dbfs=threshold,
            speech=speech,
            speech_heard=self.speech_heard,
            silent_s=self._silent / self.sample_rate,
            elapsed_s=self._samples / self.sample_rate,
            stop=self._stop(),
        )

    @property
    def speech_heard(self) -> bool:
        return self._speech >= MIN_SPEECH_S * self.sample_rate

    def _learn(self, level: float) -> None:
        """The noise floor: the quietest block of the first half second; afterwards a quieter
        block lowers it (the note may have begun with speech), nothing raises it."""
        if self.noise_floor_dbfs is None:
            if self._quietest < FLOOR_DBFS or level < self._quietest:
                self._quietest = level
            if self._samples >= CALIBRATION_S * self.sample_rate:
                self.noise_floor_dbfs = self._quietest
        elif level < self.noise_floor_dbfs:
            self.noise_floor_dbfs = level

    def _stop(self) -> str | None:
        if self.stop_after is not None and self.speech_heard and self._silent >= self.stop_after:
            return "silence"
        if self.max is not None and self._samples >= self.max:
            return "limit"
        return None
