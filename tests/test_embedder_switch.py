"""Switching the vault's embedder (issue 19): every chunk re-embedded into a staging area in
batches, resumable after a stop or a kill, search on the old vectors (with the old embedder)
until the new ones are complete, then one transaction swaps them in. Two hashing embedders of
different sizes and seeds stand for two models."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fake_embedders import Named, from_settings, model_folder

from localrag.chunk import text_under_heading
from localrag.cli import main
from localrag.embed import HashingEmbedder, identity
from localrag.errors import ModelError, VaultError
from localrag.service import Assistant
from localrag.settings import Settings
from localrag.store.sample import sample_document
from localrag.store.store import VectorsChanged

MARKER = "QX7MARKERZEBRA"
DOCS = 30


def old() -> HashingEmbedder:
    return HashingEmbedder(256, seed=1)


def new() -> HashingEmbedder:
    return HashingEmbedder(384, seed=2)


def corpus(root: Path, n: int = DOCS) -> Path:
    """`n` notes, each with a word of its own (item7) and a paragraph the others share."""
    root.mkdir()
    for i in range(n):
        (root / f"note{i}.txt").write_text(
            f"Field note {i}\n\nThe item{i} capybara grazed by river{i} at dawn.\n\n"
            f"{MARKER} rodents live in South America.\n",
            encoding="utf-8",
        )
    return root


@pytest.fixture
def assistant(settings: Settings, tmp_path: Path) -> Iterator[Assistant]:
    with Assistant.create(settings, bytearray(b"pw"), embedder=old(), answer_model=False) as a:
        assert all(e.status == "added" for e in a.add([corpus(tmp_path / "docs")]) if e.final)
        yield a


def top_note(assistant: Assistant, i: int) -> str:
    """The note that vector search ranks first for note i's own words (never no hit)."""
    hits = assistant.search(f"The item{i} capybara grazed by river{i}", k=3, mode="vector")
    assert len(hits) == 3
    return Path(hits[0].chunk.path).name


def searched_with(assistant: Assistant) -> str:
    """The fingerprint of the embedder that embeds queries, checked against the vault's."""
    embedder = assistant.embedder
    assert embedder.dim == assistant.store.vector_dim  # never a query against other vectors
    return embedder.fingerprint


def tables(assistant: Assistant) -> set[str]:
    return {r[0] for r in assistant.store.conn.execute("SELECT name FROM sqlite_schema")}


def assert_made_by(assistant: Assistant, embedder: HashingEmbedder) -> None:
    """Every chunk's searched vector is the one `embedder` makes of it."""
    sample = assistant.store.sample_vectors(10_000)
    assert len(sample) == len(assistant.store.chunk_ids())
    made = embedder.embed_documents([text_under_heading(t, h) for t, h, _ in sample])
    np.testing.assert_allclose(np.stack([v for _, _, v in sample]), made, atol=1e-6)


def test_the_vault_records_its_embedder_and_refuses_vectors_or_queries_of_another(
    assistant: Assistant,
) -> None:
    assert assistant.embedder_info() == identity(old())
    # Same size, other model: the case that used to be searched as garbage, silently.
    other = HashingEmbedder(256, seed=9)
    doc, chunks, vectors = sample_document(np.random.default_rng(0), "other", 2, dim=256)
    with pytest.raises(VaultError, match="another embedder"):
        assistant.store.add_document(doc, chunks, vectors, embedder=identity(other))
    with pytest.raises(VectorsChanged):
        assistant.store.knn(other.embed_query("capybara"), 3, fingerprint=other.fingerprint)
    assert assistant.store.document(doc.path) is None


