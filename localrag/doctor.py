"""`localrag doctor`: what this installation can do, checked rather than assumed."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from localrag import models
from localrag.settings import Settings, loose_permissions

if TYPE_CHECKING:
    from localrag.worker.client import WorkerCrashed

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
    checks.append(check_answer_model(settings))
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
    checks.append(check_ocr())
    checks.append(check_generation(settings))
    return checks


def check_answer_model(settings: Settings) -> Check:
    """The model a new vault answers with: the shipped adapter merged into the base."""
    from localrag.adapter import builtin

    active = models.active_name(settings, "llm")
    default = models.default_name("llm")
    if active != default:  # the user's own model answers: the adapter is for the default
        return Check("model answer", True, f"not used: it is made for {default}, {active} answers")
    found = builtin.built(settings)
    if found is None:
        where = builtin.model_file(settings)
        return Check("model answer", False, f"not built for this base at {where}; `models pull`")
    path, record = found
    return Check(f"model answer {record['quant']}", True, f"verified {path}")


def check_ocr() -> Check:
    """OCR is optional (only scans and images need it); a model that fails its hash is not."""
    import shutil

    from localrag.ingest import ocr

    name = "ocr (scanned pages, images)"
    try:
        engine = ocr.engine()
    except ocr.Unavailable as exc:
        absent = shutil.which("tesseract") is None
        return Check(
            name, absent, f"optional, not installed: {ocr.INSTALL_HINT}" if absent else exc.message
        )
    return Check(name, True, f"{engine.version}, {ocr.LANGUAGE} model verified")


CPU_FLAGS = {
    "x86": ("avx2", "avx512f", "amx_tile", "amx_int8", "amx_bf16"),
    "arm": ("asimddp", "asimdhp", "i8mm", "sve"),  # dot products, fp16, int8 matmul, SVE
}
PROBE_PROMPT = "Say hello."
PROBE_TOKENS = 8


def _arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


def cpu_features() -> str:
    """The CPU's features that matter to llama.cpp's kernels: `avx2 avx512f amx_tile ...`."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    # x86 lists them as "flags", ARM as "Features".
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith(("flags", "Features"))), [])  # fmt: skip
    wanted = CPU_FLAGS["arm" if _arm() else "x86"]
    found = [f for f in wanted if f in flags]
    return " ".join(found) if found else "none of " + ", ".join(wanted)


def llama_build() -> str:
    """What the installed llama.cpp was compiled for, asked in a child (it may crash)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        return f"unknown (the probe exited {done.returncode})"
    features = [f.strip() for f in done.stdout.replace("CPU :", "").split("|")]
    return " ".join(f.replace(" = ", "=") for f in features if f.endswith("= 1") or "AMX" in f)


def check_generation(settings: Settings) -> Check:
    """The active model writes a few tokens, in a model worker (a crash there is reported)."""
    from localrag.errors import LocalragError
    from localrag.worker import base_worker
    from localrag.worker.client import WorkerCrashed

    name = "model generates"
    try:
        worker = base_worker(settings)
    except WorkerCrashed as exc:
        return Check(name, False, _crash_detail(exc))
    except LocalragError as exc:
        return Check(name, False, exc.message)
    try:
        messages = [{"role": "user", "content": PROBE_PROMPT}]
        text = "".join(worker.stream(messages, PROBE_TOKENS))
    except WorkerCrashed as exc:
        return Check(name, False, _crash_detail(exc))
    except LocalragError as exc:
        return Check(name, False, exc.message)
    finally:
        worker.close()
    if not text.strip():
        return Check(name, False, f"{worker.name} wrote nothing for {PROBE_PROMPT!r}")
    return Check(name, True, f"{worker.name}: {text.strip()[:40]!r}")


def _crash_detail(exc: WorkerCrashed) -> str:
    if _arm():
        hint = ("This llama.cpp needs ARMv8.2 with dot products (DOTPROD); an older core (a "
                "Raspberry Pi 4's Cortex-A72) stops at the first such instruction: build it for "
                "this CPU with LOCALRAG_LLAMA_CMAKE_ARGS (packaging/build_llama.py)")  # fmt: skip
    else:
        hint = ("A build for this CPU's AMX kernels crashes (ggml-org/llama.cpp#20824): rebuild "
                "portably with `make setup` (packaging/build_llama.py)")  # fmt: skip
    return f"{exc.reason}. CPU: {cpu_features()}; llama.cpp built for: {llama_build()}. {hint}"
