"""Resemblyzer's voice encoder in numpy: 1.6 s of speech to a 256-d speaker vector (d-vector).

The model (Apache-2.0, from the `Resemblyzer==0.1.4` wheel) is a 3-layer LSTM over 40 mel bands
with a linear layer, ReLU and L2 norm on its last hidden state (Wan et al., "Generalized
end-to-end loss for speaker verification"). Its weights ship as a PyTorch pickle; `convert()`
turns them into safetensors once, at `localrag models pull`, and only that file is loaded here:
no PyTorch and no pickle at run time (security.md 21).

The features are Resemblyzer's (its audio.py, which calls librosa): 16 kHz, a 25 ms Hann window
every 10 ms, centred frames with zero padding, the power spectrum through 40 Slaney-normalised
mel filters, not logged.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from localrag.errors import ModelError

SAMPLE_RATE = 16_000
N_FFT = 400
"""25 ms at 16 kHz."""
HOP = 160
"""10 ms at 16 kHz: one mel frame."""
N_MELS = 40
PARTIAL_FRAMES = 160
"""What one embedding sees: 1.6 s of frames, as the model was trained."""
WEIGHTS = "voice_encoder.safetensors"
_LAYERS = 3
_HIDDEN = 256
_NAMES = [
    *(f"lstm.{kind}_l{n}" for n in range(_LAYERS) for kind in ("weight_ih", "weight_hh")),
    *(f"lstm.{kind}_l{n}" for n in range(_LAYERS) for kind in ("bias_ih", "bias_hh")),
    "linear.weight",
    "linear.bias",
]


def convert(checkpoint: Path, target: Path) -> None:
    """Write the encoder's weights of Resemblyzer's `pretrained.pt` to `target` as safetensors
    (sorted names, float32: the same checkpoint always gives the same bytes, so the result's
    hash can be pinned too). The checkpoint is read by the restricted unpickler."""
    from localrag.adapter.peft import write_safetensors
    from localrag.speakers.torch_pickle import load_state_dict

    state = load_state_dict(checkpoint)
    try:
        tensors = {name: state[f"model_state.{name}"] for name in sorted(_NAMES)}
    except KeyError as exc:
        raise ModelError(f"{checkpoint}: not Resemblyzer's voice encoder (no {exc})") from None
    write_safetensors(target, tensors)


def mel_filters() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney mel scale, area-normalised."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        linear = hz / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log, linear)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        linear = mel * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log, linear)

    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(8000.0)), N_MELS + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power of 16 kHz mono samples; frame i is centred on sample 160·i."""
    padded = np.pad(audio.astype(np.float32), N_FFT // 2)
    count = 1 + len(audio) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    return (power.astype(np.float32) @ _FILTERS.T).astype(np.float32)


def _one_blas_thread() -> AbstractContextManager[object]:
    """numpy's BLAS on one thread: the LSTM's products are small and many, and BLAS threads
    spinning for a core on a busy machine made it 10x slower (7.8 s against 0.8 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a venv set up before it was a dependency: slower, still right
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class VoiceEncoder:
    """The encoder with its weights from a safetensors file; `embed()` takes a batch of mel
    windows, all of the same length."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [n for n in _NAMES if n not in weights]
        if missing:
            raise ModelError(f"voice encoder weights lack {', '.join(missing)}")
        self.w = {n: np.ascontiguousarray(weights[n], dtype=np.float32) for n in _NAMES}

    @classmethod
    def load(cls, path: Path) -> VoiceEncoder:
        """From a model folder (or its safetensors file), already checked against its hash."""
        from localrag.adapter.peft import read_safetensors
        from localrag.errors import AdapterError

        file = path / WEIGHTS if path.is_dir() else path
        try:
            return cls(read_safetensors(file))
        except AdapterError as exc:  # the reader is shared with adapters; the error is a model's
            raise ModelError(exc.message) from None

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows to (batch, 256) L2-normalised speaker vectors."""
        with _one_blas_thread():
            return self._embed(mels)

    def _embed(self, mels: np.ndarray) -> np.ndarray:
        x = mels.astype(np.float32)
        batch = x.shape[0]
        for layer in range(_LAYERS):
            w_ih, w_hh = self.w[f"lstm.weight_ih_l{layer}"], self.w[f"lstm.weight_hh_l{layer}"]
            bias = self.w[f"lstm.bias_ih_l{layer}"] + self.w[f"lstm.bias_hh_l{layer}"]
            # The input's share of every gate at every step in one product; only the recurrent
            # part has to go step by step.
            gates_in = x @ w_ih.T + bias
            h = np.zeros((batch, _HIDDEN), np.float32)
            c = np.zeros((batch, _HIDDEN), np.float32)
            out = np.empty((batch, x.shape[1], _HIDDEN), np.float32)
            w_hh_t = np.ascontiguousarray(w_hh.T)
            for t in range(x.shape[1]):
                g = gates_in[:, t] + h @ w_hh_t
                i, f = _sigmoid(g[:, :_HIDDEN]), _sigmoid(g[:, _HIDDEN : 2 * _HIDDEN])
                cell, o = np.tanh(g[:, 2 * _HIDDEN : 3 * _HIDDEN]), _sigmoid(g[:, 3 * _HIDDEN :])
                c = f * c + i * cell
                h = o * np.tanh(c)
                out[:, t] = h
            x = out
        raw = np.maximum(0, h @ self.w["linear.weight"].T + self.w["linear.bias"])
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        """One utterance's vector as Resemblyzer's `embed_utterance` makes it: 1.6 s windows
        1.3 times a second (the last zero-padded if it is at least 3/4 full), their mean,
        L2-normed."""
        step = round(SAMPLE_RATE / 1.3 / HOP)
        n_frames = int(np.ceil((len(audio) + 1) / HOP))
        starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
        coverage = (len(audio) - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
        if coverage < 0.75 and len(starts) > 1:
            starts.pop()
        end = (starts[-1] + PARTIAL_FRAMES) * HOP
        padded = np.pad(audio, (0, max(0, end - len(audio))))
        mel = mel_frames(padded)
        vectors = self.embed(np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts]))
        mean = vectors.mean(axis=0)
        return mean / np.linalg.norm(mean)