def test_a_switch_stopped_after_any_batch_resumes_and_search_never_goes_blind(
    assistant: Assistant,
) -> None:
    a, b = old(), new()
    total = len(assistant.store.chunk_ids())
    assert top_note(assistant, 7) == "note7.txt"
    done, runs, last = 0, 0, None
    while last is None or last.status != "done":
        # Each run is stopped after two batches, as Ctrl-C or a kill would stop it.
        run = assistant.reembed(b, batch_chunks=5)
        events = list(itertools.islice(run, 3))
        run.close()
        runs += 1
        last = events[-1]
        pending = assistant.embedder_switch()
        if last.status != "done":
            assert pending is not None and pending.to == identity(b)
            assert pending.chunks_done > done or pending.chunks_done == total  # kept, and more
            done = pending.chunks_done
            assert searched_with(assistant) == a.fingerprint  # the old vectors, the old queries
            assert top_note(assistant, runs) == f"note{runs}.txt"
            assert assistant.store.integrity_problems() == []
    assert runs > 2 and assistant.embedder_switch() is None
    assert last.chunks_done == last.chunks_total == total
    assert assistant.embedder_info() == identity(b)
    assert searched_with(assistant) == b.fingerprint and assistant.store.vector_dim == 384
    assert_made_by(assistant, b)
    assert top_note(assistant, 7) == "note7.txt"
    assert assistant.store.integrity_problems() == []
    assert "staged_vectors" not in tables(assistant) and "vec_codes" not in tables(assistant)


def test_documents_added_or_removed_during_a_switch_are_accounted_for(
    assistant: Assistant, tmp_path: Path
) -> None:
    b = new()
    run = assistant.reembed(b, batch_chunks=4)
    list(itertools.islice(run, 3))
    run.close()
    # Added meanwhile with the old embedder: found at once, re-embedded by the switch.
    late = tmp_path / "late.txt"
    late.write_text("The pangolin rolled into a ball under the baobab.\n", encoding="utf-8")
    assert [e.status for e in assistant.add([late]) if e.final] == ["added"]
    assert assistant.embedder_info() == identity(old())
    hits = assistant.search("pangolin baobab", k=1, mode="vector")
    assert Path(hits[0].chunk.path).name == "late.txt"
    # Removed meanwhile: its staged vectors go with it (note0's were staged).
    assistant.remove(str(tmp_path / "docs" / "note0.txt"))
    assert assistant.store.integrity_problems() == []

    events = list(assistant.reembed(b))
    assert events[-1].status == "done"
    assert assistant.embedder_info() == identity(b)
    assert_made_by(assistant, b)
    hits = assistant.search("pangolin baobab", k=1, mode="vector")
    assert Path(hits[0].chunk.path).name == "late.txt"
    assert assistant.store.integrity_problems() == []


def test_switching_back_before_the_end_cancels_cleanly(assistant: Assistant) -> None:
    a, b = old(), new()
    before = tables(assistant)
    run = assistant.reembed(b, batch_chunks=4)
    list(itertools.islice(run, 3))
    run.close()
    assert assistant.embedder_switch() is not None

    events = list(assistant.reembed(a))
    assert [(e.status, e.cancelled) for e in events] == [("current", True)]
    assert assistant.embedder_switch() is None and tables(assistant) == before
    assert searched_with(assistant) == a.fingerprint and assistant.store.integrity_problems() == []
    # Then a switch all the way, and another one back: each swaps in a new set of tables.
    assert list(assistant.reembed(b))[-1].status == "done"
    assert list(assistant.reembed(a))[-1].status == "done"
    assert_made_by(assistant, a)
    assert top_note(assistant, 3) == "note3.txt"
    assert "vec_codes_2" in tables(assistant) and "vec_codes_1" not in tables(assistant)


def test_search_from_another_thread_finds_throughout_a_switch(assistant: Assistant) -> None:
    stop = threading.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    def search() -> None:
        while not stop.is_set():
            try:
                seen.append(top_note(assistant, 5))
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=search)
    thread.start()
    try:
        for _ in assistant.reembed(new(), batch_chunks=3):
            stop.wait(0.01)  # let the searcher in between batches
    finally:
        stop.set()
        thread.join()
    assert errors == [] and seen and set(seen) == {"note5.txt"}
    assert top_note(assistant, 5) == "note5.txt" and searched_with(assistant) == new().fingerprint


