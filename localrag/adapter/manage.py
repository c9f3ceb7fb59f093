"""What the service does with adapters: import, merge, use, roll back, remove, verify, load.

Every byte of an adapter or a merged model lives in the vault (`Store` blobs); when llama.cpp
needs a path, the bytes go into an in-memory file for as long as it is needed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import gguf

from localrag import __version__, models
from localrag.adapter import convert, memfile, merge, peft, verify
from localrag.adapter.memfile import read_chunks
from localrag.adapter.registry import BASE, AdapterInfo, Registry, Version, check_name, parse_ref
from localrag.errors import AdapterError, UsageError
from localrag.settings import Settings
from localrag.worker.client import ModelInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFiles:
    """What a model worker loads for one choice of model: valid while the context is open."""

    model: ModelInput
    """The GGUF model: the base file, or a merged version from the vault."""
    lora: ModelInput | None
    """A GGUF LoRA from the vault to apply at run time, if any."""
    label: str | None
    """`NAME@vN` (merged), `NAME` (runtime LoRA) or None for the base alone."""
    key: str
    """Identifies the content (hashes), for keeping a loaded model; paths of in-memory files are
    reused by the operating system once closed, so never key by path."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_of(settings: Settings) -> tuple[Path, convert.BaseShape]:
    path = models.model_path(settings, "llm")
    return path, convert.read_base(path)


