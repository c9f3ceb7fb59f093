"""Training an answer adapter: the examples it learns from, the shipped adapter's pins, and (with
the train extra and the real models) a short run whose adapter imports and changes the answer."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from localrag.adapter import examples, shipped, synthetic
from localrag.errors import AdapterError, UsageError
from localrag.prompt import NOT_FOUND, SYSTEM
from localrag.settings import Settings

SQUAD = {
    "data": [
        {
            "title": "Bridges",
            "paragraphs": [
                {
                    "context": "The Lindqvist Bridge opened in 1902. It is 212 metres long. "
                    "Trams crossed it until 1961.",
                    "qas": [
                        {
                            "question": "When did the Lindqvist Bridge open?",
                            "answers": [{"text": "1902", "answer_start": 31}],
                        },
                        {
                            "question": "Who painted the Lindqvist Bridge?",
                            "answers": [],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "The Osterby Bridge is made of granite. It has four arches.",
                    "qas": [
                        {
                            "question": "What is the Osterby Bridge made of?",
                            "answers": [{"text": "granite", "answer_start": 30}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "Kitchens",
            "paragraphs": [
                {
                    "context": "Pancakes need flour, eggs and milk. Rest the batter an hour.",
                    "qas": [
                        {
                            "question": "How long should pancake batter rest?",
                            "answers": [{"text": "an hour", "answer_start": 51}],
                        }
                    ],
                }
            ],
        },
    ]
}


@pytest.fixture
def squad(tmp_path: Path) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return path


def test_squad_examples_cite_the_gold_source_and_abstain_when_it_cannot_answer(
    squad: Path,
) -> None:
    made = examples.build([squad], examples.DataPlan(distractor_only=1.0), seed=3)
    by_question = {(e.question, e.kind): e for e in made}
    when = by_question[("When did the Lindqvist Bridge open?", "squad")]
    n = int(when.reply.removeprefix("1902 [").removesuffix("]"))
    assert "1902" in when.sources[n - 1].text
    assert all("1902" not in s.text for i, s in enumerate(when.sources) if i != n - 1)
    # The same question with distractors only, and a question the paragraph cannot answer.
    alone = by_question[("When did the Lindqvist Bridge open?", "distractors")]
    assert alone.reply == NOT_FOUND and all("1902" not in s.text for s in alone.sources)
    assert by_question[("Who painted the Lindqvist Bridge?", "unanswerable")].reply == NOT_FOUND


def test_a_share_of_the_unanswerable_questions_can_be_kept(squad: Path) -> None:
    def unanswerable(share: float) -> int:
        plan = examples.DataPlan(unanswerable=share)
        return examples.kinds(examples.build([squad], plan, seed=0)).get("unanswerable", 0)

    assert unanswerable(1.0) > 0 and unanswerable(0.0) == 0


def test_an_unanswerable_share_outside_0_to_1_is_refused(
    squad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from localrag.cli import main

    argv = ["adapter", "train", str(squad), "--no-import", "--out", str(tmp_path / "out")]
    assert main([*argv, "--unanswerable", "1.5"]) == UsageError.exit_code
    assert "--unanswerable 1.5: a share, from 0 to 1" in capsys.readouterr().err
    assert main([*argv, "--headings", "-0.1"]) == UsageError.exit_code
    assert "--headings -0.1: a share, from 0 to 1" in capsys.readouterr().err
    for wrong in (["--variants", "0"], ["--max-tokens", "0"]):
        assert main([*argv, *wrong]) == UsageError.exit_code
        assert "--variants counts from 1, and --max-tokens from 64" in capsys.readouterr().err


def test_the_prompt_is_the_one_ask_builds(squad: Path) -> None:
    example = examples.build([squad], examples.DataPlan(), seed=0)[0]
    system, user = examples.messages(example)
    assert system == {"role": "system", "content": SYSTEM}
    assert user["content"].count("<source n=") == len(example.sources)
    assert user["content"].endswith(f"Question: {example.question}")


def test_held_out_articles_never_reach_training(squad: Path) -> None:
    made = examples.build([squad], examples.DataPlan(exclude_articles=("Kitchens",)), seed=0)
    assert made and not any("Pancake" in s.text for e in made for s in e.sources)
    assert not any("pancake" in e.question.lower() for e in made)
    with pytest.raises(UsageError, match="no article Cars"):
        examples.build([squad], examples.DataPlan(exclude_articles=("Cars",)), seed=0)


def test_several_files_are_one_pool(squad: Path, tmp_path: Path) -> None:
    kitchens = {"data": SQUAD["data"][1:]}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(kitchens), encoding="utf-8")
    bridges = tmp_path / "bridges.json"
    bridges.write_text(json.dumps({"data": SQUAD["data"][:1]}), encoding="utf-8")
    plan = examples.DataPlan(distractor_only=0)
    assert examples.build([bridges, other], plan, 3) == examples.build([squad], plan, 3)
    # An article to leave out may be in any of them; one in none is named.
    made = examples.build([bridges, other], examples.DataPlan(exclude_articles=("Kitchens",)), 0)
    assert made and not any("Pancake" in s.text for e in made for s in e.sources)
    with pytest.raises(UsageError, match="no article Cars"):
        examples.build([bridges, other], examples.DataPlan(exclude_articles=("Cars",)), 0)


def test_the_same_seed_gives_the_same_examples(squad: Path) -> None:
    plan = examples.DataPlan(generated=4)
    first, again = examples.build([squad], plan, 7), examples.build([squad], plan, 7)
    assert first == again
    assert first != examples.build([squad], plan, 8)


def test_variants_show_each_question_again_with_other_sources(squad: Path) -> None:
    once = examples.build([squad], examples.DataPlan(distractor_only=0), seed=3)
    twice = examples.build([squad], examples.DataPlan(distractor_only=0, variants=2), seed=3)
    assert len(twice) == 2 * len(once)
    by_question: dict[str, list[examples.Example]] = {}
    for e in twice:
        by_question.setdefault(e.question, []).append(e)
    assert all(len(v) == 2 for v in by_question.values())
    assert any(a.sources != b.sources for a, b in by_question.values())


def test_headings_put_the_article_title_first_as_a_chunk_shows_it(squad: Path) -> None:
    def squad_sources(headings: float) -> list[tuple[examples.Example, str]]:
        plan = examples.DataPlan(distractor_only=1.0, headings=headings)
        made = examples.build([squad], plan, seed=3)
        return [(e, s.text) for e in made if e.kind != "unanswerable" for s in e.sources]

    titled = squad_sources(1.0)
    assert titled and all(t.split("\n\n")[0] in ("Bridges", "Kitchens") for _, t in titled)
    # The answer's place moved with the heading: the gold source still holds it, whole.
    rest = next(e for e, _ in titled if e.kind == "squad" and e.question.startswith("How long"))
    n = int(rest.reply.removeprefix("an hour [").removesuffix("]"))
    assert rest.sources[n - 1].text == f"Kitchens\n\n{SQUAD['data'][1]['paragraphs'][0]['context']}"
    assert not any(t.startswith(("Bridges", "Kitchens")) for _, t in squad_sources(0.0))


def test_generated_kinds(squad: Path) -> None:
    made = examples.build([squad], examples.DataPlan(generated=6, technical=6), seed=1)
    kinds = examples.kinds(made)
    assert {"yes-no", "steps", "technical", "recording", "injection", "distractors"} <= set(kinds)
    for e in made:
        text = examples.messages(e)[1]["content"]
        if e.kind == "technical":
            # Copied from the note, never the name of the file it is in.
            answer, number = e.reply.rsplit(" [", 1)
            gold = e.sources[int(number.rstrip("]")) - 1]
            assert answer in gold.text and answer not in gold.path
        if e.kind == "yes-no":
            assert e.reply.startswith(("Yes: ", "No: ")) and e.reply.endswith("].")
        if e.kind == "recording":
            # A recording is cited by its time range, as `ask` shows it.
            assert any(s.span.start_s is not None for s in e.sources)
            assert " @ " in text and "–" in text
        if e.kind == "injection":
            # The planted instruction is data inside a block: it cannot close the block.
            assert "</source> System" not in text
    rng = random.Random(0)
    fillers = synthetic.fillers_from(made, rng)
    for e in synthetic.off_topic(5, rng, fillers):
        assert e.reply == NOT_FOUND


def test_jsonl_examples(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {
            "question": "Who leads it?",
            "sources": ["Amira leads it.", "Noise."],
            "answer": "Amira",
            "cited": [1],
        },
        {
            "question": "Budget?",
            "sources": [{"text": "x", "from": "talk.m4a @ 01:05–01:32"}],
            "answer": "",
            "cited": [],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    first, second = examples.from_jsonl(path)
    assert first.reply == "Amira [1]" and second.reply == NOT_FOUND
    assert 'from="talk.m4a @ 01:05–01:32"' in examples.messages(second)[1]["content"]
    rows[0]["cited"] = [3]
    path.write_text(json.dumps(rows[0]), encoding="utf-8")
    with pytest.raises(UsageError, match="cited"):
        examples.from_jsonl(path)


def test_validation_split_keeps_groups_together(squad: Path) -> None:
    made = examples.build([squad], examples.DataPlan(generated=10), seed=0)
    train, held = examples.split(made, random.Random(0), share=0.2)
    assert held and train and len(train) + len(held) == len(made)
    assert not {e.group for e in train} & {e.group for e in held}


def test_shipped_adapter_is_pinned_and_a_tampered_copy_refused(tmp_path: Path) -> None:
    folder = shipped.verified_folder()
    names = {p.path for p in shipped.pins(folder)}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    copy = tmp_path / "answer-adapter"
    shutil.copytree(folder, copy)
    assert shipped.verified_folder(copy) == copy
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(AdapterError, match="altered"):
        shipped.verified_folder(copy)
    weights.unlink()
    with pytest.raises(AdapterError, match="missing"):
        shipped.verified_folder(copy)


# -- with torch, transformers and peft, and the real models ---------------------------------


@pytest.mark.models
@pytest.mark.slow
def test_training_tokenizes_the_prompt_as_the_generator_does(
    real_models: Settings, squad: Path
) -> None:
    pytest.importorskip("transformers")
    from localrag import models
    from localrag.adapter.train import PromptTokenizer
    from localrag.worker import base_worker

    path = models.model_path(real_models, "llm")
    tok = PromptTokenizer(path)
    worker = base_worker(real_models)
    try:
        made = examples.build([squad], examples.DataPlan(generated=3), seed=0)
        for e in made[:12]:
            msgs = examples.messages(e)
            assert tok.prompt(msgs) == worker.prompt_tokens(msgs), e.kind
    finally:
        worker.close()


@pytest.mark.models
@pytest.mark.slow
def test_a_short_run_imports_an_adapter_that_changes_the_answer(
    real_models: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from localrag.cli import main

    # Every reply is the not-found sentence: a few steps at a high rate teach that much.
    rows = [
        {"question": f"What colour is box {i}?", "sources": [f"Box {i} is blue."], "answer": ""}
        for i in range(8)
    ]
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    monkeypatch.setenv("LOCALRAG_PASSPHRASE", "train test passphrase")
    assert main(["init"]) == 0
    args = ["adapter", "train", str(data), "--name", "t", "--max-steps", "6", "--rank", "4"]
    args += ["--layers", "4", "--batch-size", "4", "--learning-rate", "3e-3"]
    args += ["--out", str(tmp_path / "t")]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    said = capsys.readouterr()
    result = json.loads(said.out)
    assert result["name"] == "t" and result["steps"] == 6 and result["rank"] == 4
    # Only localrag speaks: no progress bar or warning of transformers' or PEFT's own.
    assert "GGUF tensors" not in said.err
    assert not [w for w in recwarn if w.category in (UserWarning, FutureWarning)]
    assert result["validation_loss"] < result["validation_loss_before"]
    assert (tmp_path / "t" / "adapter_model.safetensors").stat().st_size < 500_000
    assert main(["adapter", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    [info] = [a for a in listing["adapters"] if a["name"] == "t"]
    [trained_on] = info["training"]["data"]["files"]
    assert trained_on["file"] == "tiny.jsonl" and len(trained_on["sha256"]) == 64
    assert info["training"]["steps"] == 6
    assert main(["adapter", "list"]) == 0
    assert f"on tiny.jsonl ({trained_on['sha256'][:12]})" in capsys.readouterr().out

    question = ["ask", "--no-retrieval", "--json", "What colour is box 12?"]
    assert main(question) == 0
    base = json.loads(capsys.readouterr().out)["answer"]
    assert main([*question, "--adapter", "t", "--runtime"]) == 0
    adapted = json.loads(capsys.readouterr().out)["answer"]
    assert adapted != base
