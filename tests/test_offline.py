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

pytestmark = [pytest.mark.models, pytest.mark.slow]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root or user namespaces)")
def test_init_add_search_ask_with_no_network(real_models, home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(
        "# Travel policy\n\nTrain tickets are booked through the Nordlys desk.\n"
        "Flights need approval from the finance lead.\n"
    )
    (docs / "memo.wav").write_bytes(encode(speak("The harbour crane arrives on Thursday."), ".wav"))
    env = {**os.environ, "LOCALRAG_HOME": str(home), "LOCALRAG_PASSPHRASE": "offline passphrase"}
    env.pop("HF_HUB_OFFLINE", None)  # localrag must set what it needs itself

    def localrag(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["unshare", "-n", sys.executable, "-m", "localrag", *args]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result

    localrag("init")
    added = json.loads(localrag("add", str(docs), "--json").stdout)
    assert not added["failed"]
    hits = json.loads(localrag("search", "who books train tickets", "--json").stdout)
    assert hits[0]["path"].endswith("travel.md")
    hits = json.loads(localrag("search", "harbour crane", "--json").stdout)
    assert hits[0]["path"].endswith("memo.wav") and hits[0]["end_s"] > hits[0]["start_s"]
    answer = json.loads(localrag("ask", "Where are train tickets booked?", "--json").stdout)
    assert answer["answer"].strip()
    assert answer["tokens"] > 0 and answer["model"] == "smollm2-135m-instruct-q4_1"
    assert all(Path(c["path"]).parent == docs for c in answer["citations"])
    assert json.loads(localrag("doctor", "--json").stdout)["ok"] is True
