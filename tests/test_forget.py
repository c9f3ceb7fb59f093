"""Deleting a document deletes it everywhere (../shared/security.md item 27), conversation turns
that quote or cite it included; `localrag history rm ID` deletes a conversation. Checked in a
decrypted copy of the vault, free pages and WAL included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_vault_security import decrypted_copy

from localrag import embed, service
from localrag.cli import main
from localrag.embed import HashingEmbedder
from localrag.generate import EchoGenerator
from localrag.model_choice import FixedModel
from localrag.settings import Settings
from localrag.store.conversations import SCRUBBED
from localrag.store.vault import unlock

MARKER = "QX7FORGETMARKER"
PASS = "correct horse"


@pytest.fixture
def asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Two documents, and one answered question about each (the echo model quotes its source)."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS)
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    echo = FixedModel(EchoGenerator())
    monkeypatch.setattr(service, "WorkerModels", lambda settings, store: echo)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text(
        f"The vault code is {MARKER} and the safe opens on Tuesdays at noon.\n", encoding="utf-8"
    )
    (docs / "recipe.txt").write_text(
        "Pancakes need flour, eggs, milk and a pinch of salt.\n", encoding="utf-8"
    )
    assert main(["init"]) == 0
    assert main(["add", str(docs)]) == 0
    assert main(["ask", "When does the safe open?"]) == 0
    assert main(["ask", "What do pancakes need?"]) == 0
    capsys.readouterr()
    return docs


def _plain(settings: Settings, tmp_path: Path, name: str) -> bytes:
    return decrypted_copy(settings, unlock(settings, bytearray(PASS.encode())), tmp_path / name)


def _turns(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    turns = []
    assert main(["history", "--json"]) == 0
    for conversation in json.loads(capsys.readouterr().out):
        assert main(["history", str(conversation["id"]), "--json"]) == 0
        turns += json.loads(capsys.readouterr().out)
    return turns


def test_rm_scrubs_the_turns_that_quote_or_cite_the_document(
    asked: Path, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _turns(capsys)
    assert any(MARKER in t["text"] for t in before)  # the stored answer quoted it
    assert MARKER.encode() in _plain(settings, tmp_path, "before.db")

    assert main(["rm", str(asked / "note.txt")]) == 0
    capsys.readouterr()
    assert MARKER.encode() not in _plain(settings, tmp_path, "after.db")
    after = _turns(capsys)
    assert len(after) == len(before)  # scrubbed, not deleted
    scrubbed = [t for t in after if t["text"] == SCRUBBED]
    assert [t["role"] for t in scrubbed] == ["assistant"]
    assert all(c["path"] != str(asked / "note.txt") for t in after for c in t["citations"])
    pancakes = [t for t in after if "flour" in t["text"]]
    assert pancakes and pancakes[0]["citations"]  # the other document's answer is untouched


def test_rm_can_delete_those_turns_instead(
    asked: Path, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _turns(capsys)
    assert main(["rm", "--history", "delete", str(asked / "note.txt")]) == 0
    capsys.readouterr()
    after = _turns(capsys)
    assert len(after) == len(before) - 1 and not any(t["text"] == SCRUBBED for t in after)
    assert MARKER.encode() not in _plain(settings, tmp_path, "after.db")


def test_history_rm_deletes_a_conversation(
    asked: Path, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--json"]) == 0
    conversations = json.loads(capsys.readouterr().out)
    safe = next(c for c in conversations if "safe" in c["title"])
    assert main(["history", "rm", str(safe["id"])]) == 0
    capsys.readouterr()
    assert main(["history", "--json"]) == 0
    left = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in left] == [c["id"] for c in conversations if c is not safe]
    plain = _plain(settings, tmp_path, "after.db")
    assert b"When does the safe open?" not in plain
    assert main(["history", "rm", str(safe["id"])]) != 0  # already gone: an error, not silence
