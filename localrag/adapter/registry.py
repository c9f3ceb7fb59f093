"""Imported adapters and their merged versions, kept inside the encrypted vault.

The adapter (as a GGUF LoRA) and each merged model are vault blobs; the registry itself (what
exists, the provenance of each version, which one is active, and the history that `rollback`
walks back) is one JSON value in the vault's meta table. Nothing here is written outside the vault.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from localrag.errors import AdapterError, UsageError

META_KEY = "adapter.registry"
BASE = "base"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REF = re.compile(r"^(?P<name>[^@]+?)(?:@v(?P<n>\d+))?$")


@dataclass(frozen=True)
class AdapterInfo:
    """An imported adapter, fitted to the base it was imported for."""

    name: str
    source: str
    """Where it was imported from (a PEFT folder or a GGUF LoRA file)."""
    source_format: str
    """peft or gguf."""
    sha256: str
    """Hash of the adapter as imported (config and weights)."""
    rank: int
    alpha: float
    targets: list[str]
    """The GGUF weights it changes per layer (attn_q, ffn_up...)."""
    tensor_count: int
    """How many base weights it changes."""
    base_sha256: str
    """The base model it was checked against."""
    imported_at: str
    """ISO 8601 UTC."""
    training: dict[str, Any] | None = None
    """How `localrag adapter train` made it (data hash, examples, steps, losses), if it did."""

    @property
    def blob(self) -> str:
        return f"adapter/{self.name}/lora.gguf"


@dataclass(frozen=True)
class Version:
    """One merge of an adapter into the base: a model of its own, with its provenance."""

    name: str
    n: int
    """The N of `NAME@vN`."""
    quant: str
    """Q4_K_M, Q5_K_M, Q8_0 or F16."""
    base_model: str
    """Name of the base LLM it was merged into."""
    base_sha256: str
    adapter_sha256: str
    alpha: float
    rank: int
    size_bytes: int
    """Size of the merged, quantized GGUF."""
    sha256: str
    """Hash of the merged, quantized GGUF."""
    created_at: str
    merge_s: float
    """How long merging and quantizing took, in seconds."""
    libraries: dict[str, str] = field(default_factory=dict)
    """Versions of the libraries that made it (gguf, llama-cpp-python, numpy, localrag)."""
    path: str | None = None
    """A built-in version's model file (made at set-up from public files), kept outside the
    vault; None for a merge of the user's own adapter, whose model is a vault blob."""

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.n}"

    @property
    def blob(self) -> str:
        return f"adapter/{self.ref}/model.gguf"


@dataclass(frozen=True)
class Listing:
    """What `adapter list` shows."""

    adapters: list[AdapterInfo]
    versions: list[Version]
    active: str | None
    """The active version, `NAME@vN`, or None for the base model."""


def check_name(name: str) -> str:
    if not _NAME.match(name) or name == BASE:
        raise UsageError(
            f"{name!r} cannot name an adapter: use letters, digits, '.', '_' or '-' (not 'base')"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`NAME` or `NAME@vN` as (name, N or None)."""
    match = _REF.match(ref.strip())
    if match is None:
        raise UsageError(f"{ref!r} is not NAME or NAME@vN")
    return match["name"], int(match["n"]) if match["n"] else None


class Registry:
    """The adapter registry of one open vault (`store` is the vault's `Store`)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        raw = store.get_meta(META_KEY)
        data = json.loads(raw) if raw else {}
        self._adapters = {a["name"]: AdapterInfo(**a) for a in data.get("adapters", [])}
        self._versions = [Version(**v) for v in data.get("versions", [])]
        self._active: str | None = data.get("active")
        self._history: list[str | None] = list(data.get("history", []))
        # The last N given per name, so that the ref of a removed version is never reused.
        self._last_n: dict[str, int] = dict(data.get("last_version", {}))

    def _save(self) -> None:
        self.store.set_meta(META_KEY, self._json())

    def _json(self) -> str:
        data = {
            "adapters": [asdict(a) for a in self._adapters.values()],
            "versions": [asdict(v) for v in self._versions],
            "active": self._active,
            "history": self._history,
            "last_version": self._last_n,
        }
        return json.dumps(data)

    # -- reading ----------------------------------------------------------------------------

    def listing(self) -> Listing:
        return Listing(list(self._adapters.values()), list(self._versions), self._active)

    @property
    def active(self) -> Version | None:
        return self.version(self._active) if self._active else None

    def adapter(self, name: str) -> AdapterInfo:
        if name not in self._adapters:
            known = ", ".join(sorted(self._adapters)) or "none yet"
            raise AdapterError(
                f"no adapter named {name!r} (imported: {known}); "
                "import one with `localrag adapter import PATH --name NAME`"
            )
        return self._adapters[name]

    def version(self, ref: str) -> Version:
        """`NAME@vN`, or `NAME` for its latest version."""
        name, n = parse_ref(ref)
        self.adapter(name)
        versions = [v for v in self._versions if v.name == name and (n is None or v.n == n)]
        if not versions:
            if n is None:
                raise AdapterError(
                    f"{name} has no merged version yet; run `localrag adapter merge {name}` "
                    f"(or apply it at run time with `ask --adapter {name} --runtime`)"
                )
            have = ", ".join(v.ref for v in self._versions if v.name == name) or "none"
            raise AdapterError(f"no version {name}@v{n} (versions: {have})")
        return versions[-1]

    def next_version(self, name: str) -> int:
        used = max((v.n for v in self._versions if v.name == name), default=0)
        return max(used, self._last_n.get(name, 0)) + 1

    # -- changing ---------------------------------------------------------------------------

    def add_adapter(self, info: AdapterInfo) -> None:
        if info.name in self._adapters:
            raise UsageError(
                f"an adapter named {info.name!r} exists; choose another name or remove it with "
                f"`localrag adapter rm {info.name}`"
            )
        self._adapters[info.name] = info
        self._save()

    def add_version(self, version: Version) -> None:
        self._versions.append(version)
        self._last_n[version.name] = max(version.n, self._last_n.get(version.name, 0))
        self._save()

    def use(self, ref: str) -> str | None:
        """Make `NAME[@vN]` (or `base`) the active model; the previous one goes on the history."""
        target = None if ref == BASE else self.version(ref).ref
        if target != self._active:
            self._history.append(self._active)
            self._active = target
            self._save()
        return self._active

    def rollback(self) -> str | None:
        """Go back to the model that was active before the last `use`."""
        while self._history:
            previous = self._history.pop()
            if previous is None or any(v.ref == previous for v in self._versions):
                self._active = previous
                self._save()
                return previous
        raise AdapterError("nothing to roll back to: the active model was never changed")

    def remove(self, ref: str) -> list[str]:
        """Forget `NAME` (with all its versions) or one `NAME@vN`, deleting its blobs in the
        same transaction; returns the blobs deleted.

        If the active version goes, the base model becomes active again.
        """
        name, n = parse_ref(ref)
        info = self.adapter(name)
        if n is None:
            gone = [v for v in self._versions if v.name == name]
            del self._adapters[name]
            blobs = [info.blob]
        else:
            gone = [self.version(ref)]
            blobs = []
        refs = {v.ref for v in gone}
        self._versions = [v for v in self._versions if v.ref not in refs]
        self._history = [h for h in self._history if h not in refs]
        if self._active in refs:
            self._active = None
        blobs += [v.blob for v in gone]
        self.store.set_meta_deleting_blobs(META_KEY, self._json(), blobs)
        return blobs
