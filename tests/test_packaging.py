"""The set-up: every dependency installed from the hashed lock, llama.cpp built portably."""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_llama() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_llama", ROOT / "packaging/build_llama.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_dependency_with_its_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==\S+(?: ;[^\\]*)? \\\n((?:\s+--hash=\S+(?: \\)?\n)+)", lock, re.M
    )
    pinned = {name.lower().replace("_", "-") for name, _ in pins}
    # Built from source with portable flags by packaging/build_llama.py, installed after the lock.
    assert wanted - pinned == {"llama-cpp-python"}, "run `make lock` after changing pyproject.toml"
    lines = [line for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    assert len(lines) == len(pins), "every pinned package carries its hashes"


def test_the_setup_installs_the_lock_with_hashes_then_localrag_without_dependencies() -> None:
    recipe = (ROOT / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in recipe.splitlines()[1:]]
    lock = next(i for i, s in enumerate(steps) if "--require-hashes -r requirements.lock" in s)
    llama = next(i for i, s in enumerate(steps) if "packaging/build_llama.py" in s)
    package = next(i for i, s in enumerate(steps) if "--no-deps -e ." in s)
    assert lock < llama < package
    assert "requirements.lock" in recipe.splitlines()[0], "a new lock reruns the set-up"


def test_the_llama_build_is_portable_and_keyed_by_its_flags() -> None:
    build = _build_llama()
    x86 = build.portable_flags("x86_64")
    for off in ("NATIVE", "AVX512", "AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{off}=OFF" in x86
    assert "-DGGML_AVX2=ON" in x86
    assert "-DGGML_NATIVE=OFF" in build.portable_flags("aarch64")
    assert "-DGGML_OPENMP=OFF" in x86 and "-DGGML_OPENMP=OFF" in build.portable_flags("aarch64")
    key = build.build_key("0.3.36", x86)
    assert key != build.build_key("0.3.36", x86.replace("AMX_TILE=OFF", "AMX_TILE=ON"))
    assert key != build.build_key("0.3.37", x86)
    assert key != build.build_key("0.3.36", x86, "aarch64")
    assert build.pinned_version() == "0.3.36"


def test_the_arm64_build_on_linux_x86_64_uses_the_cross_compiler() -> None:
    build = _build_llama()
    if build.is_cross("x86_64"):
        pytest.skip("cross-building for arm64 is done on Linux x86-64")
    flags = build.portable_flags("aarch64")
    assert "-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc" in flags and "armv8.2-a" in flags
    assert "aarch64-linux-gnu" not in build.portable_flags("x86_64")


# AT&T mnemonics of AMX (tile configuration and tile multiply) and any use of AVX-512 registers.
_UNPORTABLE = re.compile(r"\b(ldtilecfg|tileloadd\w*|tdpb\w+|tdpfp16ps)\b|%zmm\d|%k[0-7]\b")


def test_the_installed_llama_cpp_has_no_amx_or_avx512_code() -> None:
    """The crash of issue 12 was ggml's AMX kernels on a CPU that advertises AMX: proven absent."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("AMX and AVX-512 are x86-64 features")
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in info
    assert "AMX" not in info and "AVX512" not in info, info
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed: the disassembly check needs it")
    libraries = sorted((Path(llama_cpp.__file__).parent / "lib").glob("lib*.so"))
    assert libraries, "llama-cpp-python's shared libraries are where it loads them from"
    for library in libraries:
        code = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(library)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = _UNPORTABLE.search(code)
        assert found is None, f"{library.name} holds {found and found.group(0)}"


def test_the_installed_llama_cpp_needs_no_openmp_runtime() -> None:
    """A minimal system has no libgomp.so.1: the libraries must not ask for it."""
    import llama_cpp

    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed: the check reads the libraries with it")
    for library in sorted((Path(llama_cpp.__file__).parent / "lib").glob("lib*.so")):
        headers = subprocess.run([objdump, "-p", str(library)], capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
        needed = re.findall(r"NEEDED\s+(\S+)", headers)
        assert needed and not [n for n in needed if "gomp" in n], (library.name, needed)
