"""`localrag eval make-qa`, `eval sets` and `eval compare`, as a user runs them: with fakes, then
(marked) on the real default models."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_ask_cli import SQUAD

from localrag import embed, model_choice, service
from localrag.adapter import builtin
from localrag.adapter.registry import AdapterInfo, Registry, Version
from localrag.cli import main
from localrag.embed import HashingEmbedder
from localrag.evaluate import make_qa, report
from localrag.generate import EchoGenerator, Grounding, Message
from localrag.model_choice import FixedModel
from localrag.settings import Settings
from localrag.store import open_vault

PASS = "correct horse"
MARKER = "Zorblaxquux"
BRIDGE = (
    "The Lindqvist Bridge crosses the Aura river in three spans. Construction began in 1896 "
    f"and the bridge opened to traffic in 1902. Its builders called it {MARKER} in their "
    "letters. The bridge is 212 metres long and carries two tram tracks.\n"
)
PANCAKES = (
    "Pancakes need flour, eggs, milk and a pinch of salt. Fry them in butter until golden "
    "and serve them warm with jam.\n"
)
LIBFFI = (
    "Thread safety\n\nOn these platforms, if you switch between ABIs, you must ensure that there "
    "is only one call to ffi_prep_cif at a time. Currently the only affected platform is PowerPC "
    "and the only affected type is long double.\n"
)


class PerRef:
    """A `ModelChoice` of fakes: one generator per model ref (None: the active model)."""

    def __init__(self, generators: dict[str | None, Any]) -> None:
        self.generators = generators
        self.asked: list[str | None] = []

    def generator(self, ref: str | None = None, *, runtime: bool = False) -> Any:
        self.asked.append(ref)
        return self.generators[ref]

    def loaded(self) -> Any:
        return None

    def close(self) -> None:
        pass


class Questioner(EchoGenerator):
    """Writes the question and answer that `replies` holds for the first key word in the text."""

    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__()
        self.replies = replies

    def stream(
        self, messages: Sequence[Message], max_tokens: int, grounding: Grounding | None = None
    ) -> Iterator[str]:
        text = messages[-1]["content"]
        if messages[0]["content"] == make_qa.PROMPT:
            yield next((r for key, r in self.replies.items() if key in text), "no idea")
        else:
            yield from super().stream(messages, max_tokens, grounding)


class Interrupting(EchoGenerator):
    """Answers `allowed` prompts, then acts as a user pressing Ctrl-C."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed

    def stream(
        self, messages: Sequence[Message], max_tokens: int, grounding: Grounding | None = None
    ) -> Iterator[str]:
        if len(self.prompts) >= self.allowed:
            raise KeyboardInterrupt
        return super().stream(messages, max_tokens, grounding)


REPLIES = {
    "Lindqvist": f"Q: What did its builders call the Lindqvist Bridge?\nA: {MARKER}",
    # An answer the model made up: not in the text, so it must not be kept.
    "Pancakes": "Q: What do pancakes need?\nA: sugar and cream",
}


@pytest.fixture
def vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A vault holding two small documents (the fake embedder); returns their folder."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS)
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    use_models(monkeypatch, FixedModel(EchoGenerator()))
    # The fakes answer for the base alone: the shipped answer model (where `models pull` built
    # it) is not made this vault's active model.
    monkeypatch.setattr(builtin, "install", lambda store, settings: None)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    (folder / "pancakes.txt").write_text(PANCAKES, encoding="utf-8")
    assert main(["init"]) == 0
    assert main(["add", str(folder)]) == 0
    capsys.readouterr()
    return folder


def use_models(monkeypatch: pytest.MonkeyPatch, choice: Any) -> None:
    monkeypatch.setattr(service, "WorkerModels", lambda settings, store: choice)
    monkeypatch.setattr(model_choice, "WorkerModels", lambda settings, store: choice)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def add_fake_version(settings: Settings, name: str = "tuned") -> None:
    """An adapter and a merged version in the registry (the fakes never read their files)."""
    with open_vault(settings, bytearray(PASS.encode())) as store:
        registry = Registry(store)
        registry.add_adapter(
            AdapterInfo(name, "here", "peft", "a" * 64, 8, 16.0, ["attn_q"], 2, "b" * 64, "now")
        )
        registry.add_version(
            Version(name, 1, "Q4_K_M", "echo", "b" * 64, "a" * 64, 16.0, 8, 1, "c" * 64, "now", 0)
        )


