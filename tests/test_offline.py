"""The whole flow works with no network at all: in a network namespace with no interfaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from audio_synth import encode, speak
from cli_flow import first_session, make_documents

pytestmark = [pytest.mark.models, pytest.mark.slow]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root or user namespaces)")
def test_init_add_search_ask_with_no_network(real_models, home: Path, tmp_path: Path):
    docs = make_documents(tmp_path / "docs")
    env = {**os.environ, "LOCALRAG_HOME": str(home), "LOCALRAG_PASSPHRASE": "offline passphrase"}
    env.pop("HF_HUB_OFFLINE", None)  # localrag must set what it needs itself

    def localrag(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["unshare", "-n", sys.executable, "-m", "localrag", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    answer = first_session(localrag, docs)
    assert answer["model"] == "smollm2-135m-instruct-q4_1"
    assert json.loads(localrag("doctor", "--json").stdout)["ok"] is True


def _outside(paths: list[str], allowed: list[Path]) -> list[str]:
    """The paths that are not inside one of `allowed` (nor /dev/null, nor an in-memory file)."""
    roots = [str(a.resolve()) for a in allowed]
    return sorted(
        {
            p
            for p in paths
            if p != os.devnull
            and not p.startswith(("/proc/self/fd/", "/dev/shm/", "/dev/pts/"))
            and not any(p == r or p.startswith(r + os.sep) for r in roots)
        }
    )


def _user_env(home: Path, user_home: Path, tmpdir: Path) -> dict[str, str]:
    """This environment without the settings localrag must make itself, and with a user's
    `HF_HUB_OFFLINE=0` that must not turn the network on."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ORT_", "TRANSFORMERS_"))
    }
    return env | {
        "LOCALRAG_HOME": str(home),
        "HOME": str(user_home),
        "TMPDIR": str(tmpdir),
        "XDG_CACHE_HOME": str(user_home / ".cache"),
        "HF_HUB_OFFLINE": "0",
    }


def test_the_whole_flow_tries_no_network_and_writes_only_the_vault(
    real_models, home: Path, tmp_path: Path
) -> None:
    """security.md items 16, 17, 23: init, add (text, PDF, DOCX, audio), search, ask, chat,
    transcribe, adapter import and merge. Every Python process and child is probed (every
    `connect`, `getaddrinfo`, `sendto` refused and recorded) and, where strace works, traced
    (internet sockets, name lookups and file writes by native code, onnxruntime's included)."""
    from docmaker import make_docx, make_pdf
    from probing import run_probed, strace_works

    from localrag.adapter import convert
    from localrag.adapter.sample import make_peft_adapter
    from localrag.models import model_path

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text("# Travel\n\nTrain tickets are booked at the Nordlys desk.\n")
    make_pdf(docs / "report.pdf", [["Annual report"], ["The turbine blade cracked in March."]])
    make_docx(docs / "policy.docx", [("Heading1", "Leave"), (None, "Staff get ten days.")])
    memo = docs / "memo.wav"
    memo.write_bytes(encode(speak("The harbour crane arrives on Thursday."), ".wav"))
    adapter = make_peft_adapter(
        convert.read_base(model_path(real_models, "llm")), tmp_path / "tone", rank=2, layers=[0]
    )
    sources = {p: p.read_bytes() for p in [*docs.iterdir(), *adapter.iterdir()]}

    user_home, tmpdir, cwd = tmp_path / "user", tmp_path / "tmp", tmp_path / "cwd"
    for folder in (user_home, tmpdir, cwd):
        folder.mkdir()
    env = _user_env(home, user_home, tmpdir)
    probe = tmp_path / "probe"
    flow: list[tuple[list[str], str | None]] = [
        (["init"], None),
        (["add", str(docs), "--json"], None),
        (["search", "who books train tickets"], None),
        (["ask", "Where are train tickets booked?"], None),
        (["chat"], "When did the turbine blade crack?\n\n"),
        (["transcribe", str(memo)], None),
        (["adapter", "import", str(adapter), "--name", "tone"], None),
        (["adapter", "merge", "tone", "--quant", "Q8_0"], None),
    ]
    problems = {}
    for argv, stdin in flow:
        cmd = [sys.executable, "-m", "localrag", *argv]
        env["LOCALRAG_PASSPHRASE"] = "offline passphrase"
        result, probed = run_probed(cmd, env, probe, cwd=cwd, stdin=stdin)
        assert result.returncode == 0, f"{argv}: {result.stderr}"
        assert probed.processes, "the probe saw no Python process"
        found = {
            "python network attempts": probed.python_attempts,
            "native network attempts": probed.native_attempts,
            "written outside the vault": _outside(probed.written, [home, probe]),
        }
        if any(found.values()):
            problems[argv[0] + " " + (argv[1] if len(argv) > 1 else "")] = found
    assert problems == {}
    assert [p for p in user_home.rglob("*")] == []  # no ~/.cache/Microsoft, no device id
    assert [p for p in tmpdir.rglob("*")] == [] and [p for p in cwd.rglob("*")] == []
    assert {p: p.read_bytes() for p in sources} == sources  # no sidecar beside the sources
    assert sorted(p.name for p in docs.iterdir()) == sorted(
        p.name for p in sources if p.parent == docs
    )
    if not strace_works():
        pytest.skip("checked in Python only: strace is not available to see native code")


def test_doctor_and_ocr_try_no_network(real_models, home: Path, tmp_path: Path) -> None:
    """security.md item 17: `tesseract --version` looks up the machine's own name (OpenLDAP,
    linked through libcurl, resolves it when the version line is printed: a DNS query where the
    name is not in /etc/hosts). `doctor` and the OCR of a scanned page and an image must try no
    lookup, no connection, in any process; and write nothing outside the vault."""
    from docmaker import make_scanned_pdf, png_bytes, render_page
    from probing import run_probed, strace_works

    if not strace_works():
        pytest.skip("Tesseract is native code: only strace sees its attempts")
    docs = tmp_path / "docs"
    docs.mkdir()
    make_scanned_pdf(docs / "scan.pdf", [render_page(["The boiler is checked every May."])])
    (docs / "note.png").write_bytes(png_bytes(render_page(["Call the plumber on Friday."])))
    user_home, tmpdir, cwd = tmp_path / "user", tmp_path / "tmp", tmp_path / "cwd"
    for folder in (user_home, tmpdir, cwd):
        folder.mkdir()
    env = _user_env(home, user_home, tmpdir)
    probe = tmp_path / "probe"
    problems = {}
    for argv in (["init"], ["add", str(docs), "--json"], ["doctor", "--json"]):
        env["LOCALRAG_PASSPHRASE"] = "offline passphrase"
        cmd = [sys.executable, "-m", "localrag", *argv]
        result, probed = run_probed(cmd, env, probe, cwd=cwd)
        assert result.returncode == 0, f"{argv}: {result.stdout} {result.stderr}"
        found = {
            "python network attempts": probed.python_attempts,
            "native network attempts": probed.native_attempts,
            "written outside the vault": _outside(probed.written, [home, probe]),
        }
        if any(found.values()):
            problems[argv[0]] = found
        if argv[0] == "add":
            added = json.loads(result.stdout)
        if argv[0] == "doctor":
            checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert problems == {}
    assert len(added["added"]) == 2, added  # both were read by OCR
    ocr = checks["ocr (scanned pages, images)"]
    assert ocr["ok"] and ocr["detail"].startswith("tesseract 5"), ocr