def test_the_codes_in_memory_stay_current_while_vectors_are_staged(assistant: Assistant) -> None:
    store = assistant.store
    assert store.keep_vectors_warm() == DOCS
    steps = assistant.reembed(new(), batch_chunks=7)
    next(steps)
    next(steps)  # a batch staged: the searched vectors did not change
    assert store.vectors_in_memory == DOCS
    assert top_note(assistant, 4) == "note4.txt"
    for _ in steps:
        pass
    assert store.vectors_in_memory == 0  # swapped: the codes are stale, rebuilt on demand
    assert top_note(assistant, 4) == "note4.txt" and searched_with(assistant) == new().fingerprint


def test_a_vault_from_before_the_record_adopts_only_the_embedder_that_made_it(
    settings: Settings, tmp_path: Path
) -> None:
    with Assistant.create(settings, bytearray(b"pw"), embedder=old(), answer_model=False) as a:
        list(a.add([corpus(tmp_path / "docs", 5)]))
        a.store.conn.execute("DELETE FROM meta WHERE key = 'embedder'")  # as an older vault
    # Another model of the same size is not taken for the one that made the vectors: vector
    # search is refused rather than ranking garbage; keyword search goes on...
    with Assistant.open(settings, bytearray(b"pw"), embedder=HashingEmbedder(256, seed=9)) as a:
        with pytest.raises(ModelError, match="did not record"):
            a.search("capybara", mode="vector")
        assert Path(a.search("item3 river3", mode="keyword")[0].chunk.path).name == "note3.txt"
        assert a.embedder_info() is None
    # ...and the one that did is recorded.
    with Assistant.open(settings, bytearray(b"pw"), embedder=old()) as a:
        assert top_note(a, 2) == "note2.txt"
        assert a.embedder_info() == identity(old())
    # An unknown one is re-embedded whole by a switch.
    with Assistant.open(settings, bytearray(b"pw"), embedder=new()) as a:
        a.store.conn.execute("DELETE FROM meta WHERE key = 'embedder'")
        assert list(a.reembed())[-1].status == "done"
        assert_made_by(a, new())
        assert top_note(a, 2) == "note2.txt"


def test_a_vault_with_no_vectors_takes_the_new_embedder_at_once(settings: Settings) -> None:
    with Assistant.create(settings, bytearray(b"pw"), embedder=old(), answer_model=False) as a:
        assert [e.status for e in a.reembed(new())] == ["empty"]
        assert a.embedder_switch() is None


def test_the_old_vectors_leave_no_trace_in_the_vault_file(
    settings: Settings, tmp_path: Path
) -> None:
    from test_vault_security import decrypted_copy

    from localrag.store.vault import unlock

    a = old()
    with Assistant.create(settings, bytearray(b"pw"), embedder=a, answer_model=False) as asst:
        list(asst.add([corpus(tmp_path / "docs", 8)]))
        olds = [v.tobytes() for _, _, v in asst.store.sample_vectors(100)]
        assert list(asst.reembed(new()))[-1].status == "done"
    plain = decrypted_copy(settings, unlock(settings, bytearray(b"pw")), tmp_path / "plain.db")
    assert [v for v in olds if v in plain] == []


# -- through the CLI, as a user runs it --------------------------------------------------------