def answered_from_their_chunks(name: str) -> list[Any]:
    """The answerable questions of a stored set, each checked against its own chunk."""
    with open_vault(Settings.load(), bytearray(PASS.encode())) as store:
        items = [i for i in store.evaluations.items(name) if i.answers]
        texts = {c.id: c.text for c in store.chunks(store.chunk_ids())}
    for item in items:
        assert make_qa.acceptable(item.question, item.answers[0], texts[item.chunk_id])
    return items


def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return path


# -- make-qa ----------------------------------------------------------------------------------


def test_a_proposed_pair_is_kept_only_if_its_answer_occurs_in_the_chunk() -> None:
    text = "Construction began in 1896 and the bridge opened to traffic in 1902."
    assert make_qa.parse("Sure!\nQ: When did it open?\nA: 1902.") == ("When did it open?", "1902")
    assert make_qa.acceptable("When did the bridge open to traffic?", "1902", text)
    assert not make_qa.acceptable("When did the bridge open to traffic?", "1903", text)
    assert not make_qa.acceptable("When did the bridge open?", "190", text)  # not a whole word
    # The question gives its answer away: it tests nothing.
    assert not make_qa.acceptable("Did the bridge open in 1902?", "1902", text)
    assert make_qa.parse("I cannot help with that.") is None


def test_an_unanswerable_question_swaps_its_subject_for_a_name_absent_from_the_vault() -> None:
    made = make_qa.unanswerable(
        "When did the Lindqvist Bridge open?", BRIDGE, make_qa.MADE_UP_NAMES[0]
    )
    assert made == f"When did the {make_qa.MADE_UP_NAMES[0]} Bridge open?"
    assert make_qa.unanswerable("What is it?", BRIDGE, "Quillanet") is None


