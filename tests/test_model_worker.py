"""A model worker that dies costs one clear error: never the CLI, the vault or the conversation.

These tests run a stand-in worker (`fake_worker.py`) that speaks the protocol with no model, so
that a crash comes exactly when wanted; `test_generate.py` kills the real one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from localrag import doctor, embed, models
from localrag.answer import INTERRUPTED
from localrag.cli import main
from localrag.embed import HashingEmbedder
from localrag.settings import Settings
from localrag.worker import client

FAKE = Path(__file__).with_name("fake_worker.py")


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(client, "COMMAND", [sys.executable, str(FAKE)])
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    model = tmp_path / "any.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "model_path", lambda settings, role, specs=None: model)
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "worker crash passphrase")


@pytest.mark.usefixtures("fake_worker")
def test_ask_keeps_the_partial_answer_and_exits_with_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["ask", "--no-retrieval", "CRASH please"]) == 5
    out, err = capsys.readouterr()
    assert out.startswith("Partial" + INTERRUPTED)
    [line] = err.strip().splitlines()
    assert "the model process crashed (SIGSEGV) while writing an answer" in line
    assert "localrag doctor" in line

    # The conversation holds the question and the marked partial answer; the vault still opens,
    # and the next question starts a new worker.
    assert main(["history", "1", "--json"]) == 0
    turns = json.loads(capsys.readouterr().out)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["text"] == "Partial" + INTERRUPTED
    assert main(["ask", "--no-retrieval", "--conversation", "1", "Are you well?"]) == 0
    assert capsys.readouterr().out.startswith("All good")


@pytest.mark.usefixtures("fake_worker")
def test_doctor_fails_with_a_clear_line_when_the_model_cannot_generate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD_CRASH", "1")
    assert main(["doctor"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "model generates" in x]
    assert line.startswith("BAD")
    assert "crashed (SIGSEGV) while loading" in line
    assert "CPU:" in line and "make setup" in line

    # On 64-bit ARM the likely cause is a core older than the build's ARMv8.2 dot products.
    with monkeypatch.context() as arm:
        arm.setattr(doctor.platform, "machine", lambda: "aarch64")
        assert main(["doctor"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "model generates" in x]
    assert "DOTPROD" in line and "LOCALRAG_LLAMA_CMAKE_ARGS" in line and "AMX" not in line

    monkeypatch.delenv("LOAD_CRASH")
    assert main(["doctor", "--json"]) in (0, 1)  # other checks may fail without real models
    checks = json.loads(capsys.readouterr().out)["checks"]
    [generation] = [c for c in checks if c["name"] == "model generates"]
    assert generation["ok"] and "All good" in generation["detail"]


@pytest.mark.usefixtures("fake_worker")
def test_the_next_question_after_a_crash_starts_a_new_worker(settings: object) -> None:
    from localrag.service import Assistant
    from localrag.worker.client import WorkerCrashed

    with Assistant.create(settings, bytearray(b"worker crash passphrase")) as assistant:  # type: ignore[arg-type]
        answer = assistant.ask("CRASH please", retrieval=False)
        with pytest.raises(WorkerCrashed):
            answer.text()
        assert answer.error is not None and "SIGSEGV" in answer.error
        first = assistant.models.loaded()
        assert first is not None and not first.alive  # type: ignore[attr-defined]
        again = assistant.ask("Are you well?", retrieval=False)
        assert again.text().startswith("All good")
        assert assistant.models.loaded() is not first


@pytest.mark.usefixtures("fake_worker")
def test_the_app_starts_the_model_before_the_first_question(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localrag.errors import ModelError
    from localrag.service import Assistant

    queries: list[str] = []
    embed_query = HashingEmbedder.embed_query
    monkeypatch.setattr(
        HashingEmbedder,
        "embed_query",
        lambda self, text: queries.append(text) or embed_query(self, text),
    )
    with Assistant.create(settings, bytearray(b"worker crash passphrase")) as assistant:  # type: ignore[arg-type]
        assert assistant.models.loaded() is None
        assistant.prepare_answers()
        assert queries == ["warm up"]  # the embedder's session has run once
        started = assistant.models.loaded()
        assert started is not None and started.alive  # type: ignore[attr-defined]
        assert assistant.ask("Are you well?", retrieval=False).text().startswith("All good")
        assert assistant.models.loaded() is started  # the first question used it

    # A model that cannot load costs nothing on opening: the question says why.
    monkeypatch.setenv("LOAD_CRASH", "1")
    with Assistant.open(settings, bytearray(b"worker crash passphrase")) as assistant:  # type: ignore[arg-type]
        assistant.prepare_answers()
        with pytest.raises(ModelError, match="crashed"):
            assistant.ask("Are you well?", retrieval=False).text()


@pytest.mark.models
def test_a_gguf_llama_cpp_cannot_run_is_refused_by_models_add_and_adapter_import(
    real_models: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from localrag.adapter import convert, peft
    from localrag.adapter.sample import make_peft_adapter
    from localrag.settings import Settings

    settings = Settings.load()
    base_path = models.model_path(settings, "llm")
    data = base_path.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 3])
    assert main(["models", "add", str(truncated), "--role", "llm"]) == 5
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "truncated.gguf" in line and "nothing was added" in line
    assert Settings.load().registered == {}

    base = convert.read_base(base_path)
    lora = convert.peft_to_lora(peft.load_peft(make_peft_adapter(base, tmp_path / "a")), base)
    whole = tmp_path / "lora.gguf"
    convert.write_lora(lora, whole)
    broken = tmp_path / "broken-lora.gguf"
    raw = whole.read_bytes()
    broken.write_bytes(raw[: len(raw) // 2])
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "worker crash passphrase")
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["adapter", "import", str(broken), "--name", "broken"]) == 7
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "broken-lora.gguf" in line
    assert main(["adapter", "list", "--json"]) == 0
    assert "broken" not in [a["name"] for a in json.loads(capsys.readouterr().out)["adapters"]]


@pytest.mark.models
def test_a_new_vault_holds_the_merged_default_answer_model(
    real_models: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from localrag.adapter import builtin
    from localrag.settings import Settings

    assert builtin.built(Settings.load()) is not None, "run `localrag models pull` first"
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "answer model passphrase")
    assert main(["init"]) == 0
    capsys.readouterr()

    def ask() -> dict[str, object]:
        assert main(["ask", "--no-retrieval", "--json", "Say hello."]) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    # The locally merged LoRA model is in the vault and answers; the base is one command away.
    assert main(["adapter", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [v["ref"] for v in listing["versions"]] == ["answer@v1"]
    assert listing["active"] == "answer@v1"
    assert ask()["adapter"] == "answer@v1"
    assert main(["adapter", "use", "base"]) == 0
    capsys.readouterr()
    assert ask()["adapter"] is None
    assert main(["adapter", "rollback"]) == 0
    capsys.readouterr()
    assert ask()["adapter"] == "answer@v1"


@pytest.mark.models
def test_doctor_verifies_the_answer_model_and_names_one_that_does_not_match(
    real_models: Settings, tmp_path: Path
) -> None:
    from localrag import doctor
    from localrag.adapter import builtin

    check = doctor.check_answer_model(real_models)
    assert check.ok and check.detail == f"verified {builtin.model_file(real_models)}"
    # The same models, but the answer model's recorded hash is not its file's.
    folder = tmp_path / "models"
    folder.mkdir()
    for entry in real_models.models_dir.iterdir():
        if entry.name != builtin.FOLDER:
            (folder / entry.name).symlink_to(entry)
    answer = folder / builtin.FOLDER
    answer.mkdir()
    built = builtin.model_file(real_models)
    (answer / built.name).symlink_to(built)
    record = built.with_name(builtin.PROVENANCE).read_text(encoding="utf-8")
    recorded = builtin.provenance(real_models)
    assert recorded is not None
    (answer / builtin.PROVENANCE).write_text(record.replace(recorded["sha256"], "0" * 64))
    check = doctor.check_answer_model(Settings(real_models.home, folder))
    assert not check.ok and "models pull" in check.detail
    # A model of the user's own answers: the answer model is not needed.
    check = doctor.check_answer_model(real_models.with_changes(roles={"llm": "my-model"}))
    assert check.ok and check.detail.startswith("not used")


@pytest.mark.models
@pytest.mark.usefixtures("vault")
def test_an_abstain_margin_answers_what_the_model_would_refuse(
    real_models: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped answer model refuses "When does the lathe need oil?" from a source that says;
    with a margin it writes its likeliest grounded answer instead. The refusal quotes the closest
    sentence."""
    from localrag.settings import Settings

    doc = tmp_path / "workshop.md"
    doc.write_text(
        "# Workshop\n\nThe lathe in the workshop is painted green and needs oil every Tuesday.\n"
    )
    assert main(["add", str(doc)]) == 0
    capsys.readouterr()
    config = Settings.load().home / "config.toml"

    def ask(margin: float) -> dict[str, object]:
        config.write_text(f"abstain_margin = {margin}\ngrounded_answers = true\n")
        assert main(["ask", "--json", "When does the lathe need oil?"]) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    refused, answered = ask(0), ask(1000)
    assert refused["abstained"] is True and refused["adapter"] == "answer@v1"
    # The refusal points at the sentence that holds the answer, cited to its place.
    closest = refused["closest"]
    assert closest["text"].startswith("The lathe in the workshop") and "Tuesday" in closest["text"]
    assert closest["where"] == "workshop.md, line 3" and answered["closest"] is None
    assert answered["abstained"] is False, answered
    assert str(answered["answer"]).startswith("every Tuesday")
