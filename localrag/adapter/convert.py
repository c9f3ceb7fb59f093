"""Fit a LoRA adapter to a GGUF base model, as a GGUF LoRA (`blk.N.attn_q.weight.lora_a/_b`).

PEFT names its modules the Hugging Face way (`model.layers.3.self_attn.q_proj`); llama.cpp's GGUF
names them `blk.3.attn_q.weight` and stores the rows of `attn_q` and `attn_k` permuted for its
rotary embedding (llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute`). An adapter on q_proj or
k_proj is permuted the same way (its B, the output side) or the merge is silently wrong.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from localrag.adapter.peft import PeftAdapter
from localrag.errors import AdapterError

# Hugging Face module name -> GGUF tensor name, for the llama family.
HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
ARCHITECTURES = ("llama",)
_MODULE = re.compile(r"^(?:model\.)?layers\.(?P<n>\d+)\.(?P<name>[a-z_]+\.[a-z_]+)$")
_LORA = re.compile(r"^(?P<base>.+\.weight)\.lora_(?P<ab>[ab])$")


@dataclass(frozen=True)
class BaseShape:
    """What an adapter must fit: read from the base model's GGUF header."""

    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    shapes: dict[str, tuple[int, int]]
    """2-D weights by GGUF name: (out, in), as numpy sees them."""


@dataclass(frozen=True)
class GgufLora:
    """A LoRA in llama.cpp's layout, fitted to one base."""

    architecture: str
    alpha: float
    """adapter.lora.alpha: llama.cpp scales each B·A by alpha / rank."""
    tensors: dict[str, tuple[np.ndarray, np.ndarray]]
    """Per base weight (`blk.3.attn_q.weight`): (A (r, in), B (out, r)), float32."""

    @property
    def rank(self) -> int:
        return max(a.shape[0] for a, _ in self.tensors.values())

    def scale(self, name: str) -> float:
        return self.alpha / self.tensors[name][0].shape[0]


_SCALAR = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9