def test_make_qa_keeps_only_pairs_whose_answer_is_in_their_chunk_and_stores_the_set(
    vault: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_models(monkeypatch, FixedModel(Questioner(REPLIES)))
    stored = run_json(capsys, "eval", "make-qa", "--n", "2", "--name", "mine")
    assert stored["name"] == "mine"
    assert (stored["questions"], stored["unanswerable"]) == (2, 1)
    with open_vault(Settings.load(), bytearray(PASS.encode())) as store:
        items = store.evaluations.items("mine")
    answerable = [i for i in items if i.answers]
    assert [(i.question, i.answers) for i in answerable] == [
        ("What did its builders call the Lindqvist Bridge?", (MARKER,))
    ]
    # Made from the bridge's question, about a subject the vault does not hold.
    (absent,) = [i.question for i in items if not i.answers]
    assert absent.startswith("What did its builders call the ") and "Lindqvist" not in absent
    listed = run_json(capsys, "eval", "sets")
    assert [s["name"] for s in listed] == ["mine"]
    assert main(["eval", "make-qa", "--n", "2", "--name", "mine"]) == 2  # the name is taken


def test_where_the_model_proposes_nothing_usable_a_sentence_is_asked_back(
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (vault / "libffi.txt").write_text(LIBFFI, encoding="utf-8")
    assert main(["add", str(vault / "libffi.txt")]) == 0
    use_models(monkeypatch, FixedModel(Questioner({})))  # "no idea" to every text
    capsys.readouterr()
    assert main(["eval", "make-qa", "--n", "2", "--name", "mine"]) == 0
    assert "2 asked back from a sentence of the text" in capsys.readouterr().out
    answerable = answered_from_their_chunks("mine")
    assert main(["eval", "sets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["meta"]["asked_back"] == 2
    assert main(["eval", "sets"]) == 0
    assert "2 asked back)" in capsys.readouterr().out
    assert len(answerable) == 2
    assert {i.answers[0] for i in answerable} <= {"Aura", "1896", "1902", "ffi_prep_cif", "PowerPC"}
    # The compare's report says how its questions were made.
    assert main(["eval", "compare", "--set", "mine", "--report", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / report.MARKDOWN).read_text(encoding="utf-8")
    assert "2 of the set's questions were asked back from a sentence" in text


def test_make_qa_on_an_empty_vault_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS)
    monkeypatch.setattr(embed, "from_settings", lambda settings, **_: HashingEmbedder())
    use_models(monkeypatch, FixedModel(EchoGenerator()))
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["eval", "make-qa"]) == 2
    assert "add some with `localrag add PATH`" in capsys.readouterr().err


def test_training_from_a_set_leaves_out_its_held_out_questions(
    vault: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import random

    from localrag.adapter import examples
    from localrag.prompt import NOT_FOUND

    replies = {**REPLIES, "Pancakes": "Q: What do you fry pancakes in?\nA: butter"}
    use_models(monkeypatch, FixedModel(Questioner(replies)))
    assert main(["eval", "make-qa", "--n", "2", "--name", "mine"]) == 0
    with open_vault(Settings.load(), bytearray(PASS.encode())) as store:
        items = store.evaluations.items("mine")
        made, held = examples.from_set(store, "mine", random.Random(0))
    assert held == sum(i.held_out for i in items) >= 1
    kept = {i.question for i in items if not i.held_out}
    assert {e.question for e in made} == kept and len(made) < len(items)
    for e in made:
        if e.abstains:
            assert e.reply == NOT_FOUND
            continue
        answer, n = re.fullmatch(r"(.+) \[(\d)\]", e.reply).groups()  # type: ignore[union-attr]
        assert answer in e.sources[int(n) - 1].text
    capsys.readouterr()
    from localrag.cli import adapter as adapter_cli

    monkeypatch.setattr(adapter_cli, "_need_train_extra", lambda: None)  # torch or not
    assert main(["adapter", "train", "--name", "x"]) == 2
    assert "one of the two" in capsys.readouterr().err
    assert main(["adapter", "train", "--from-set", "nope", "--name", "x"]) == 2
    assert "no question set named 'nope'" in capsys.readouterr().err


# -- compare ----------------------------------------------------------------------------------


def test_compare_runs_every_configuration_and_its_report_matches_the_json(
    vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_fake_version(Settings.load())
    choice = PerRef({"base": EchoGenerator(), "tuned@v1": EchoGenerator(reply="I do not know.")})
    use_models(monkeypatch, choice)
    out = tmp_path / "report"
    squad = squad_file(tmp_path)
    result = run_json(
        capsys, "eval", "compare", "--squad", str(squad), "--adapter", "tuned", "--report", str(out)
    )
    configs = {c["name"]: c for c in result["configurations"]}
    assert list(configs) == ["base", "base+retrieval", "adapter", "adapter+retrieval"]
    assert all(c["questions"] == 3 and len(c["records"]) == 3 for c in configs.values())
    assert configs["adapter"]["model"] == "tuned@v1" and configs["base"]["model"] == "base"
    assert set(choice.asked) == {"base", "tuned@v1"}
    # The echo model cites the source holding the answer; alone, it only repeats the question.
    assert configs["base+retrieval"]["citation_precision"] == 1.0
    assert configs["base"]["f1"] < configs["base+retrieval"]["f1"]
    assert result["recommendation"][0].startswith("base+retrieval answers best")

    text = (out / report.MARKDOWN).read_text(encoding="utf-8")
    assert "This report contains your questions" in text.splitlines()[2]
    assert "When did the Lindqvist Bridge open?" in text
    rows = {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])[0] in configs
    }
    for name, c in configs.items():
        expected = [
            "n/a" if v is None else f"{v:.3f}"
            for v in (
                c["exact_match"],
                c["f1"],
                c["overall_f1"],
                c["abstain_precision"],
                c["abstain_recall"],
                c["citation_precision"],
            )
        ]
        expected += [f"{c['latency_ms']['p50']:.0f}", f"{c['latency_ms']['p95']:.0f}"]
        assert rows[name][:8] == expected, name
    for line in result["recommendation"]:
        assert f"- {line}" in text
    assert (out / report.CHART).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / report.MARKDOWN).stat().st_mode & 0o077 == 0


def test_compare_without_matplotlib_still_writes_the_markdown(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "report"
    squad = str(squad_file(tmp_path))
    assert main(["eval", "compare", "--squad", squad, "--report", str(out)]) == 0
    captured = capsys.readouterr()
    assert "matplotlib cannot be imported" in captured.err
    assert (out / report.MARKDOWN).is_file() and not (out / report.CHART).exists()
    # Without an adapter: the active model, alone and with retrieval, as a table on stdout,
    # and the chart in characters (it needs no matplotlib).
    assert "| base+retrieval |" in captured.out
    assert "\n1 base  2 base+retrieval\n" in captured.out
    assert "No adapter was compared" in captured.out


def test_an_interrupted_compare_resumes_from_the_answers_kept_in_the_vault(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    squad = str(squad_file(tmp_path))
    # A warm-up answer and one counted answer, then Ctrl-C while writing the next.
    use_models(monkeypatch, FixedModel(Interrupting(allowed=2)))
    assert main(["eval", "compare", "--squad", squad]) == 130
    assert "1 of 6 answers are kept in the vault" in capsys.readouterr().err
    use_models(monkeypatch, FixedModel(EchoGenerator()))
    resumed = run_json(capsys, "eval", "compare", "--squad", squad)
    assert resumed["resumed"] == 1
    fresh = run_json(capsys, "eval", "compare", "--squad", squad)  # finished: starts again
    assert fresh["resumed"] == 0
    strip = {"resumed", "total_ms", "first_token_ms", "tokens_per_s", "latency_ms"}

    def scores(result: dict[str, Any]) -> list[Any]:
        return [
            [{k: v for k, v in r.items() if k not in strip} for r in c["records"]]
            for c in result["configurations"]
        ]

    assert scores(resumed) == scores(fresh)


def test_compare_on_a_set_leaves_nothing_of_it_in_plaintext_and_no_conversation(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("SQLITE_TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # so that Python reads TMPDIR again
    use_models(monkeypatch, FixedModel(Questioner(REPLIES)))
    assert main(["eval", "make-qa", "--n", "2", "--name", "mine"]) == 0
    capsys.readouterr()
    result = run_json(capsys, "eval", "compare", "--set", "mine")
    rag = result["configurations"][1]
    assert rag["name"] == "base+retrieval" and rag["questions"] == 2
    # Retrieval found the chunk the question was made from, and the answer cites it.
    assert rag["hit_at_k"] == 1.0 and rag["citation_precision"] == 1.0
    assert result["source"] == "set:mine"
    assert run_json(capsys, "history") == []  # the compare's questions are no chat of the user's
    home = Settings.load().home
    needles = [s.encode(enc) for s in (MARKER, "Lindqvist") for enc in ("utf-8", "utf-16-le")]
    for folder in (home, temp):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n in data for n in needles), path


def test_deleting_a_document_deletes_the_questions_made_from_it_and_the_compares(
    vault: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_models(monkeypatch, FixedModel(Questioner(REPLIES)))
    assert main(["eval", "make-qa", "--n", "2", "--name", "mine"]) == 0
    assert main(["eval", "compare", "--set", "mine", "--json"]) == 0
    assert main(["rm", str(vault / "bridge.txt")]) == 0
    capsys.readouterr()
    assert run_json(capsys, "eval", "sets")[0]["questions"] == 0
    with open_vault(Settings.load(), bytearray(PASS.encode())) as store:
        assert store.evaluations.last_result() is None
    assert main(["eval", "compare", "--set", "mine"]) == 2


def test_compare_names_what_is_wrong_in_one_line(
    vault: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "compare", "--set", "nope"]) == 2
    assert "no question set named 'nope'" in capsys.readouterr().err
    assert main(["eval", "compare", "--squad", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err
    squad = str(squad_file(tmp_path))
    assert main(["eval", "compare", "--squad", squad, "--adapter", "nope"]) != 0
    assert re.search(r"no adapter named 'nope'", capsys.readouterr().err)


def test_the_recommendation_comes_from_the_numbers() -> None:
    def config(name: str, f1: float, p50: float) -> dict[str, Any]:
        return {
            "name": name,
            "overall_f1": f1,
            "answerable": 8,
            "unanswerable": 2,
            "latency_ms": {"p50": p50, "p95": p50},
        }

    result = {
        "questions": 10,
        "adapter": "tuned@v1",
        "configurations": [
            config("base", 0.20, 300),
            config("base+retrieval", 0.60, 420),
            config("adapter", 0.25, 310),
            config("adapter+retrieval", 0.70, 430),
        ],
    }
    lines = report.recommend(result)
    assert lines[0].startswith("adapter+retrieval answers best: overall F1 0.700")
    assert "Retrieval adds 120 ms to the median answer of the base model" in lines[1]
    assert "The adapter tuned@v1 is worth keeping" in lines[3] and "+0.100" in lines[3]
    result["configurations"][3] = config("adapter+retrieval", 0.61, 430)
    assert "within 0.02" in report.recommend(result)[1]
    assert "no measurable difference" in " ".join(report.recommend(result))


@pytest.mark.models
@pytest.mark.slow
def test_compare_on_the_real_models_answers_every_configuration(
    real_models: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two questions, every configuration, the real embedder, answer model and base."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    assert main(["init"]) == 0 and main(["add", str(folder)]) == 0
    squad = squad_file(tmp_path)
    out = tmp_path / "report"
    argv = ["eval", "compare", "--squad", str(squad), "--limit", "2", "--report", str(out)]
    assert main(argv) == 0
    text = (out / report.MARKDOWN).read_text(encoding="utf-8")
    with open_vault(Settings.load(), bytearray(PASS.encode())) as store:
        result = store.evaluations.last_result()
        active = Registry(store).active
    assert result is not None
    names = [c["name"] for c in result["configurations"]]
    # Where set-up built the shipped answer model, it is active: the adapter rows are its.
    rows = 4 if active is not None else 2
    assert names == ["base", "base+retrieval", "adapter", "adapter+retrieval"][:rows]
    assert result["adapter"] == (active.ref if active is not None else None)
    for c in result["configurations"]:
        assert c["questions"] == 2 and c["latency_ms"]["p50"] > 0
        assert c["peak_memory_mb"] is not None and c["peak_memory_mb"] > 50
        assert f"| {c['name']} |" in text


@pytest.mark.models
@pytest.mark.slow
def test_a_set_made_by_the_real_model_from_prose_and_a_manual_is_compared(
    real_models: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """make-qa with the default model on a story and a manual page, then a compare on the set."""
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", PASS)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    (folder / "libffi.txt").write_text(LIBFFI, encoding="utf-8")
    assert main(["init"]) == 0 and main(["add", str(folder)]) == 0
    capsys.readouterr()
    made = run_json(capsys, "eval", "make-qa", "--n", "2", "--name", "real")
    assert made["questions"] >= 2 and answered_from_their_chunks("real")
    result = run_json(capsys, "eval", "compare", "--set", "real", "--limit", "2")
    for c in result["configurations"]:
        assert c["questions"] == 2


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_peak_memory_of_a_child_is_read_and_set_back_to_what_it_holds_now() -> None:
    import subprocess
    import sys

    from localrag.worker import memory

    # A child that touches 200 MB, lets it go, says so, and waits to be measured.
    code = (
        "import sys; x = bytearray(200_000_000); del x; print('freed', flush=True); "
        "sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"freed\n"
        peak = memory.peak_rss_bytes(child.pid)
        assert peak is not None and peak > 200_000_000
        assert memory.reset_peak_rss(child.pid)
        after = memory.peak_rss_bytes(child.pid)
        assert after is not None and after < 100_000_000
    finally:
        child.communicate(b"")
    assert memory.peak_rss_bytes(None) is None and not memory.reset_peak_rss(None)
