"""The baseline that the voice encoder has to beat: MFCC statistics as speaker vectors.

Each window is described by the mean and standard deviation of its 19 cepstral coefficients
(c1-c19 of the log mel spectrum, c0 the loudness left out), standardised over the recording so
no coefficient dominates. No model at all; `localrag bench speakers` reports both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from localrag.speakers.voice_encoder import N_MELS, mel_frames

N_CEPSTRA = 20


def _dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II from 40 log mel bands to the first `N_CEPSTRA` coefficients."""
    k = np.arange(N_CEPSTRA)[:, None]
    n = np.arange(N_MELS)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS)) * np.sqrt(2.0 / N_MELS)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


_DCT = _dct_matrix()


class MfccEmbedder:
    """`SpeakerEmbedder` from cepstral statistics."""

    threshold = 0.8
    """Its own clustering threshold, chosen on the bench meeting as the voice encoder's was."""

    def embed_windows(self, audio: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
        stats = []
        for start, end in windows:
            cepstra = np.log(mel_frames(audio[start:end]) + 1e-6) @ _DCT.T
            cepstra = cepstra[:, 1:]
            stats.append(np.concatenate([cepstra.mean(axis=0), cepstra.std(axis=0)]))
        features = np.array(stats, dtype=np.float64)
        features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return (features / np.maximum(norms, 1e-9)).astype(np.float32)