class _Header:
    """Just enough of a GGUF header, read fast: gguf's reader takes seconds over the tokenizer."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size
        with path.open("rb") as f:
            self.f = f
            if f.read(4) != b"GGUF":
                raise AdapterError(f"{path}: not a GGUF file")
            _version, n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
            self.fields: dict[str, object] = {}
            for _ in range(n_kv):
                key = self._string()
                self.fields[key] = self._value(struct.unpack("<I", f.read(4))[0])
            self.shapes: dict[str, list[int]] = {}
            for _ in range(n_tensors):
                name = self._string()
                (n_dims,) = struct.unpack("<I", f.read(4))
                self.shapes[name] = list(struct.unpack(f"<{n_dims}Q", self._read(8 * n_dims)))
                f.read(12)  # type and offset

    def _read(self, n: int) -> bytes:
        """`n` bytes; a corrupt count or length larger than the file is refused before Python
        tries to allocate it (MemoryError, OverflowError)."""
        if n > self.size - self.f.tell():
            raise struct.error(f"a length of {n:,} bytes runs past the end of the file")
        return self.f.read(n)

    def _string(self) -> str:
        (n,) = struct.unpack("<Q", self.f.read(8))
        return self._read(n).decode("utf-8", errors="replace")

    def _value(self, kind: int) -> object:
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            sub, n = struct.unpack("<IQ", self.f.read(12))
            if sub in _SCALAR:
                size = struct.calcsize(_SCALAR[sub])
                self._read(size * n)
                return None
            for _ in range(n):
                self._value(sub)
            return None
        fmt = _SCALAR[kind]
        return struct.unpack(f"<{fmt}", self.f.read(struct.calcsize(fmt)))[0]


def read_base(path: Path) -> BaseShape:
    """The base model's architecture and weight shapes, from its GGUF header."""
    try:
        header = _Header(path)
    except (struct.error, KeyError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{path}: not a readable GGUF header ({exc})") from exc
    arch = str(header.fields.get("general.architecture"))

    def number(key: str) -> int:
        value = header.fields.get(f"{arch}.{key}")
        if not isinstance(value, int):
            raise AdapterError(f"{path}: base model has no {arch}.{key}")
        return value

    shapes = {name: (dims[1], dims[0]) for name, dims in header.shapes.items() if len(dims) == 2}
    return BaseShape(
        arch,
        number("block_count"),
        number("attention.head_count"),
        number("attention.head_count_kv"),
        shapes,
    )


def permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary permutation of the output rows (convert_hf_to_gguf.py `permute`)."""
    return (
        b.reshape(n_head, 2, b.shape[0] // n_head // 2, *b.shape[1:])
        .swapaxes(1, 2)
        .reshape(b.shape)
    )


def peft_to_lora(adapter: PeftAdapter, base: BaseShape, *, permute: bool = True) -> GgufLora:
    """Rename, permute and rescale a PEFT adapter for `base`; say exactly what does not fit.

    `permute=False` exists only so a test can show that skipping the permutation is caught.
    """
    if base.architecture not in ARCHITECTURES:
        raise AdapterError(
            f"the base model's architecture {base.architecture!r} is not supported for PEFT "
            f"adapters (supported: {', '.join(ARCHITECTURES)}); use a GGUF LoRA made for it"
        )
    where = adapter.folder
    tensors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for module, (a, b) in sorted(adapter.pairs.items()):
        name = _gguf_name(where, module, base)
        _check_shape(where, module, name, a, b, base)
        if name.endswith("attn_q.weight") and permute:
            b = permute_rows(b, base.head_count)
        elif name.endswith("attn_k.weight") and permute:
            b = permute_rows(b, base.head_count_kv)
        # llama.cpp scales by alpha / rank per tensor: fold any other scale (rsLoRA,
        # alpha_pattern) into B.
        factor = adapter.scales[module] / (adapter.alpha / a.shape[0])
        if factor != 1.0:
            b = b * np.float32(factor)
        tensors[name] = (np.ascontiguousarray(a), np.ascontiguousarray(b))
    return GgufLora(base.architecture, adapter.alpha, tensors)


def _gguf_name(where: Path, module: str, base: BaseShape) -> str:
    match = _MODULE.match(module.removeprefix("model."))
    if match is None or match["name"] not in HF_TO_GGUF:
        known = ", ".join(k.split(".")[-1] for k in HF_TO_GGUF)
        raise AdapterError(
            f"{where}: targets {module}, which a {base.architecture} base does not have "
            f"(it has {known} in each layer); the adapter was made for another architecture"
        )
    layer = int(match["n"])
    if layer >= base.block_count:
        raise AdapterError(
            f"{where}: targets layer {layer}, but the base model has {base.block_count} layers"
        )
    return f"blk.{layer}.{HF_TO_GGUF[match['name']]}.weight"


def _check_shape(
    where: Path, label: str, name: str, a: np.ndarray, b: np.ndarray, base: BaseShape
) -> None:
    if name not in base.shapes:
        raise AdapterError(f"{where}: {label}: the base model has no tensor {name}")
    out_dim, in_dim = base.shapes[name]
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
        raise AdapterError(f"{where}: {label}: lora_a and lora_b disagree on the rank")
    if a.shape[1] != in_dim or b.shape[0] != out_dim:
        raise AdapterError(
            f"{where}: {label}: B·A is {b.shape[0]}×{a.shape[1]} but the base's {name} is "
            f"{out_dim}×{in_dim}; the adapter was made for a model of another size"
        )


def write_lora(lora: GgufLora, path: Path | str) -> None:
    """Write a GGUF LoRA that llama.cpp loads with `Llama(lora_path=...)`."""
    writer = gguf.GGUFWriter(path, lora.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, lora.alpha)
    for name, (a, b) in lora.tensors.items():
        writer.add_tensor(f"{name}.lora_a", a.astype(np.float32))
        writer.add_tensor(f"{name}.lora_b", b.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_lora(path: Path | str, base: BaseShape, where: Path | None = None) -> GgufLora:
    """Read a GGUF LoRA and check it fits `base`."""
    where = where or Path(path)
    try:
        # gguf's reader walks an array element by element, for ever on a corrupt count (a
        # value's type flipped from string to array: 7e18 elements, gigabytes, never done);
        # ours refuses any count or length the file cannot hold, so gguf's is bounded too.
        _Header(Path(path))
    except (struct.error, KeyError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{where}: not a readable GGUF header ({exc})") from exc
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError) as exc:
        raise AdapterError(f"{where}: not a readable GGUF file ({exc})") from exc
    fields = reader.fields

    def text(key: str) -> str | None:
        return str(fields[key].contents()) if key in fields else None

    if text("general.type") != "adapter" or text(gguf.Keys.Adapter.TYPE) != "lora":
        raise AdapterError(f"{where}: a GGUF model, not a GGUF LoRA adapter (general.type)")
    arch = text("general.architecture")
    if arch != base.architecture:
        raise AdapterError(
            f"{where}: a LoRA for architecture {arch!r}, "
            f"but the base model is {base.architecture!r}"
        )
    if gguf.Keys.Adapter.LORA_ALPHA not in fields:
        raise AdapterError(f"{where}: no {gguf.Keys.Adapter.LORA_ALPHA} in the GGUF LoRA")
    alpha = float(fields[gguf.Keys.Adapter.LORA_ALPHA].contents())
    halves: dict[str, dict[str, np.ndarray]] = {}
    for t in reader.tensors:
        match = _LORA.match(t.name)
        if match is None:
            raise AdapterError(f"{where}: tensor {t.name} is not a LoRA a/b weight")
        array = gguf.dequantize(t.data, t.tensor_type).astype(np.float32)
        halves.setdefault(match["base"], {})[match["ab"]] = array.reshape(
            [int(d) for d in reversed(t.shape)]
        )
    tensors = {}
    for name, half in sorted(halves.items()):
        if set(half) != {"a", "b"}:
            raise AdapterError(f"{where}: {name} has only one of lora_a and lora_b")
        _check_shape(where, name, name, half["a"], half["b"], base)
        tensors[name] = (half["a"], half["b"])
    if not tensors:
        raise AdapterError(f"{where}: holds no LoRA tensors")
    return GgufLora(arch, alpha, tensors)
