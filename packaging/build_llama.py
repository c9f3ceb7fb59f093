"""Build llama-cpp-python from source with portable CPU flags, and install that wheel.

Why not `pip install llama-cpp-python`: it compiles llama.cpp with `-march=native`, and

- on a CPU that advertises AMX, ggml's AMX kernels crash at the first token with a general
  protection fault (ggml-org/llama.cpp#20824), so a native build there never answers;
- a wheel built natively on one machine uses instructions that another may lack;
- pip caches built wheels by version, not by build flags, so once a crashing wheel is in pip's
  cache, reinstalling silently brings it back.

So the wheel is built with `--no-cache-dir` into a folder named after the version and the flags
(`build/llama-wheels/<key>/`), and installed from there: a wheel built with other flags is never
picked up. The flags target any x86-64 CPU with AVX2 (AVX-512 and AMX off), and Apple Silicon
or 64-bit ARM with dot-product instructions.

`--machine aarch64` on Linux x86-64 cross-compiles the wheel for Linux arm64 (for its offline
bundle) with Debian's gcc-aarch64-linux-gnu; it is not installed here.

Usage: python packaging/build_llama.py [--wheel-dir DIR] [--no-install] [--machine aarch64]
Run with the Python of the environment to install into (the Makefile uses .venv's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "llama-cpp-python"

X86_FLAGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
ARM_FLAGS = "-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16"
COMMON_FLAGS = "-DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF"
"""localrag reads no images: the multimodal library (mtmd) is not built. ggml's own thread pool
instead of OpenMP: with OpenMP the library needs libgomp.so.1, which a minimal system lacks
(Debian's minbase has none), so the offline install would fail there at the first import."""
CROSS_FLAGS = {
    "aarch64": "-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 "
    "-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++",
}
"""What CMake needs to build for another Linux machine than this one, by its `uname -m`."""


def pinned_version() -> str:
    """The exact version pyproject.toml pins (`llama-cpp-python==X`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        m = re.fullmatch(r"llama-cpp-python\s*==\s*([\w.]+)", requirement.strip())
        if m:
            return m.group(1)
    raise SystemExit(f"build_llama: pyproject.toml must pin {PACKAGE}==VERSION")


def is_cross(machine: str | None) -> bool:
    return machine is not None and machine != platform.machine()


def platform_name(machine: str | None = None) -> str:
    """sysconfig's name of the platform a build for `machine` runs on (`linux-aarch64`)."""
    return f"linux-{machine}" if is_cross(machine) else sysconfig.get_platform()


def portable_flags(machine: str | None = None) -> str:
    """CMAKE_ARGS for a build that runs on every CPU of `machine` (this one by default) that we
    claim; for another machine, with the cross compiler's settings."""
    target = (machine or platform.machine()).lower()
    if target in ("x86_64", "amd64"):
        flags = f"{X86_FLAGS} {COMMON_FLAGS}"
    elif target in ("arm64", "aarch64"):
        flags = f"{ARM_FLAGS} {COMMON_FLAGS}"
    else:
        raise SystemExit(f"build_llama: no portable flags for {target}; set CMAKE_ARGS yourself")
    if not is_cross(machine):
        return flags
    if sys.platform != "linux" or target not in CROSS_FLAGS:
        raise SystemExit(f"build_llama: cannot build for {target} on {sys.platform} "
                         f"{platform.machine()}; build on such a machine")  # fmt: skip
    return f"{CROSS_FLAGS[target]} {flags}"


def build_key(version: str, flags: str, machine: str | None = None) -> str:
    """Names the wheel folder: another version, flag set, Python or platform is another key."""
    tag = f"{sys.implementation.cache_tag}-{sys.platform}-{machine or platform.machine()}"
    return hashlib.sha256(f"{version}\n{flags}\n{tag}".encode()).hexdigest()[:16]


def build_flags(machine: str | None = None) -> str:
    """The flags to build with: LOCALRAG_LLAMA_CMAKE_ARGS if set, else the portable ones."""
    return os.environ.get("LOCALRAG_LLAMA_CMAKE_ARGS") or portable_flags(machine)


def wheel_folder(machine: str | None = None, root: Path | None = None) -> Path:
    """Where the portable wheel for `machine` (this one by default) is kept, by its build key."""
    key = build_key(pinned_version(), build_flags(machine), machine)
    return (root or ROOT / "build" / "llama-wheels") / key


def installed_from(wheel_dir: Path) -> bool:
    """Whether the installed llama-cpp-python came from a wheel in `wheel_dir`."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return False
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    return wheel_dir.resolve().as_uri() in json.loads(text).get("url", "")


def build_wheel(version: str, flags: str, wheel_dir: Path, machine: str | None = None) -> Path:
    found = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    print(f"build_llama: compiling {PACKAGE} {version} (about 7 minutes on 2 cores)", flush=True)
    print(f"build_llama: CMAKE_ARGS={flags}", flush=True)
    env = {**os.environ, "CMAKE_ARGS": flags, "FORCE_CMAKE": "1"}
    if is_cross(machine):
        # scikit-build-core tags the wheel with the platform sysconfig reports; this names it.
        env["_PYTHON_HOST_PLATFORM"] = platform_name(machine)
    cmd = [
        sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-cache-dir",
        "--no-deps", "--no-binary", PACKAGE, f"{PACKAGE}=={version}", "-w", str(wheel_dir),
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    found = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if not found:
        raise SystemExit(f"build_llama: pip wheel left no wheel in {wheel_dir}")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel-dir", type=Path, help="where wheels are kept (build/llama-wheels)")
    parser.add_argument("--no-install", action="store_true", help="only build the wheel")
    parser.add_argument("--machine", choices=sorted(CROSS_FLAGS),
                        help="build for this Linux machine instead (not installed)")  # fmt: skip
    args = parser.parse_args(argv)
    version = pinned_version()
    flags = build_flags(args.machine)
    wheel_dir = wheel_folder(args.machine, args.wheel_dir)
    if not args.no_install and installed_from(wheel_dir):
        print(f"build_llama: {PACKAGE} {version} is installed from {wheel_dir}", flush=True)
        return 0
    wheel = build_wheel(version, flags, wheel_dir, args.machine)
    print(f"build_llama: {wheel}", flush=True)
    if args.no_install or is_cross(args.machine):
        return 0
    cmd = [
        sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
        "--no-deps", "--force-reinstall", str(wheel),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
