"""`localrag doctor`: what this installation can do, checked rather than assumed."""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass

from localrag import models
from localrag.settings import Settings, loose_permissions

LIBRARIES = (
    "llama-cpp-python",
    "onnxruntime",
    "tokenizers",
    "apsw-sqlite3mc",
    "sqlite-vec",
    "cryptography",
    "faster-whisper",
    "ctranslate2",
    "gguf",
    "numpy",
    "textual",
)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_checks(settings: Settings) -> list[Check]:
    from localrag import store  # the one place that opens SQLite

    checks = [Check("python", True, platform.python_version())]
    for name, version in library_versions().items():
        checks.append(Check(name, version is not None, version or "not installed"))
    try:
        caps = store.capabilities()
        detail = ", ".join(f"{k} {v}" for k, v in caps.items())
        checks.append(Check("encrypted sqlite + sqlite-vec + fts5", True, detail))
    except Exception as exc:  # doctor reports every failure instead of stopping at the first
        checks.append(Check("encrypted sqlite + sqlite-vec + fts5", False, str(exc)))
    for row in models.status(settings):
        checks.append(
            Check(
                f"model {row.role} {row.name}", row.state == "verified", f"{row.state} {row.path}"
            )
        )
    checks.append(Check("home", True, str(settings.home)))
    loose = loose_permissions(settings.home)
    checks.append(
        Check(
            "home folder private (0700, files 0600)",
            not loose,
            "loose: " + ", ".join(loose) + " (any vault command fixes it; or chmod)"
            if loose
            else "yes",
        )
    )
    checks.append(Check("models folder", settings.models_dir.is_dir(), str(settings.models_dir)))
    checks.append(
        Check(
            "vault",
            True,
            "present" if settings.vault_path.exists() else "not created yet (localrag init)",
        )
    )
    checks.append(Check("network", True, "not needed: nothing is fetched at run time"))
    return checks
