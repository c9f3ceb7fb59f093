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

Usage: python packaging/build_llama.py [--wheel-dir DIR] [--no-install]
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
COMMON_FLAGS = "-DLLAVA_BUILD=OFF"
"""localrag reads no images: the multimodal library (mtmd) is not built."""


def pinned_version() -> str:
    """The exact version pyproject.toml pins (`llama-cpp-python==X`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        m = re.fullmatch(r"llama-cpp-python\s*==\s*([\w.]+)", requirement.strip())
        if m:
            return m.group(1)
    raise SystemExit(f"build_llama: pyproject.toml must pin {PACKAGE}==VERSION")


def portable_flags(machine: str | None = None) -> str:
    """CMAKE_ARGS for a build that runs on every CPU of this platform that we claim."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        return f"{X86_FLAGS} {COMMON_FLAGS}"
    if machine in ("arm64", "aarch64"):
        return f"{ARM_FLAGS} {COMMON_FLAGS}"
    raise SystemExit(f"build_llama: no portable flags for {machine}; set CMAKE_ARGS yourself")


def build_key(version: str, flags: str) -> str:
    """Names the wheel folder: another version, flag set, Python or platform is another key."""
    tag = f"{sys.implementation.cache_tag}-{sys.platform}-{platform.machine()}"
    return hashlib.sha256(f"{version}\n{flags}\n{tag}".encode()).hexdigest()[:16]


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


def build_wheel(version: str, flags: str, wheel_dir: Path) -> Path:
    found = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    print(f"build_llama: compiling {PACKAGE} {version} (about 7 minutes on 2 cores)", flush=True)
    print(f"build_llama: CMAKE_ARGS={flags}", flush=True)
    env = {**os.environ, "CMAKE_ARGS": flags, "FORCE_CMAKE": "1"}
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
    args = parser.parse_args(argv)
    version = pinned_version()
    flags = os.environ.get("LOCALRAG_LLAMA_CMAKE_ARGS") or portable_flags()
    wheel_dir = (args.wheel_dir or ROOT / "build" / "llama-wheels") / build_key(version, flags)
    if not args.no_install and installed_from(wheel_dir):
        print(f"build_llama: {PACKAGE} {version} is installed from {wheel_dir}", flush=True)
        return 0
    wheel = build_wheel(version, flags, wheel_dir)
    print(f"build_llama: {wheel}", flush=True)
    if args.no_install:
        return 0
    cmd = [
        sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
        "--no-deps", "--force-reinstall", str(wheel),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
