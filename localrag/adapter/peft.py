"""Read a PEFT LoRA adapter: `adapter_config.json` + `adapter_model.safetensors`, with numpy only.

safetensors is a small format (an 8-byte header length, a JSON header, raw little-endian
tensors), so it is parsed here and checked as it is read. Pickle formats (`.bin`, `.pt`) are
refused: loading them can run arbitrary code (security.md 21).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.errors import AdapterError

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MAX_HEADER_BYTES = 100 << 20

_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
}

# base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight
_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)


@dataclass(frozen=True)
class PeftAdapter:
    """A PEFT LoRA adapter as read from disk, before it is fitted to a base model."""

    folder: Path
    """The folder it was read from."""
    config: dict[str, Any]
    """adapter_config.json as written by PEFT."""
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    """Per Hugging Face module path (`model.layers.3.self_attn.q_proj`): (A (r, in), B (out, r))."""
    scales: dict[str, float]
    """Per module: the factor PEFT multiplies B·A by (alpha/r, or alpha/√r with rsLoRA)."""
    alpha: float
    """lora_alpha of the config."""
    rank: int
    """r of the config."""
    sha256: str
    """Hash of the config and the weights, as provenance."""


def refuse_pickle(path: Path) -> None:
    """Raise if `path` is (or a folder holds only) a pickle-format adapter."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise AdapterError(
            f"{path}: pickle formats ({', '.join(PICKLE_SUFFIXES)}) are refused, because loading "
            "them can run arbitrary code; save the adapter as safetensors "
            "(`model.save_pretrained(..., safe_serialization=True)`) or as a GGUF LoRA"
        )
    if path.is_dir() and not (path / WEIGHTS).exists():
        for child in sorted(path.iterdir()):
            if child.suffix.lower() in PICKLE_SUFFIXES:
                refuse_pickle(child)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as float32 arrays; a clear error if it is malformed."""
    data = path.read_bytes()
    if len(data) < 8:
        raise AdapterError(f"{path}: truncated safetensors file ({len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise AdapterError(f"{path}: truncated or not a safetensors file (header length)")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{path}: not a safetensors file (bad JSON header)") from exc
    if not isinstance(header, dict):
        raise AdapterError(f"{path}: not a safetensors file (header is not a mapping)")
    body = memoryview(data)[8 + header_len :]
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(path, name, info, body)
    return tensors


def _count(value: Any) -> bool:
    """A JSON whole number that can count or index bytes (not a bool, not negative)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(path: Path, name: str, info: Any, body: memoryview) -> np.ndarray:
    try:
        dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
    except (KeyError, TypeError, ValueError) as exc:
        raise AdapterError(f"{path}: tensor {name} has a malformed header entry") from exc
    if not isinstance(shape, list) or not all(_count(d) for d in shape) or len(shape) > 8:
        raise AdapterError(f"{path}: tensor {name} has an invalid shape {shape!r}")
    if not (_count(begin) and _count(end)):
        raise AdapterError(f"{path}: tensor {name} has invalid data offsets {[begin, end]!r}")
    dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise AdapterError(f"{path}: tensor {name} has dtype {dtype_name!r}; F32, F16 or BF16 only")
    count = math.prod(shape)  # Python integers: a huge shape cannot wrap round
    if end > len(body):
        raise AdapterError(f"{path}: truncated safetensors file (tensor {name} runs past the end)")
    if not 0 <= begin <= end or end - begin != count * dtype.itemsize:
        raise AdapterError(f"{path}: tensor {name}: size does not match its shape {shape}")
    raw = np.frombuffer(body[begin:end], dtype=dtype)
    if dtype_name == "BF16":
        raw = (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32).reshape(shape)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write float32 tensors as safetensors (used to build sample adapters)."""
    header: dict[str, Any] = {}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_peft(folder: Path) -> PeftAdapter:
    """Read and check a PEFT LoRA folder; fitting it to a base model is `convert`'s job."""
    refuse_pickle(folder)
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    if not config_path.is_file():
        raise AdapterError(
            f"{folder}: no {CONFIG}; a PEFT adapter folder needs it beside {WEIGHTS}"
        )
    if not weights_path.is_file():
        raise AdapterError(f"{folder}: no {WEIGHTS}; save the adapter with safe_serialization=True")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{config_path}: not valid JSON ({exc})") from exc
    _check_config(config_path, config)
    tensors = read_safetensors(weights_path)
    pairs = _pairs(weights_path, tensors)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scales = {m: _scale(config, m, a.shape[0]) for m, (a, _) in pairs.items()}
    digest = hashlib.sha256(config_path.read_bytes())
    digest.update(weights_path.read_bytes())
    return PeftAdapter(folder, config, pairs, scales, alpha, rank, digest.hexdigest())


def _check_config(path: Path, config: Any) -> None:
    if not isinstance(config, dict):
        raise AdapterError(f"{path}: not a PEFT adapter config (not a JSON object)")
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        raise AdapterError(f"{path}: peft_type {kind}; only LoRA adapters can be merged")
    for key in ("r", "lora_alpha"):
        value = config.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise AdapterError(f"{path}: {key} is missing or not a positive number")
    for key in ("alpha_pattern", "rank_pattern"):
        if not isinstance(config.get(key) or {}, dict):
            raise AdapterError(f"{path}: {key} is not a mapping")
    pattern = config.get("alpha_pattern") or {}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pattern.values()):
        raise AdapterError(f"{path}: alpha_pattern holds a value that is not a number")
    unsupported = {
        "use_dora": "DoRA adapters",
        "modules_to_save": "adapters that save whole modules (modules_to_save)",
        "fan_in_fan_out": "fan_in_fan_out (GPT-2 style Conv1D) adapters",
    }
    for key, what in unsupported.items():
        if config.get(key):
            raise AdapterError(f"{path}: {what} are not supported; train a plain LoRA")
    if config.get("bias", "none") != "none":
        raise AdapterError(
            f"{path}: bias={config['bias']!r} is not supported; train with bias='none'"
        )


def _scale(config: dict[str, Any], module: str, rank: int) -> float:
    alpha = float(config["lora_alpha"])
    short = module.rsplit(".", 1)[-1]
    for key in (module, short):
        if key in (config.get("alpha_pattern") or {}):
            alpha = float(config["alpha_pattern"][key])
    root = rank**0.5 if config.get("use_rslora") else rank
    return alpha / root


def _pairs(path: Path, tensors: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    halves: dict[str, dict[str, np.ndarray]] = {}
    for name, array in tensors.items():
        match = _KEY.match(name)
        if not match:
            raise AdapterError(f"{path}: tensor {name} is not a LoRA A/B weight")
        halves.setdefault(match["module"], {})[match["ab"]] = array
    pairs = {}
    for module, half in halves.items():
        if set(half) != {"A", "B"}:
            raise AdapterError(f"{path}: {module} has lora_{next(iter(half))} without its pair")
        a, b = half["A"], half["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1] or a.size == 0 or b.size == 0:
            raise AdapterError(
                f"{path}: {module}: lora_A {list(a.shape)} and lora_B {list(b.shape)} "
                "disagree on the rank"
            )
        pairs[module] = (a, b)
    if not pairs:
        raise AdapterError(f"{path}: holds no LoRA weights")
    return pairs
