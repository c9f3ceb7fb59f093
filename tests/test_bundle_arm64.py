"""The Linux arm64 offline bundle (issue 17), cross-built on this Linux x86-64 machine
(`make_bundle.py --machine aarch64`) and installed in an arm64 Debian that qemu emulates: a
debootstrap root entered with chroot, whose programs binfmt_misc hands to qemu-aarch64-static.
With the network cut (`unshare -n`), install.sh verifies the bundle, installs it with pip
--no-index, merges the answer adapter and runs doctor (the arm64 llama.cpp writes tokens); then
the installed program runs init, add (a document and a recording), search and ask.

Needs root (chroot, mounts, binfmt_misc), qemu-user-static, debootstrap and the cross compiler
(`make system-packages` installs them on Debian) and Debian's mirror once for the root, kept in
build/arm64-root-<release>/. Skipped, with the reason, where this machine cannot emulate arm64."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_flow import first_session, make_documents

# Made from nothing: the root (about 4 minutes), llama.cpp cross-compiled (6), then emulated.
pytestmark = [pytest.mark.models, pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parent.parent
BINFMT = Path("/proc/sys/fs/binfmt_misc")
NEEDED = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap",
          "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
          "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu", "unshare": "util-linux"}  # fmt: skip
UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--propagation", "private"]
"""New network (none), mount and process namespaces: mounts made for a command in the root go
away with it, and nothing it starts can reach a network."""
EM_AARCH64 = 183
"""The ELF header's e_machine of a 64-bit ARM library."""


def _why_not() -> str | None:
    """None if this machine can build the arm64 bundle and run arm64 programs; else why not."""
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        return "the arm64 bundle is cross-built on Linux x86-64 only"
    if os.geteuid() != 0:
        return "entering an arm64 root (chroot, mounts) needs root"
    missing = sorted({package for program, package in NEEDED.items() if not shutil.which(program)})
    if missing:
        return f"install {' '.join(missing)} (make system-packages)"
    if subprocess.run([*UNSHARE, "true"], capture_output=True).returncode != 0:
        return "new network, mount and process namespaces are not allowed here (a container?)"
    return _register_qemu()


def _register_qemu() -> str | None:
    """Hands arm64 programs to qemu through binfmt_misc, as systemd-binfmt would at boot."""
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        if not (BINFMT / "register").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                           capture_output=True)  # fmt: skip
        rule = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
        if (BINFMT / "register").exists() and rule.exists():
            try:
                (BINFMT / "register").write_text(rule.read_text().strip())
            except OSError as error:
                return f"binfmt_misc refused qemu's rule: {error}"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        return "binfmt_misc cannot be mounted here (a container?): arm64 programs cannot run"
    return None


def _debian_root() -> Path:
    """An arm64 Debian of this machine's release (the bundle needs its glibc or newer), with
    Python and venv: made once with debootstrap (about 4 minutes), then reused."""
    about = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                 if "=" in line)  # fmt: skip
    if about.get("ID") != "debian":
        pytest.skip("the arm64 root is made from Debian's mirror, for a Debian host")
    release = about.get("VERSION_CODENAME", "").strip('"')
    root = ROOT / "build" / f"arm64-root-{release}"
    if (root / "usr" / "bin" / "python3").exists():
        return root
    partial = root.with_name(root.name + ".part")
    # A debootstrap killed midway may leave /proc or /dev mounted in it: never delete through.
    subprocess.run(["rm", "-rf", "--one-file-system", str(partial)], capture_output=True)
    made = subprocess.run(
        ["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv",
         release, str(partial), "http://deb.debian.org/debian"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if made.returncode != 0:
        # The mirror is not the product: a download that fails is no verdict on the bundle.
        last = (made.stdout + made.stderr).strip().splitlines()[-1:]
        pytest.skip(f"debootstrap could not make an arm64 {release} root: {last}")
    partial.rename(root)
    return root


@dataclass
class Arm64:
    """A folder inside the emulated root, and a way to run programs there, offline."""

    root: Path
    work: str
    """The folder as the programs in the root see it."""

    @property
    def outside(self) -> Path:
        return self.root / self.work.lstrip("/")

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        home = f"{self.work}/user"
        variables = {"HOME": home, "LOCALRAG_HOME": f"{home}/data/localrag",
                     "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}  # fmt: skip
        # No /sys: under qemu-user it describes this x86 machine's CPUs, and reading it made
        # an arm64 library crash `add` (SIGSEGV); without it they fall back to one core.
        enter = 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && chroot "$0" "$@"'
        cmd = [*UNSHARE, "sh", "-c", enter, str(self.root), "env", "-i",
               *(f"{k}={v}" for k, v in variables.items()), *argv]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def arm64(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arm64]:
    """The arm64 bundle, built from this checkout and unpacked inside the emulated root."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    root = _debian_root()
    out = tmp_path_factory.mktemp("dist-arm64")
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, str(ROOT / "packaging/make_bundle.py"), "--machine", "aarch64",
         "--out", str(out)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    tar_path = Path(built.stdout.strip().splitlines()[-1])
    assert tar_path.name.endswith("-linux-aarch64-py311.tar"), tar_path
    print(f"arm64 bundle: {tar_path.stat().st_size / 1e6:.0f} MB in "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    place = Arm64(root, f"/localrag-test-{os.getpid()}")
    place.outside.mkdir()
    try:
        with tarfile.open(tar_path) as tar:
            tar.extractall(place.outside, filter="data")
        tar_path.unlink()
        yield place
    finally:
        shutil.rmtree(place.outside, ignore_errors=True)  # the root is kept for the next run


def test_the_arm64_bundle_installs_offline_on_emulated_arm64_and_answers(arm64: Arm64) -> None:
    [bundle] = [p.name for p in arm64.outside.iterdir() if p.name.startswith("localrag-bundle")]
    prefix = f"{arm64.work}/opt/localrag"
    started = time.monotonic()
    installed = arm64.run("bash", f"{arm64.work}/{bundle}/install.sh", prefix)
    print(f"install (emulated arm64, offline): {time.monotonic() - started:.0f} s")
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert "checks passed" in installed.stdout and f"{prefix}/bin/localrag init" in installed.stdout

    # What ran is arm64: the installed Python says so, and llama.cpp's library is an AArch64 ELF.
    machine = arm64.run(f"{prefix}/current/bin/python", "-c", "import platform; "
                        "print(platform.machine())")  # fmt: skip
    assert machine.stdout.strip() == "aarch64", machine.stderr
    [library] = (arm64.outside / "opt/localrag/current/lib").glob(
        "python3.*/site-packages/llama_cpp/lib/libllama.so"
    )
    assert int.from_bytes(library.read_bytes()[18:20], "little") == EM_AARCH64

    make_documents(arm64.outside / "docs")
    started = time.monotonic()

    def localrag(*args: str) -> subprocess.CompletedProcess[str]:
        return arm64.run(f"{prefix}/bin/localrag", *args, LOCALRAG_PASSPHRASE="arm64 passphrase")

    answer = first_session(localrag, Path(arm64.work) / "docs")
    print(f"first session (emulated): {time.monotonic() - started:.0f} s; {answer['answer']!r}")
    assert answer["adapter"] == "answer@v1"
