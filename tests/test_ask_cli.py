"""`localrag ask`, `chat` and `history`, as a user runs them: with fakes, then the real models."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from localrag import embed, service
from localrag.cli import main
from localrag.embed import HashingEmbedder
from localrag.errors import UsageError
from localrag.generate import EchoGenerator
from localrag.model_choice import FixedModel
from localrag.prompt import NOT_FOUND

BRIDGE = (
    "The Lindqvist Bridge\n\n"
    "The Lindqvist Bridge crosses the Aura river in three spans.\n"
    "Construction began in 1896 and the bridge opened to traffic in 1902.\n"
    "A flood in 1899 delayed the works by a year.\n\n"
    "The bridge is 212 metres long and carries two tram tracks.\n"
)
PANCAKES = "Pancakes need flour, eggs, milk and a pinch of salt.\nFry them in butter.\n"


@pytest.fixture
def docs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A vault holding two small documents; returns their folder."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "correct horse")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    (folder / "pancakes.txt").write_text(PANCAKES, encoding="utf-8")
    assert main(["init"]) == 0
    assert main(["add", str(folder)]) == 0
    capsys.readouterr()
    return folder


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    monkeypatch.setattr(
        service, "WorkerModels", lambda settings, store: FixedModel(EchoGenerator())
    )


def ask_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["ask", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("fakes")
def test_ask_prints_the_answer_then_its_citations(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "When", "did", "the", "Lindqvist", "Bridge", "open", "to", "traffic?"]) == 0
    out = capsys.readouterr().out
    assert "The Lindqvist Bridge" in out
    assert out.endswith(f"[1]\n\n[1] {docs / 'bridge.txt'}, lines 1-7\n")


@pytest.mark.usefixtures("fakes")
def test_ask_json_has_answer_citations_and_timings(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ask_json(capsys, "When did the Lindqvist Bridge open to traffic?")
    (citation,) = result["citations"]
    assert citation["path"] == str(docs / "bridge.txt")
    assert (citation["line_start"], citation["line_end"]) == (1, 7)
    assert "212 metres" in citation["text"]
    assert set(result["timings_ms"]) == {"retrieve", "first_token", "total"}
    assert result["abstained"] is False
    assert result["model"] == "echo"
    assert result["tokens"] > 0


@pytest.mark.usefixtures("fakes")
def test_chat_keeps_one_conversation_and_history_shows_it(
    docs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = "When did the Lindqvist Bridge open to traffic?\nHow long is it?\n\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat"]) == 0
    assert capsys.readouterr().out.count("[1] ") == 2
    assert main(["history", "--json"]) == 0
    (conversation,) = json.loads(capsys.readouterr().out)
    assert conversation["turn_count"] == 4
    assert main(["history", str(conversation["id"])]) == 0
    shown = capsys.readouterr().out
    assert "user: How long is it?" in shown
    assert "bridge.txt" in shown


@pytest.mark.usefixtures("fakes")
def test_ask_runtime_without_an_adapter_is_a_usage_error(
    docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "--runtime", "When did the bridge open?"]) == UsageError.exit_code
    assert "a runtime adapter needs a name: --adapter NAME --runtime" in capsys.readouterr().err


def test_ask_without_a_vault_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "x")
    assert main(["ask", "anything"]) != 0
    assert "localrag init" in capsys.readouterr().err


@pytest.mark.models
@pytest.mark.slow
def test_real_model_answers_cites_abstains_and_follows_up(
    real_models: object, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Streamed answer with a citation pointing at the document's real span.
    assert main(["ask", "When did the Lindqvist Bridge open to traffic?"]) == 0
    out = capsys.readouterr().out
    assert "1902" in out
    assert f"[1] {docs / 'bridge.txt'}, lines " in out

    # An unrelated question: the gate abstains instead of inventing.
    result = ask_json(capsys, "What is the boiling point of mercury?")
    assert result["abstained"] is True
    assert result["answer"] == NOT_FOUND
    assert result["citations"] == []

    # A follow-up in the same conversation knows what "it" is.
    first = ask_json(capsys, "When did the Lindqvist Bridge open to traffic?")
    follow = ask_json(capsys, "How long is it?", "--conversation", str(first["conversation_id"]))
    assert "212" in follow["answer"]
    assert follow["citations"][0]["path"] == str(docs / "bridge.txt")
    assert follow["tokens_per_s"] > 0

    # With retrieval off the model answers alone, with no sources. The default model's adapter
    # was taught to answer from sources, not from memory: the base alone knows this one.
    alone = ask_json(capsys, "--no-retrieval", "What is the capital of France?")
    assert alone["citations"] == [] and alone["answer"].strip()
    assert alone["adapter"] == "answer@v1"
    base = ask_json(capsys, "--no-retrieval", "--adapter", "base", "What is the capital of France?")
    assert base["citations"] == [] and "Paris" in base["answer"] and base["adapter"] is None


TELEMETRY = (
    "Disabling telemetry\n\n"
    "To turn telemetry off, set DO_NOT_TRACK=1 in the environment before the first start.\n"
    "The app then sends nothing.\n"
)


@pytest.mark.models
def test_the_gate_lets_the_model_answer_a_question_sharing_no_word_with_its_source(
    real_models: object,
    docs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The real embedder and gate; a model that answers from its first source, to see what the
    # gate lets through (eval qa measures what the real model then says).
    model = EchoGenerator()
    monkeypatch.setattr(service, "WorkerModels", lambda settings, store: FixedModel(model))
    (docs / "privacy.md").write_text(TELEMETRY, encoding="utf-8")
    assert main(["add", str(docs / "privacy.md")]) == 0
    capsys.readouterr()
    result = ask_json(capsys, "How can I opt out of data collection?")
    assert result["checked"] is True  # retrieval alone was not sure: the model's answer decided
    assert result["abstained"] is False
    assert "DO_NOT_TRACK=1" in result["answer"]
    assert result["citations"][0]["path"] == str(docs / "privacy.md")
    # A question about nothing in the vault is not put to the model at all.
    asked = len(model.prompts)
    assert ask_json(capsys, "What is the boiling point of mercury?")["abstained"] is True
    assert len(model.prompts) == asked


SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Bridges",
            "paragraphs": [
                {
                    "context": "The Lindqvist Bridge opened in 1902. It is 212 metres long.",
                    "qas": [
                        {
                            "question": "When did the Lindqvist Bridge open?",
                            "answers": [{"text": "1902", "answer_start": 32}],
                            "is_impossible": False,
                        },
                        {
                            "question": "What is the boiling point of liquid mercury?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "Pancakes need flour, eggs, milk and a pinch of salt.",
                    "qas": [
                        {
                            "question": "What do pancakes need?",
                            "answers": [{"text": "flour, eggs, milk and a pinch of salt"}],
                            "is_impossible": False,
                        }
                    ],
                },
            ],
        }
    ],
}


def eval_qa(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    generator: EchoGenerator,
    *options: str,
    data: dict | None = None,
) -> dict:
    from localrag import model_choice

    monkeypatch.setattr(model_choice, "WorkerModels", lambda settings, store: FixedModel(generator))
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(data or SQUAD), encoding="utf-8")
    assert main(["eval", "qa", "--squad", str(squad), "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("fakes")
def test_eval_qa_scores_answers_abstaining_and_retrieval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = eval_qa(tmp_path, capsys, monkeypatch, EchoGenerator())
    assert (result["answerable"], result["unanswerable"]) == (2, 1)
    assert result["hit_at_k"] == result["retrieval_hit_at_k"] == 1.0
    # The echo model repeats the first sentence of the best source: "flour..." is in the text.
    assert result["answer_in_text"] == 1.0
    assert result["abstain_recall"] == 1.0
    assert result["abstain_precision"] == 1.0
    assert 0 < result["f1"] < 1
    assert set(result["latency_ms"]) == {"p50", "p95", "first_token_p50"}
    # Both answers cite the source that holds the gold answer; SQuAD 2.0's overall score counts
    # the abstention as exact and the two sentence-long answers as not.
    assert result["citation_precision"] == 1.0
    assert result["overall_exact_match"] == round(1 / 3, 3)
    assert result["overall_f1"] > result["overall_exact_match"]


@pytest.mark.usefixtures("fakes")
def test_eval_qa_asks_only_the_articles_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(json.dumps(SQUAD))
    data["data"].append(
        {"title": "Other_things", "paragraphs": [SQUAD["data"][0]["paragraphs"][1]]}
    )
    result = eval_qa(
        tmp_path, capsys, monkeypatch, EchoGenerator(), "--articles", "Other things", data=data
    )
    assert result["questions"] == 1 and result["records"][0]["question"] == "What do pancakes need?"
    assert main(["eval", "qa", "--squad", str(tmp_path / "squad.json"), "--articles", "Cars"]) == 2


@pytest.mark.usefixtures("fakes")
def test_eval_qa_hit_at_k_counts_only_the_sources_the_model_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context too small for any source once the answer's tokens are set aside: retrieval
    # finds the paragraph, but the model never sees it.
    result = eval_qa(tmp_path, capsys, monkeypatch, EchoGenerator(n_ctx=500))
    assert result["retrieval_hit_at_k"] == 1.0
    assert result["hit_at_k"] == 0.0
    assert result["abstained_answerable"] == 1.0


@pytest.mark.models
def test_ask_answers_with_a_model_the_user_added(
    real_models: object, docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from localrag import models
    from localrag.settings import Settings

    own = tmp_path / "my-model.gguf"  # a GGUF of the user's own, here a copy of the default
    own.write_bytes(models.model_path(Settings.load(), "llm").read_bytes())
    assert main(["models", "add", str(own), "--role", "llm", "--name", "mine"]) == 0
    capsys.readouterr()
    result = ask_json(capsys, "When did the Lindqvist Bridge open to traffic?")
    assert result["model"] == "mine" and "1902" in result["answer"]
    assert result["citations"][0]["path"] == str(docs / "bridge.txt")
