"""The default answer model: the shipped answer adapter, merged into the base LLM at set-up.

`models pull` builds it (`build`): the adapter of `models/answer-adapter/` (checked against its
pinned hashes by `shipped.verified_folder`) is merged into the default base with the same code as
`adapter merge`, and quantized with llama.cpp's quantizer, into `<models>/answer-model/`. It is
made only from public files (the base and an adapter trained on public data), so unlike a merge
of a private adapter it is a plain file, like the base; `model.toml` beside it records its hash
and provenance, and a file that does not match is never used.

A new vault gets it as version `answer@v1` of the adapter `answer` (`install`), and it is the
model that answers there: on SQuAD articles it never saw, it answered with F1 0.30 where the base
alone scored 0.08 (see the README). `adapter use base` and `rollback` go back to the base, and
`verify` works as for any adapter. The version points at the file instead of holding a copy.
"""

from __future__ import annotations

import logging
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w

from localrag import models
from localrag.adapter import manage, merge, shipped
from localrag.adapter.registry import Registry, Version
from localrag.errors import AdapterError, LocalragError
from localrag.settings import Settings

log = logging.getLogger(__name__)

QUANT = "Q8_0"
"""How the merged model is quantized (measured against the F16 merge: Q8_0 mean logit difference
3 % and top-1 87 %, the K-quants 11-12 % and 77-83 %; the base is already 4-bit)."""
FOLDER = "answer-model"
PROVENANCE = "model.toml"


def model_file(settings: Settings) -> Path:
    return settings.models_dir / FOLDER / f"answer-{QUANT}.gguf"


def provenance(settings: Settings) -> dict[str, Any] | None:
    """What `build` recorded, if the model was built for the current base and adapter."""
    path = model_file(settings).with_name(PROVENANCE)
    try:
        recorded = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return recorded


def built(settings: Settings) -> tuple[Path, dict[str, Any]] | None:
    """The built model and its provenance, if it matches the base, the adapter and its hash."""
    recorded = provenance(settings)
    path = model_file(settings)
    if recorded is None or not path.is_file():
        return None
    try:
        base_sha = models.sha256_file(models.model_path(settings, "llm"))
        adapter_sha = _adapter_sha256()
    except LocalragError:
        return None
    if (recorded.get("base_sha256"), recorded.get("adapter_sha256")) != (base_sha, adapter_sha):
        return None
    if models.sha256_file(path) != recorded.get("sha256"):
        log.warning("%s does not match its recorded SHA-256; it is not used", path)
        return None
    return path, recorded


def _adapter_sha256() -> str:
    from localrag.adapter import peft

    return peft.load_peft(shipped.verified_folder()).sha256


def build(settings: Settings) -> Iterator[merge.MergeProgress]:
    """Merge the shipped adapter into the base and quantize it, unless that is done already."""
    if built(settings) is not None:
        return
    started = time.perf_counter()
    base_path, base = manage.base_of(settings)
    lora, _, adapter_sha = manage.read_adapter(shipped.verified_folder(), base)
    target = model_file(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    f16 = target.with_name(".merging-f16.gguf")
    partial = target.with_name(".quantizing.gguf")
    try:
        yield from merge.merge_f16(base_path, lora, f16)
        yield merge.MergeProgress("quantize", detail=QUANT)
        merge.quantize(f16, partial, QUANT)
        partial.replace(target)
    finally:
        f16.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    record = {
        "name": shipped.NAME,
        "quant": QUANT,
        "base_model": models.active_name(settings, "llm") or base_path.stem,
        "base_sha256": models.sha256_file(base_path),
        "adapter_sha256": adapter_sha,
        "alpha": lora.alpha,
        "rank": lora.rank,
        "size_bytes": target.stat().st_size,
        "sha256": models.sha256_file(target),
        "created_at": manage.now(),
        "merge_s": round(time.perf_counter() - started, 2),
        "libraries": manage.libraries(),
    }
    target.with_name(PROVENANCE).write_text(tomli_w.dumps(record), encoding="utf-8")
    yield merge.MergeProgress("done", detail=str(target))


def install(store: Any, settings: Settings) -> str | None:
    """Add the built answer model to a new vault as a version and make it answer; its ref, or
    None where it was not built (a set-up without `models pull`, or another base model)."""
    found = built(settings)
    if found is None:
        return None
    path, record = found
    try:
        manage.import_adapter(store, settings, shipped.verified_folder(), shipped.NAME)
    except AdapterError as exc:
        log.warning("the answer adapter is not installed: %s", exc.message)
        return None
    registry = Registry(store)
    fields = {k: record[k] for k in Version.__dataclass_fields__ if k in record}
    version = Version(**{**fields, "n": 1, "path": str(path)})
    registry.add_version(version)
    registry.use(version.ref)
    return version.ref
