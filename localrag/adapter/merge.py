"""Merge a GGUF LoRA into its base: dequantize, W + (alpha/r)·B·A, write F16 GGUF, quantize.

Runs in numpy with `gguf` (no PyTorch); the quantizer is llama.cpp's own. The F16 file and the
quantized one are memory files (`memfile`), never plaintext on disk.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from localrag.adapter import QUANTS
from localrag.adapter.convert import GgufLora
from localrag.errors import AdapterError

log = logging.getLogger(__name__)

_FTYPES = {"Q4_K_M": 15, "Q5_K_M": 17, "Q8_0": 7, "F16": 1}
_F16_FTYPE = 1


@dataclass(frozen=True)
class MergeProgress:
    """One step of a merge: `tensors_done` of `tensors_total`, then quantize, then done."""

    step: str
    """merge, quantize, store or done."""
    tensors_done: int = 0
    tensors_total: int = 0
    detail: str = ""
    """The tensor being written, or for done the new version `NAME@vN`."""


def merge_f16(base: Path | gguf.GGUFReader, lora: GgufLora, out: Path) -> Iterator[MergeProgress]:
    """Write base + LoRA as an F16 GGUF at `out` (1-D tensors stay F32), one tensor at a time.

    `base` is a path or an open reader (reading a GGUF's header with gguf takes seconds).
    """
    reader = base if isinstance(base, gguf.GGUFReader) else gguf.GGUFReader(base)
    base_path = reader.data.filename if hasattr(reader.data, "filename") else "the base model"
    writer = gguf.GGUFWriter(out, lora.architecture)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in (
            "general.architecture",
            "general.file_type",
        ):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(_F16_FTYPE)
    missing = set(lora.tensors) - {t.name for t in reader.tensors}
    if missing:
        raise AdapterError(
            f"{base_path}: the base lacks {sorted(missing)[0]} that the adapter changes"
        )
    for t in reader.tensors:
        dtype = np.float32 if len(t.shape) == 1 else np.float16
        shape = [int(d) for d in reversed(t.shape)]
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(t.name, shape, np.dtype(dtype), nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    total = len(reader.tensors)
    for i, t in enumerate(reader.tensors):
        shape = [int(d) for d in reversed(t.shape)]
        w = gguf.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if t.name in lora.tensors:
            a, b = lora.tensors[t.name]
            w += np.float32(lora.scale(t.name)) * (b @ a)
        writer.write_tensor_data(w if len(shape) == 1 else w.astype(np.float16))
        yield MergeProgress("merge", i + 1, total, t.name)
    writer.close()


_QUANTIZE = """
import ctypes, sys
import llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = int(sys.argv[3])
params.nthread = int(sys.argv[4])
src, dst = sys.argv[1].encode(), sys.argv[2].encode()
sys.exit(llama_cpp.llama_model_quantize(src, dst, ctypes.byref(params)))
"""


def quantize(f16: Path, out: Path, quant: str, threads: int = 0) -> None:
    """llama.cpp's quantizer, F16 GGUF `f16` to `quant` at `out` (in-memory files).

    It runs in a child process: llama.cpp prints a warning per tensor on the terminal, and a
    crash in it must not take the app down. The memory files pass as inherited descriptors.
    """
    if quant not in _FTYPES:
        raise AdapterError(f"unknown quantization {quant}; choose one of {', '.join(QUANTS)}")
    fds = tuple(int(p.name) for p in (f16, out) if p.parent == Path("/proc/self/fd"))
    cmd = [sys.executable, "-c", _QUANTIZE, str(f16), str(out), str(_FTYPES[quant]), str(threads)]
    result = subprocess.run(cmd, pass_fds=fds, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise AdapterError(
            f"llama.cpp could not quantize the merged model to {quant} "
            f"(exit {result.returncode}: {last})"
        )
    log.debug("quantized to %s: %s", quant, result.stderr[-2000:])
