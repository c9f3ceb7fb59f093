"""Every localrag process is hardened (../shared/security.md items 23 and 24): telemetry off and
hubs offline whatever the user's environment says, no core dumps, and the passphrase gone from the
environment once read, so no child process ever receives it."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from docmaker import make_pdf
from probing import run_probed

from localrag import hardening

SECRET = "QX7-passphrase-MARKER"

# A localrag process as the CLI runs it, with the hashing embedder so that no model is needed:
# init, then add a PDF (its parser runs in a child process).
CLI_WITH_A_CHILD = """
import json, sys
from localrag import embed
from localrag.embed import HashingEmbedder

embed.from_settings = lambda settings, **_: HashingEmbedder()
from localrag.cli import main

codes = [main(["init"]), main(["add", sys.argv[1], "--json"]), main(["vault", "info"])]
status = open("/proc/self/status").read()
locked_kb = int(next(l for l in status.splitlines() if l.startswith("VmLck")).split()[1])
print(json.dumps({"codes": codes, "locked_kb": locked_kb}))
"""


def test_importing_localrag_forces_telemetry_off_and_hubs_offline(home: Path) -> None:
    env = os.environ | {"HF_HUB_OFFLINE": "0", "ORT_DISABLE_TELEMETRY": "0"}
    env.pop("TRANSFORMERS_OFFLINE", None)
    code = "import json, os, localrag; print(json.dumps(dict(os.environ)))"
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    seen = json.loads(child.stdout)
    assert {k: seen.get(k) for k in hardening.OFFLINE_ENVIRONMENT} == (
        hardening.OFFLINE_ENVIRONMENT
    )
    assert seen["ORT_DISABLE_TELEMETRY"] == "1" and seen["HF_HUB_OFFLINE"] == "1"
    # huggingface_hub reads the switch at import: imported first, it is told directly.
    code = (
        "import huggingface_hub.constants as c, localrag.hardening as h; h.quiet_libraries(); "
        "print(c.HF_HUB_OFFLINE)"
    )
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert child.stdout.strip() == "True", child.stderr


def test_the_passphrase_leaves_the_environment_and_no_child_receives_it(
    home: Path, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, [["Cover"], ["The turbine blade cracked in March."]])
    env = os.environ | {"LOCALRAG_HOME": str(home), "LOCALRAG_PASSPHRASE": SECRET}
    cmd = [sys.executable, "-c", textwrap.dedent(CLI_WITH_A_CHILD), str(pdf)]
    result, probed = run_probed(cmd, env, tmp_path / "probe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["codes"] == [0, 0, 0]  # read once, the passphrase still served three commands

    top = next(p for p in probed.processes if p["argv"][-1] == str(pdf))
    children = [p for p in probed.processes if p is not top]
    assert children, "the PDF parser child was not seen"
    assert SECRET in top["environ_at_start"]  # the probe does see it where it is
    assert SECRET not in top["environ_at_exit"]  # gone from /proc/PID/environ once read
    assert [p["argv"] for p in children if SECRET in p["environ_at_start"]] == []
    # No core dump could carry it either: the parent is not dumpable, nobody may dump core.
    assert top["dumpable_at_exit"] == 0
    assert {tuple(p["core_limit_at_start"]) for p in children} == {(0, 0)}
    assert top["core_limit_at_exit"] == [0, 0]
    assert report["locked_kb"] > 0  # the key material's pages are locked out of swap


def test_a_secret_taken_from_the_environment_is_wiped_when_forgotten(monkeypatch) -> None:
    monkeypatch.setenv("LOCALRAG_NEW_PASSPHRASE", SECRET)
    copy = hardening.take_secret("LOCALRAG_NEW_PASSPHRASE")
    assert copy == bytearray(SECRET.encode()) and "LOCALRAG_NEW_PASSPHRASE" not in os.environ
    held = hardening._held["LOCALRAG_NEW_PASSPHRASE"]
    hardening.forget_secrets()
    assert (
        held == bytearray(len(SECRET)) and hardening.take_secret("LOCALRAG_NEW_PASSPHRASE") is None
    )


def _locked_kb(secret: bytearray) -> int:
    """Locked memory (kB, from /proc/self/smaps) of the mapping that holds `secret`."""
    view = (ctypes.c_char * len(secret)).from_buffer(secret)
    address = ctypes.addressof(view)
    del view  # let go of the buffer, so the bytearray may be wiped or resized
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(None, 1)[0]
        if ":" not in first:  # a mapping's own line: START-END perms ...
            start, end = (int(x, 16) for x in first.split("-"))
            inside = start <= address < end
        elif inside and first == "Locked:":
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_the_passphrase_and_the_data_key_are_kept_out_of_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """security.md item 24 (issue 15, item 2): the passphrase as the commands get it (from the
    environment, a file) and the data key are `mlock`ed. Each buffer must have been handed to
    `lock_memory` itself (not only share a page with another locked secret) and the kernel must
    show its page locked."""
    import argparse

    from localrag.cli.common import read_passphrase
    from localrag.store import keys

    handed: list[int] = []
    real = hardening.lock_memory

    def recorded(secret: bytearray) -> bool:
        handed.append(id(secret))
        return real(secret)

    monkeypatch.setattr(hardening, "lock_memory", recorded)
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", SECRET)
    from_env = read_passphrase(argparse.Namespace(passphrase_file=None))
    file = tmp_path / "passphrase.txt"
    file.write_text(SECRET + "\n")
    from_file = read_passphrase(argparse.Namespace(passphrase_file=file))
    data_key = keys.unwrap(keys.wrap(keys.new_data_key(), from_file), from_env)
    secrets = {"env passphrase": from_env, "file passphrase": from_file, "data key": data_key}
    assert {name: id(s) in handed for name, s in secrets.items()} == dict.fromkeys(secrets, True)
    assert {name: _locked_kb(s) > 0 for name, s in secrets.items()} == dict.fromkeys(secrets, True)