def search_json(capsys: pytest.CaptureFixture[str], i: int) -> str:
    """The note `localrag search --mode vector` ranks first for note i's own sentence."""
    words = f"The item{i} capybara grazed by river{i}".split()
    code, hits = cli_json(capsys, "search", *words, "--mode", "vector")
    assert code == 0 and isinstance(hits, list) and hits
    return Path(hits[0]["path"]).name


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def fakes_vault(
    vault: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> Path:
    """A vault whose notes were embedded by hash-a; hash-b registered beside it."""
    monkeypatch.setattr("localrag.embed.from_settings", from_settings)
    models = tmp_path / "models"
    assert main(["models", "add", str(model_folder(models, "hash-a")), "--role", "embedder"]) == 0
    assert main(["add", str(corpus(tmp_path / "docs")), "--json"]) == 0
    folder = model_folder(models, "hash-b")
    assert main(["models", "add", str(folder), "--role", "embedder", "--no-use"]) == 0
    capsys.readouterr()
    return tmp_path


def test_models_use_switches_the_embedder_and_vault_info_shows_it(
    fakes_vault: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "hash-a"
    assert info["embedder_switch"] is None
    code, done = cli_json(capsys, "models", "use", "hash-b", "--role", "embedder", "--batch", "7")
    assert code == 0 and isinstance(done, dict)
    assert done["status"] == "done" and done["chunks_done"] == done["chunks_total"] == DOCS
    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "hash-b"
    assert info["vector_dim"] == 384
    assert search_json(capsys, 4) == "note4.txt"
    # A role that does not fit the model is refused, and nothing changes.
    assert main(["models", "use", "hash-a", "--role", "llm"]) == 2
    assert "not llm" in capsys.readouterr().err


def test_a_switch_killed_by_sigkill_resumes_and_search_never_goes_blind(
    fakes_vault: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = fakes_vault / "tmp"
    tmp.mkdir()
    env = os.environ | {"BLOCK_AT": "4", "TMPDIR": str(tmp), "LOCALRAG_PASSPHRASE": "correct horse"}
    script = Path(__file__).with_name("fake_embedders.py")
    argv = [sys.executable, str(script), "models", "use", "hash-b", "--batch", "5", "--json"]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None
        line = child.stdout.readline()  # the 4th batch is being embedded: 3 are stored
        assert line == b"BLOCKED\n", child.stderr.read() if child.stderr else b""
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "hash-a"
    assert info["embedder_switch"]["to"]["name"] == "hash-b"
    assert (info["embedder_switch"]["chunks_done"], info["embedder_switch"]["chunks_total"]) == (
        15,
        DOCS,
    )
    assert search_json(capsys, 9) == "note9.txt"
    with Assistant.open(Settings.load(), bytearray(b"correct horse")) as assistant:
        assert assistant.store.integrity_problems() == []

    code, done = cli_json(capsys, "reembed")
    assert code == 0 and isinstance(done, dict) and done["status"] == "done"
    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "hash-b"
    assert info["embedder_switch"] is None
    assert search_json(capsys, 9) == "note9.txt"
    with Assistant.open(Settings.load(), bytearray(b"correct horse")) as assistant:
        assert assistant.store.integrity_problems() == []
        assert assistant.embedder.fingerprint == "hashing:384:2"
    # Nothing readable was left outside the vault: not in its files, not in TMPDIR.
    files = [p for p in [*home.rglob("*"), *tmp.rglob("*")] if p.is_file()]
    assert [p.name for p in files if MARKER.encode() in p.read_bytes()] == []


def test_ctrl_c_keeps_the_batches_done_and_says_how_to_go_on(
    fakes_vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Named, "calls", 0)
    monkeypatch.setenv("INTERRUPT_AT", "3")
    assert main(["models", "use", "hash-b", "--batch", "4"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: 8 of 30 chunks re-embedded and kept; `localrag reembed` goes on" in err
    assert "search uses hash-a until it is done" in err
    assert search_json(capsys, 6) == "note6.txt"
    monkeypatch.delenv("INTERRUPT_AT")
    assert main(["reembed"]) == 0
    assert "the vault's vectors are now from hash-b: 30 chunks" in capsys.readouterr().out


def test_add_during_a_switch_says_it_is_under_way(
    fakes_vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Assistant.open(Settings.load(), bytearray(b"correct horse")) as assistant:
        run = assistant.reembed(Named("hash-b"), batch_chunks=4)
        list(itertools.islice(run, 2))
        run.close()
    late = fakes_vault / "late.txt"
    late.write_text("The pangolin rolled into a ball.\n", encoding="utf-8")
    assert main(["add", str(late)]) == 0
    err = capsys.readouterr().err
    assert "switch to the embedder hash-b is under way (4 of 31 chunks)" in err
    assert main(["vault", "info"]) == 0
    out = capsys.readouterr().out
    assert "embedder   hash-a (256 dims" in out
    assert "switching  to hash-b (384 dims): 4 of 31 chunks re-embedded (13%)" in out


# -- the real default embedder ------------------------------------------------------------------


def real_corpus(root: Path, n: int) -> Path:
    """`n` notes of a few sentences each, one chunk apiece, about different things."""
    root.mkdir()
    things = ["turbine", "invoice", "vaccine", "glacier", "contract", "orchard", "satellite"]
    people = ["Maria", "Kenji", "Amara", "Lukas", "Priya", "Tomas"]
    for i in range(n):
        thing, who = things[i % len(things)], people[i % len(people)]
        (root / f"note{i:03d}.txt").write_text(
            f"Note {i}. {who} checked the {thing} number {i} on day {i % 28 + 1}. "
            f"The {thing} was found in state {i % 5}, and {who} wrote report {i * 7}. "
            f"{MARKER} is the word of this vault.\n",
            encoding="utf-8",
        )
    return root


@pytest.mark.models
@pytest.mark.slow
@pytest.mark.usefixtures("vault")
def test_a_real_embedder_switch_killed_halfway_resumes(
    real_models: Settings, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import time

    from localrag.bench.cli_child import child_env
    from localrag.bench.cli_child import run as run_cli
    from localrag.store import open_vault

    # The default embedder's files and one more: another model, as far as the vault can tell
    # (the same vectors, so search must rank alike before, during and after).
    default = real_models.models_dir / "all-minilm-l6-v2-int8"
    copy = tmp_path / "minilm-copy"
    shutil.copytree(default, copy)
    (copy / "NOTE.txt").write_text("the default embedder, registered again", encoding="utf-8")
    assert main(["add", str(real_corpus(tmp_path / "docs", 200)), "--json"]) == 0
    assert main(["models", "add", str(copy), "--role", "embedder", "--no-use"]) == 0
    capsys.readouterr()
    query = "Amara wrote report 301 about the vaccine"

    def top() -> str:
        code, hits = cli_json(capsys, "search", query)
        assert code == 0 and isinstance(hits, list) and hits
        return Path(hits[0]["path"]).name

    before = top()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = child_env(home, "correct horse", real_models.models_dir, {"TMPDIR": str(tmp)})
    argv = [sys.executable, "-m", "localrag", "models", "use", "minilm-copy", "--batch", "16"]
    with subprocess.Popen([*argv, "--json"], env=env, stdout=subprocess.DEVNULL) as child:
        with open_vault(Settings.load(), bytearray(b"correct horse")) as store:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and child.poll() is None:
                pending = store.embedder_switch()
                if pending is not None and pending.chunks_done >= 32:
                    break
                time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "all-minilm-l6-v2-int8"
    switch = info["embedder_switch"]
    assert switch["to"]["name"] == "minilm-copy"
    assert 32 <= switch["chunks_done"] < switch["chunks_total"] == 200
    assert top() == before  # in this process, with the old embedder
    fresh = run_cli(["search", query, "--json"], env)  # and in a fresh one, as a user runs it
    assert fresh.returncode == 0 and Path(json.loads(fresh.stdout)[0]["path"]).name == before

    code, done = cli_json(capsys, "reembed", "--batch", "64")
    assert code == 0 and isinstance(done, dict) and done["status"] == "done"
    assert done["chunks_total"] == 200 and done["embedder"]["name"] == "minilm-copy"
    code, info = cli_json(capsys, "vault", "info")
    assert isinstance(info, dict) and info["embedder"]["name"] == "minilm-copy"
    assert info["embedder_switch"] is None
    assert top() == before
    with Assistant.open(Settings.load(), bytearray(b"correct horse")) as assistant:
        assert assistant.store.integrity_problems() == []
        assert assistant.embedder.name == "minilm-copy"
    files = [p for p in [*home.rglob("*"), *tmp.rglob("*")] if p.is_file()]
    assert [p.name for p in files if MARKER.encode() in p.read_bytes()] == []