def libraries() -> dict[str, str]:
    found = {"localrag": __version__}
    for dist in ("gguf", "llama_cpp_python", "numpy"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "unknown"
    return found


def read_adapter(path: Path, base: convert.BaseShape) -> tuple[convert.GgufLora, str, str]:
    """A PEFT folder or a GGUF LoRA file fitted to `base`: (lora, format, sha256)."""
    path = path.expanduser()
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    peft.refuse_pickle(path)
    if path.is_file() and path.name in (peft.CONFIG, peft.WEIGHTS):
        path = path.parent
    if path.is_dir():
        adapter = peft.load_peft(path)
        return convert.peft_to_lora(adapter, base), "peft", adapter.sha256
    if path.suffix.lower() == ".gguf":
        return convert.read_lora(path, base), "gguf", models.sha256_file(path)
    raise AdapterError(
        f"{path}: not an adapter; give a PEFT folder ({peft.CONFIG} + {peft.WEIGHTS}) "
        "or a GGUF LoRA file (.gguf)"
    )


def import_adapter(
    store: Any,
    settings: Settings,
    path: Path,
    name: str,
    *,
    training: dict[str, Any] | None = None,
) -> AdapterInfo:
    """Check that the adapter fits the active base and store it (as a GGUF LoRA) in the vault;
    `training` is the provenance of an adapter trained here."""
    check_name(name)
    registry = Registry(store)
    if name in {a.name for a in registry.listing().adapters}:
        raise UsageError(f"an adapter named {name!r} exists; choose another name")
    base_path, base = base_of(settings)
    lora, source_format, sha = read_adapter(path, base)
    targets = sorted({n.split(".")[2] for n in lora.tensors})
    info = AdapterInfo(
        name=name,
        source=str(path.expanduser().resolve()),
        source_format=source_format,
        sha256=sha,
        rank=lora.rank,
        alpha=lora.alpha,
        targets=targets,
        tensor_count=len(lora.tensors),
        base_sha256=models.sha256_file(base_path),
        imported_at=now(),
        training=training,
    )
    with memfile.memfile("lora") as lora_file:
        convert.write_lora(lora, lora_file)
        store.put_blob_stream(info.blob, read_chunks(lora_file), {"kind": "lora", "name": name})
    try:
        registry.add_adapter(info)
    except BaseException:
        store.delete_blob(info.blob)
        raise
    log.info("imported adapter %s (%d tensors, rank %d)", name, len(lora.tensors), lora.rank)
    return info


@contextmanager
def _stored_lora(store: Any, info: AdapterInfo) -> Iterator[Path]:
    with memfile.memfile("lora", store.iter_blob(info.blob)) as path:
        yield path


def merge_adapter(
    store: Any, settings: Settings, name: str, quant: str = "Q4_K_M"
) -> Iterator[merge.MergeProgress]:
    """Merge `name` into the active base, quantize, and store the result as `NAME@vN`."""
    if quant not in merge.QUANTS:
        raise UsageError(f"unknown quantization {quant}; choose one of {', '.join(merge.QUANTS)}")
    started = time.perf_counter()
    info = Registry(store).adapter(name)
    base_path, base = base_of(settings)
    with ExitStack() as stack:
        lora_file = stack.enter_context(_stored_lora(store, info))
        lora = convert.read_lora(lora_file, base, where=Path(f"adapter {name}"))
        f16 = stack.enter_context(memfile.memfile("merged-f16"))
        yield from merge.merge_f16(base_path, lora, f16)
        result = f16
        if quant != "F16":
            yield merge.MergeProgress("quantize", detail=quant)
            result = stack.enter_context(memfile.memfile(f"merged-{quant}"))
            merge.quantize(f16, result, quant)
        registry = Registry(store)
        n = registry.next_version(name)
        blob = f"adapter/{name}@v{n}/model.gguf"
        yield merge.MergeProgress("store", detail=blob)
        stored = store.put_blob_stream(blob, read_chunks(result), {"kind": "model", "quant": quant})
    version = Version(
        name=name,
        n=n,
        quant=quant,
        base_model=models.active_name(settings, "llm") or base_path.stem,
        base_sha256=models.sha256_file(base_path),
        adapter_sha256=info.sha256,
        alpha=lora.alpha,
        rank=lora.rank,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        created_at=now(),
        merge_s=round(time.perf_counter() - started, 2),
        libraries=libraries(),
    )
    registry.add_version(version)
    yield merge.MergeProgress("done", detail=version.ref)


def remove(store: Any, ref: str) -> list[str]:
    """Delete an adapter (all its versions) or one version from the vault, registry entry and
    stored files in one transaction; the refs removed."""
    blobs = Registry(store).remove(ref)
    return [b.split("/")[1] for b in blobs]


def _check_stored(version: Version, chunks: Iterator[bytes]) -> None:
    digest = hashlib.sha256()
    for block in chunks:
        digest.update(block)
    if digest.hexdigest() != version.sha256:
        raise AdapterError(f"{version.ref}: stored model does not match its recorded SHA-256")


@contextmanager
def _stored_model(store: Any, version: Version) -> Iterator[Path]:
    """A merged version as a file, after checking its hash: a built-in version's own file, or
    an in-memory copy of the vault blob."""
    if version.path is not None:
        _check_stored(version, read_chunks(Path(version.path)))
        yield Path(version.path)
        return
    with memfile.memfile(version.ref, store.iter_blob(version.blob)) as path:
        _check_stored(version, read_chunks(path))
        yield path


@contextmanager
def _blob_input(store: Any, blob: str, version: Version | None = None) -> Iterator[ModelInput]:
    """A stored model or LoRA for a worker: an in-memory file where there are such, else its
    bytes streamed from the vault (checked first for a merged version)."""
    if memfile.available() or (version is not None and version.path is not None):
        if version is not None:
            with _stored_model(store, version) as path:
                yield ModelInput(path=path)
        else:
            with memfile.memfile("lora", store.iter_blob(blob)) as path:
                yield ModelInput(path=path)
        return
    if version is not None:
        _check_stored(version, store.iter_blob(blob))
    info = store.blob(blob)
    if info is None:
        raise AdapterError(f"{blob}: missing from the vault")
    yield ModelInput(size_bytes=info.size_bytes, chunks=lambda: store.iter_blob(blob))


def _choice(
    store: Any, settings: Settings, ref: str | None, runtime: bool
) -> tuple[str, AdapterInfo | Version | None]:
    """What `ref` names: (cache key, the adapter for a runtime LoRA, a version, or None)."""
    registry = Registry(store)
    base_key = f"base:{models.active_name(settings, 'llm')}"
    if runtime:
        if ref is None or ref == BASE:
            raise UsageError("a runtime adapter needs a name: --adapter NAME --runtime")
        info = registry.adapter(parse_ref(ref)[0])
        return f"{base_key}+lora:{info.sha256}", info
    version = registry.active if ref is None else (None if ref == BASE else registry.version(ref))
    if version is None:
        return base_key, None
    return f"merged:{version.sha256}", version


def model_key(
    store: Any, settings: Settings, ref: str | None = None, *, runtime: bool = False
) -> str:
    """The `ModelFiles.key` that `model_files` would give, without reading any model."""
    return _choice(store, settings, ref, runtime)[0]


@contextmanager
def model_files(
    store: Any, settings: Settings, ref: str | None = None, *, runtime: bool = False
) -> Iterator[ModelFiles]:
    """The files llama.cpp should load for `ref`, valid until the `with` block ends.

    `ref` None means the active model (a merged version, or the base); `base` the base alone;
    `NAME@vN` or `NAME` a merged version (the latest for `NAME`); with `runtime=True`, the base
    plus the adapter `NAME` as a runtime LoRA. Once a worker has loaded the model the block may
    end: the worker keeps its own descriptor of the memory file, or its own copy of the bytes.
    """
    key, choice = _choice(store, settings, ref, runtime)
    base = ModelInput(path=models.model_path(settings, "llm"))
    if isinstance(choice, AdapterInfo):
        with _blob_input(store, choice.blob) as lora:
            yield ModelFiles(base, lora, choice.name, key)
    elif isinstance(choice, Version):
        with _blob_input(store, choice.blob, choice) as model:
            yield ModelFiles(model, None, choice.ref, key)
    else:
        yield ModelFiles(base, None, None, key)


def verify_version(store: Any, settings: Settings, ref: str) -> verify.VerifyReport:
    """Recompute the F16 merge of `ref` and compare it with base + runtime LoRA, and the stored
    version (quantized or F16) with that F16 merge."""
    registry = Registry(store)
    version = registry.version(ref)
    info = registry.adapter(version.name)
    base_path, base = base_of(settings)
    if models.sha256_file(base_path) != version.base_sha256:
        raise AdapterError(
            f"{version.ref} was merged into another base model than the active one "
            f"({version.base_model}); make that base active to verify it"
        )
    prompts = verify.PROMPTS
    with ExitStack() as stack:
        lora_file = stack.enter_context(_stored_lora(store, info))
        lora = convert.read_lora(lora_file, base, where=Path(f"adapter {info.name}"))
        reader = gguf.GGUFReader(base_path)
        base16 = stack.enter_context(memfile.memfile("base-f16"))
        no_change = convert.GgufLora(lora.architecture, lora.alpha, {})
        for _ in merge.merge_f16(reader, no_change, base16):
            pass
        merged16 = stack.enter_context(memfile.memfile("merged-f16"))
        for _ in merge.merge_f16(reader, lora, merged16):
            pass
        reference = verify.logits(base16, prompts, lora=lora_file)
        candidate = verify.logits(merged16, prompts)
        f16 = verify.agreement(candidate, reference)
        # The stored file is what answers questions: a version that does not come from this
        # adapter and base (or that quantizing spoiled) must fail even when the merge is right.
        stored_path = stack.enter_context(_stored_model(store, version))
        stored = verify.agreement(verify.logits(stored_path, prompts), candidate)
    return verify.report(version.ref, version.quant, f16, stored)
